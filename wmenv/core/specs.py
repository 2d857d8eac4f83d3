"""Conversions between TorchRL specs (the protocol's source of truth) and Gymnasium spaces.

TorchRL ships private converters (``torchrl.envs.libs.gym._torchrl_to_gym_spec_transform``);
we keep a small public pair here so the faces do not depend on private API, and so that the
exact dtypes we promise at the NumPy boundary are under our control.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torchrl.data import Binary, Bounded, Categorical, Composite, MultiCategorical, TensorSpec, Unbounded

from wmenv.core.errors import UnsupportedSpaceError

__all__ = ["spec_to_space", "space_to_spec", "numpy_dtype", "torch_dtype", "is_discrete"]

_TORCH_TO_NP = {
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.float16: np.float16,
    torch.uint8: np.uint8,
    torch.int8: np.int8,
    torch.int16: np.int16,
    torch.int32: np.int32,
    torch.int64: np.int64,
    torch.bool: np.bool_,
}
_NP_TO_TORCH = {np.dtype(v): k for k, v in _TORCH_TO_NP.items()}


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """NumPy dtype matching a torch dtype."""
    return np.dtype(_TORCH_TO_NP[dtype])


def torch_dtype(dtype: np.dtype | type) -> torch.dtype:
    """Torch dtype matching a NumPy dtype."""
    return _NP_TO_TORCH[np.dtype(dtype)]


def is_discrete(spec: TensorSpec) -> bool:
    """True for integer-indexed action specs (``Categorical``, ``MultiCategorical``, ``Binary``)."""
    return isinstance(spec, Categorical | MultiCategorical | Binary)


def multi_nvec(spec: MultiCategorical) -> list[int]:
    """Number of categories of each entry of a ``MultiCategorical`` spec."""
    return [int(box.n) for box in spec.space.boxes]


def spec_to_space(spec: TensorSpec) -> gym.Space:
    """Convert an unbatched TorchRL spec into the matching Gymnasium space.

    ``Categorical`` → ``Discrete``; ``MultiCategorical`` → ``MultiDiscrete``; ``Binary`` →
    ``MultiBinary``; ``Bounded`` / ``Unbounded`` → ``Box``; ``Composite`` → ``Dict``.
    """
    if isinstance(spec, Composite):
        return gym.spaces.Dict({str(k): spec_to_space(v) for k, v in spec.items()})
    # Binary and MultiCategorical subclass Categorical in TorchRL: test them first.
    if isinstance(spec, Binary):
        shape = tuple(int(d) for d in spec.shape)
        return gym.spaces.MultiBinary(shape[0] if len(shape) == 1 else shape)
    if isinstance(spec, MultiCategorical):
        return gym.spaces.MultiDiscrete(np.asarray(multi_nvec(spec), dtype=np.int64))
    if isinstance(spec, Categorical):
        return gym.spaces.Discrete(int(spec.space.n))
    if isinstance(spec, Bounded):
        dtype = numpy_dtype(spec.dtype)
        low = spec.space.low.detach().cpu().numpy().astype(dtype)
        high = spec.space.high.detach().cpu().numpy().astype(dtype)
        return gym.spaces.Box(low=low, high=high, shape=tuple(spec.shape), dtype=dtype)
    if isinstance(spec, Unbounded):
        dtype = numpy_dtype(spec.dtype)
        if not np.issubdtype(dtype, np.floating):
            raise UnsupportedSpaceError(f"unbounded spec of dtype {spec.dtype} has no Gymnasium space")
        return gym.spaces.Box(low=-np.inf, high=np.inf, shape=tuple(spec.shape), dtype=dtype)
    raise UnsupportedSpaceError(
        f"cannot convert {type(spec).__name__} to a Gymnasium space; supported: Categorical, "
        "MultiCategorical, Binary, Bounded, Unbounded, Composite"
    )


def space_to_spec(space: gym.Space, device: torch.device | str = "cpu") -> TensorSpec:
    """Convert a Gymnasium space into the matching unbatched TorchRL spec."""
    if isinstance(space, gym.spaces.Dict):
        return Composite({k: space_to_spec(v, device) for k, v in space.spaces.items()}, device=device)
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise UnsupportedSpaceError(f"Discrete spaces must start at 0, got start={space.start}")
        return Categorical(int(space.n), shape=(), dtype=torch.int64, device=device)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return MultiCategorical(
            torch.as_tensor(space.nvec).tolist(), shape=space.shape, dtype=torch.int64, device=device
        )
    if isinstance(space, gym.spaces.MultiBinary):
        return Binary(shape=space.shape, dtype=torch.int8, device=device)
    if isinstance(space, gym.spaces.Box):
        dtype = torch_dtype(space.dtype)
        low, high = np.asarray(space.low), np.asarray(space.high)
        if np.all(np.isneginf(low)) and np.all(np.isposinf(high)):
            return Unbounded(shape=space.shape, dtype=dtype, device=device)
        if not np.issubdtype(space.dtype, np.floating):
            return Bounded(
                low=torch.as_tensor(low), high=torch.as_tensor(high), shape=space.shape, dtype=dtype,
                device=device,
            )
        return Bounded(
            low=torch.as_tensor(low, dtype=dtype), high=torch.as_tensor(high, dtype=dtype),
            shape=space.shape, dtype=dtype, device=device,
        )
    raise UnsupportedSpaceError(
        f"cannot convert {type(space).__name__} to a TorchRL spec; supported: Discrete, MultiDiscrete, "
        "MultiBinary, Box, Dict"
    )
