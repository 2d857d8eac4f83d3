"""What every face shares: building the one core, the torch ↔ NumPy boundary, and rendering.

Rendering (``render_mode="rgb_array"``, the one mode every face supports) draws each member's
current observation as an ``(H, W, 3)`` uint8 frame:

* image observations (``(H, W, C)`` or ``(C, H, W)``, or the first image of a dict) are the frame;
* any other observation is drawn as a bar chart of its entries (a fixed-size
  :data:`PLOT_SIZE` image, entries scaled by the spec's bounds where they are finite);
* a world model that can draw its own states (e.g. decode them and call the real env's renderer)
  implements the optional hook :class:`StateRenderer` -- ``render_state(state) -> (B, H, W, 3)``
  uint8 for a batch ``[B]`` of model states -- and is used instead. With the callables API the
  user's model may implement ``render_state(state) -> (H, W, 3)`` for its own (unbatched) state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.data import Bounded, Composite, TensorSpec

from wmenv.core.callables import CallableWorldModel
from wmenv.core.errors import ArgumentTypeError, InvalidArgumentError, ModelOutputError, ResetNeededError
from wmenv.core.imagination import ImaginationCore, check_count
from wmenv.core.protocol import StartStates, WorldModel

__all__ = [
    "build_core", "to_numpy", "index_obs", "RENDER_MODES", "RENDER_FPS", "PLOT_SIZE", "StateRenderer",
    "FrameRenderer", "check_render_mode",
]

#: Render modes every face accepts (besides ``None``).
RENDER_MODES: tuple[str, ...] = ("rgb_array",)
#: Frames per second declared in the faces' ``metadata["render_fps"]``.
RENDER_FPS = 15
#: ``(height, width)`` of the bar chart drawn for non-image observations.
PLOT_SIZE = (128, 256)


def build_core(
    model: Any,
    start_states: StartStates | None,
    num_envs: int,
    *,
    max_episode_steps: int | None,
    device: torch.device | str | None,
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    reset_fn: Callable[..., Mapping[str, Any]] | None = None,
    transition_fn: Callable[..., Mapping[str, Any]] | None = None,
    action_transform_fn: Callable[[Any, Any], Any] | None = None,
    validate_actions: bool = True,
) -> ImaginationCore:
    """Build the imagination core for a face, from a protocol model or the callables API.

    Raises:
        ArgumentTypeError: (a ``TypeError``) the model is neither a ``WorldModel`` nor used with
            ``reset_fn`` and ``transition_fn``, a protocol model comes without start states, or
            ``num_envs`` is not an integer.
        InvalidArgumentError: ``num_envs < 1``, or ``num_envs != 1`` with the callables API.
    """
    num_envs = check_count(num_envs, "num_envs")
    if reset_fn is not None or transition_fn is not None:
        if reset_fn is None or transition_fn is None:
            raise ArgumentTypeError("the callables API needs both reset_fn= and transition_fn=")
        if num_envs != 1:
            raise InvalidArgumentError(
                f"the callables API drives one env (num_envs=1), got num_envs={num_envs}; implement the "
                "batched WorldModel protocol (wmenv.core.WorldModel) for vector faces"
            )
        adapter = CallableWorldModel(
            model, observation_space, action_space, reset_fn, transition_fn, action_transform_fn
        )
        return ImaginationCore(
            adapter, adapter, 1, max_episode_steps=max_episode_steps, device=device or "cpu",
            validate_actions=validate_actions,
        )
    if not isinstance(model, WorldModel):
        raise ArgumentTypeError(
            f"{type(model).__name__} does not follow the WorldModel protocol (observation_spec, action_spec, "
            "initial_state, step); either implement it or pass reset_fn= and transition_fn="
        )
    if start_states is None:
        raise ArgumentTypeError(
            "start_states is required: imagined episodes start from real data (e.g. "
            "wmenv.core.ReplayStartStates) or an explicit initial distribution (wmenv.core.CallableStartStates)"
        )
    return ImaginationCore(
        model, start_states, num_envs, max_episode_steps=max_episode_steps, device=device,
        validate_actions=validate_actions,
    )


def to_numpy(obs: torch.Tensor | TensorDictBase) -> np.ndarray | dict[str, np.ndarray]:
    """Batched observation(s) to NumPy (a dict of arrays for composite observations)."""
    if type(obs) is torch.Tensor:
        return obs.numpy(force=True)
    if isinstance(obs, TensorDictBase):
        return {str(k): to_numpy(v) for k, v in obs.items()}
    return obs.numpy(force=True)


def index_obs(obs: np.ndarray | dict[str, np.ndarray], i: int) -> np.ndarray | dict[str, np.ndarray]:
    """Member ``i`` of a batched NumPy observation."""
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]


def check_render_mode(render_mode: Any, face: str) -> str | None:
    """``render_mode`` if the faces support it (``None`` or ``"rgb_array"``).

    Raises:
        InvalidArgumentError: an unknown mode (``ArgumentTypeError`` for a non-string).
    """
    if render_mode is None:
        return None
    expected = f"one of {list(RENDER_MODES)} or None"
    if not isinstance(render_mode, str):
        raise ArgumentTypeError(f"{face}: render_mode must be {expected}, got {type(render_mode).__name__}")
    if render_mode not in RENDER_MODES:
        raise InvalidArgumentError(f"{face}: render_mode must be {expected}, got {render_mode!r}")
    return render_mode


@runtime_checkable
class StateRenderer(Protocol):
    """Optional hook of a :class:`~wmenv.core.WorldModel`: draw imagined states.

    A model that can render its own states (e.g. decode them into the real env's state and call
    the real env's renderer) implements it; every face's ``render()`` then uses it instead of
    drawing the observation.
    """

    def render_state(self, state: TensorDictBase) -> np.ndarray:
        """Frames of a batch ``[B]`` of model states: ``(B, H, W, 3)`` uint8."""
        ...


def _to_uint8(frames: np.ndarray, spec: TensorSpec | None) -> np.ndarray:
    """Image batch ``(N, H, W, C)`` to uint8 RGB (floats by the spec's bounds, or [0, 1] / [0, 255])."""
    if frames.dtype != np.uint8:
        x = frames.astype(np.float32)
        low = high = None
        if isinstance(spec, Bounded):
            lo, hi = float(spec.space.low.min()), float(spec.space.high.max())
            if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
                low, high = lo, hi
        if low is None:  # unbounded: [0, 1] floats are scaled, anything else taken as [0, 255]
            low, high = 0.0, (1.0 if x.size and float(x.max()) <= 1.0 else 255.0)
        frames = np.clip((x - low) * (255.0 / (high - low)), 0, 255).round().astype(np.uint8)
    if frames.shape[-1] == 1:
        return np.repeat(frames, 3, axis=-1)
    return frames[..., :3]  # RGBA: drop alpha


_PALETTE = np.array([(255, 255, 255), (160, 160, 160), (66, 133, 244), (234, 67, 53)], dtype=np.uint8)


def _bar_chart(values: np.ndarray, low: np.ndarray | None, high: np.ndarray | None) -> np.ndarray:
    """Bar charts ``(N, *PLOT_SIZE, 3)`` uint8 of ``values`` ``(N, D)``, drawn with NumPy only.

    Each entry is a bar from the zero line (or the lower bound, when 0 is outside the bounds);
    entries with finite bounds are scaled by them, the others by a power of two covering the
    frame's largest magnitude (so the scale changes rarely over a video).
    """
    h, w = PLOT_SIZE
    n, d = values.shape
    x = values.astype(np.float64)
    lo = np.full(d, -np.inf) if low is None else low.astype(np.float64)
    hi = np.full(d, np.inf) if high is None else high.astype(np.float64)
    finite = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    loose = x[:, ~finite]
    peak = float(np.abs(loose).max()) if loose.size else 1.0
    scale = 2.0 ** np.ceil(np.log2(max(peak, 1.0)))
    lo, hi = np.where(finite, lo, -scale), np.where(finite, hi, scale)
    u = np.clip((x - lo) / (hi - lo), 0.0, 1.0)  # (N, D) in [0, 1], 1 = top
    base = np.clip((0.0 - lo) / (hi - lo), 0.0, 1.0)  # (D,)
    cols = np.arange(w) * d
    col = cols // w  # entry shown in each pixel column
    gap = (cols % w < max(d, 0.15 * w)) if 4 * d <= w else np.zeros(w, dtype=bool)  # space between bars
    top = np.rint((1.0 - u[:, col]) * (h - 1)).astype(np.int32)  # (N, W)
    zero = np.rint((1.0 - base[col]) * (h - 1)).astype(np.int32)  # (W,)
    first, last = np.minimum(top, zero), np.maximum(top, zero)
    y = np.arange(h, dtype=np.int32)[None, :, None]
    bar = (y >= first[:, None, :]) & (y <= last[:, None, :]) & ~gap
    # colour index per pixel: 0 background, 1 zero line, 2 bar above zero, 3 bar below zero
    index = bar * np.where(top <= zero, 2, 3).astype(np.uint8)[:, None, :]
    line = index[:, zero, np.arange(w)]
    index[:, zero, np.arange(w)] = np.where(line == 0, 1, line)
    return _PALETTE[index]


class FrameRenderer:
    """``(H, W, 3)`` uint8 frames of a core's members (see the module docstring).

    Args:
        core: the face's imagination core.
    """

    def __init__(self, core: ImaginationCore) -> None:
        self.core = core
        model = core.model
        self._callables = isinstance(model, CallableWorldModel)
        owner = model.model if self._callables else model
        hook = getattr(owner, "render_state", None)
        self._hook = hook if callable(hook) else None
        spec = core.observation_spec
        self._image_key: Any = None  # composite spec: the sub-key of the image drawn
        self._image_spec: TensorSpec | None = None
        self._channels_first = False
        leaves = (
            {k: spec[k] for k in spec.keys(include_nested=True, leaves_only=True)}
            if isinstance(spec, Composite) else {None: spec}
        )
        for key, leaf in leaves.items():
            shape = tuple(leaf.shape)
            grey = len(shape) == 2 and leaf.dtype == torch.uint8
            if len(shape) == 3 and (shape[-1] in (1, 3, 4) or shape[0] in (1, 3)) or grey:
                self._image_key, self._image_spec = key, leaf
                self._channels_first = len(shape) == 3 and shape[-1] not in (1, 3, 4)
                break
        self._leaves = leaves
        lows, highs = [], []
        for leaf in leaves.values():
            size = int(np.prod(tuple(leaf.shape), dtype=np.int64))
            if isinstance(leaf, Bounded):
                lows.append(leaf.space.low.detach().cpu().reshape(-1).double().numpy())
                highs.append(leaf.space.high.detach().cpu().reshape(-1).double().numpy())
            else:
                lows.append(np.full(size, -np.inf))
                highs.append(np.full(size, np.inf))
        self._low = np.concatenate(lows) if lows else None
        self._high = np.concatenate(highs) if highs else None

    def frames(self) -> np.ndarray:
        """``(N, H, W, 3)`` uint8, one frame per member, of the current observations (or states)."""
        if self.core._state is None:
            raise ResetNeededError("render() called before reset(): call reset() first")
        if self._hook is not None:
            return self._from_hook()
        obs = self.core.observation
        if self._image_spec is not None:
            img = obs if self._image_key is None else obs[self._image_key]
            img = img.numpy(force=True)
            if img.ndim == 3:  # (N, H, W) grey
                img = img[..., None]
            elif self._channels_first:
                img = np.moveaxis(img, 1, -1)
            return _to_uint8(img, self._image_spec)
        n = self.core.num_envs
        parts = [obs] if not isinstance(obs, TensorDictBase) else [obs[k] for k in self._leaves]
        values = np.concatenate([p.numpy(force=True).reshape(n, -1).astype(np.float64) for p in parts], axis=1)
        return _bar_chart(values, self._low, self._high)

    def _from_hook(self) -> np.ndarray:
        n = self.core.num_envs
        if self._callables:
            frames = np.asarray(self._hook(self.core.model._user_state))[None]
            where = "render_state(state) of the callables API model"
        else:
            frames = self._hook(self.core.state)
            frames = frames.numpy(force=True) if isinstance(frames, torch.Tensor) else np.asarray(frames)
            where = "render_state(state) of the world model"
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != n or frames.shape[-1] != 3:
            expected = "(H, W, 3)" if self._callables else f"({n}, H, W, 3)"
            raise ModelOutputError(
                f"{where}: expected a uint8 array of shape {expected}, got dtype {frames.dtype} and shape "
                f"{tuple(frames.shape[1:] if self._callables else frames.shape)}"
            )
        return frames
