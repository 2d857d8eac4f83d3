"""Env observations and actions <-> network tensors, for the latent-model families.

:class:`ObservationCodec` maps 1-D float vectors (scaled to ``[-1, 1]`` by the space's finite
bounds) and ``64x64x3`` uint8 images (channels first, ``[-0.5, 0.5]``) to network inputs and
back; :class:`ActionCodec` maps ``Discrete`` actions to one-hot vectors and bounded ``Box``
actions to ``[-1, 1]``. Anything else raises :class:`UnsupportedSpaceError` naming the fix.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wmenv.core.errors import UnsupportedSpaceError

__all__ = ["IMAGE_SHAPE", "ObservationCodec", "ActionCodec", "observation_kind"]

IMAGE_SHAPE = (64, 64, 3)
_SUPPORTED_OBS = (
    "supported observation spaces: Box(shape=(D,), float) vectors or Box(0, 255, (64, 64, 3), uint8) images. "
    "Resize other images to 64x64x3 (gymnasium.wrappers.ResizeObservation) and flatten Dict spaces "
    "(gymnasium.wrappers.FlattenObservation)"
)


def observation_kind(space: gym.Space, who: str = "this model") -> str:
    """``"vector"`` or ``"image"`` for a supported space.

    Raises:
        UnsupportedSpaceError: any other space (the message names the supported ones).
    """
    if isinstance(space, gym.spaces.Box):
        if space.dtype == np.uint8 and tuple(space.shape) == IMAGE_SHAPE:
            return "image"
        if len(space.shape) == 1 and np.issubdtype(space.dtype, np.floating):
            return "vector"
    raise UnsupportedSpaceError(f"{who} cannot model observation space {space}; {_SUPPORTED_OBS}")


class ObservationCodec(nn.Module):
    """Env observations <-> network inputs / reconstruction targets.

    Vectors: ``x -> (x - center) / half_range`` per dimension with finite bounds (identity where
    a bound is infinite). Images: uint8 ``(..., 64, 64, 3)`` -> float ``(..., 3, 64, 64)`` in
    ``[-0.5, 0.5]``.

    Args:
        space: the env's observation space.
        who: name used in error messages.
    """

    def __init__(self, space: gym.Space, who: str = "this model") -> None:
        super().__init__()
        self.kind = observation_kind(space, who)
        if self.kind == "vector":
            low = torch.as_tensor(space.low, dtype=torch.float32)
            high = torch.as_tensor(space.high, dtype=torch.float32)
            finite = torch.isfinite(low) & torch.isfinite(high) & (high > low)
            center = torch.where(finite, (high + low) / 2, torch.zeros_like(low))
            scale = torch.where(finite, (high - low) / 2, torch.ones_like(low))
            self.dim = int(space.shape[0])
        else:
            center, scale = torch.zeros(1), torch.ones(1)
            self.dim = int(np.prod(IMAGE_SHAPE))
        self.register_buffer("center", center, persistent=False)
        self.register_buffer("scale", scale, persistent=False)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` vectors -> ``(..., D)`` scaled; ``(..., 64, 64, 3)`` uint8 -> ``(..., 3, 64, 64)``."""
        if self.kind == "image":
            return obs.movedim(-1, -3).float() / 255.0 - 0.5
        return (obs.float() - self.center) / self.scale

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode`: images as uint8 ``(..., 64, 64, 3)``, vectors as float32."""
        if self.kind == "image":
            img = ((out + 0.5) * 255.0).clamp(0, 255).round()
            return img.movedim(-3, -1).to(torch.uint8)
        return out * self.scale + self.center

    def event_dims(self) -> tuple[int, ...]:
        """Dimensions a per-observation loss sums over (``(-1,)`` vectors, ``(-3, -2, -1)`` images)."""
        return (-3, -2, -1) if self.kind == "image" else (-1,)


class ActionCodec(nn.Module):
    """Env actions <-> model action vectors: one-hot for ``Discrete(n)``, ``[-1, 1]`` for ``Box((A,))``.

    Args:
        space: the env's action space (unbounded ``Box`` dimensions are treated as ``[-1, 1]``).
        who: name used in error messages.
    """

    def __init__(self, space: gym.Space, who: str = "this model") -> None:
        super().__init__()
        if isinstance(space, gym.spaces.Discrete) and int(space.start) == 0:
            self.discrete, self.dim = True, int(space.n)
            low, high = torch.zeros(1), torch.ones(1)
        elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            self.discrete, self.dim = False, int(space.shape[0])
            low = torch.as_tensor(space.low, dtype=torch.float32)
            high = torch.as_tensor(space.high, dtype=torch.float32)
            bounded = torch.isfinite(low) & torch.isfinite(high)
            low, high = torch.where(bounded, low, -1.0), torch.where(bounded, high, 1.0)
        else:
            raise UnsupportedSpaceError(
                f"{who} cannot act in action space {space}; supported: Discrete(n) (start 0) or Box(shape=(A,)). "
                "Flatten MultiDiscrete/Dict action spaces with a wrapper first"
            )
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)

    def encode(self, action: torch.Tensor) -> torch.Tensor:
        """Env actions ``(...)`` int or ``(..., A)`` float -> model vectors ``(..., dim)``."""
        if self.discrete:
            return F.one_hot(action.long(), self.dim).float()
        return 2 * (action.float() - self.low) / (self.high - self.low) - 1

    def decode(self, vector: torch.Tensor) -> torch.Tensor:
        """Model vectors ``(..., dim)`` -> env actions (argmax index, or rescaled to the bounds)."""
        if self.discrete:
            return vector.argmax(-1)
        return self.low + (vector.clamp(-1, 1) + 1) / 2 * (self.high - self.low)
