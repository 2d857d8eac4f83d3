"""``WorldModelEnv``: a single imagined environment as a ``gymnasium.Env`` (NumPy at the boundary)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from wmenv.core.errors import InvalidActionError
from wmenv.core.protocol import StartStates
from wmenv.core.specs import spec_to_space
from wmenv.envs.boundary import build_core, index_obs, to_numpy

__all__ = ["WorldModelEnv"]


class WorldModelEnv(gym.Env):
    """One imagined environment over the batched core (a batch of one).

    Two ways to build it:

    * protocol: ``WorldModelEnv(world_model, start_states, max_episode_steps=50)`` where
      ``world_model`` follows :class:`wmenv.core.WorldModel`;
    * the seed's callables API, unchanged: ``WorldModelEnv(model, observation_space=...,
      action_space=..., reset_fn=..., transition_fn=..., action_transform_fn=...,
      max_episode_steps=..., seed=...)``; ``model`` need not inherit from anything.

    ``terminated`` comes from the model's termination head, ``truncated`` from the
    imagination horizon ``max_episode_steps``.

    Args:
        model: a ``WorldModel`` or any object passed to the callables.
        start_states: start-state source (protocol models only).
        observation_space: required with the callables API; otherwise derived from the model.
        action_space: required with the callables API; otherwise derived from the model.
        reset_fn: callables API reset.
        transition_fn: callables API transition.
        action_transform_fn: callables API action mapping ``(model, action) -> model_action``.
        max_episode_steps: imagination horizon (``None``: only the model ends episodes).
        seed: seed of the env's generator for the first reset without an explicit seed.
        device: torch device of the core (default: the model's).
        render_mode: ``"rgb_array"`` renders image observations.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        model: Any,
        start_states: StartStates | None = None,
        *,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
        reset_fn: Callable[..., Mapping[str, Any]] | None = None,
        transition_fn: Callable[..., Mapping[str, Any]] | None = None,
        action_transform_fn: Callable[[Any, Any], Any] | None = None,
        max_episode_steps: int | None = None,
        seed: int | None = None,
        device: torch.device | str | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.core = build_core(
            model, start_states, 1, max_episode_steps=max_episode_steps, device=device,
            observation_space=observation_space, action_space=action_space, reset_fn=reset_fn,
            transition_fn=transition_fn, action_transform_fn=action_transform_fn,
        )
        self.model = model
        self.observation_space = spec_to_space(self.core.observation_spec)
        self.action_space = spec_to_space(self.core.action_spec)
        if observation_space is not None:
            self.observation_space = observation_space
        if action_space is not None:
            self.action_space = action_space
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self._initial_seed = seed
        self._action_shape = (1, *self.core.action_spec.shape)
        self._last_obs: np.ndarray | dict[str, np.ndarray] | None = None

    def _info(self) -> dict[str, Any]:
        extra = getattr(self.core.model, "last_info", None)
        return dict(extra) if extra else {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an imagined episode from a real start state."""
        super().reset(seed=seed)
        if seed is None and self._initial_seed is not None:
            seed, self._initial_seed = self._initial_seed, None
        obs = self.core.reset(seed=seed, options=options)
        self._last_obs = index_obs(to_numpy(obs), 0)
        return self._last_obs, self._info()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Advance the imagined episode by one step."""
        a = action if isinstance(action, torch.Tensor) else np.asarray(action)
        if a.shape != self._action_shape[1:]:
            raise InvalidActionError(
                f"expected an action of shape {self._action_shape[1:]} for {self.action_space}, got {tuple(a.shape)}"
            )
        out = self.core.step(a[None])
        self._last_obs = index_obs(to_numpy(out.observation), 0)
        return self._last_obs, out.reward.item(), out.terminated.item(), out.truncated.item(), self._info()

    def render(self) -> np.ndarray | None:
        """The current observation as an RGB frame, for image observations."""
        if self.render_mode != "rgb_array" or self._last_obs is None:
            return None
        obs = self._last_obs
        if isinstance(obs, dict):
            obs = next((v for v in obs.values() if v.ndim == 3), None)
        if obs is None or obs.ndim != 3:
            return None
        frame = obs if obs.shape[-1] in (1, 3) else np.moveaxis(obs, 0, -1)
        if frame.dtype != np.uint8:
            frame = np.clip(frame * (255.0 if frame.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return frame if frame.shape[-1] == 3 else np.repeat(frame, 3, axis=-1)
