"""``WorldModelEnv``: a single imagined environment as a ``gymnasium.Env`` (NumPy at the boundary)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from wmenv.core.errors import EpisodeEndedError, InvalidActionError
from wmenv.core.imagination import as_array, check_options, check_seed
from wmenv.core.protocol import StartStates
from wmenv.core.specs import spec_to_space
from wmenv.envs.boundary import (
    RENDER_FPS,
    RENDER_MODES,
    FrameRenderer,
    build_core,
    check_render_mode,
    index_obs,
    to_numpy,
)

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
    imagination horizon ``max_episode_steps``. Once an episode has ended, ``step`` raises
    :class:`~wmenv.core.errors.EpisodeEndedError` (a ``ResetNeededError``) until ``reset()``
    is called, as Gymnasium's ``ResetNeeded`` semantics say; the vector faces autoreset instead.

    Rendering: ``render_mode="rgb_array"`` makes ``render()`` return an ``(H, W, 3)`` uint8 frame
    of the current observation -- the image itself for image observations, a bar chart of the
    entries otherwise, or the model's own drawing of its state when it implements
    ``render_state`` (see :mod:`wmenv.envs.boundary`). ``gymnasium.wrappers.RecordVideo`` works.

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
        render_mode: ``None`` or ``"rgb_array"`` (any other mode is refused here).
    """

    metadata: dict[str, Any] = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS}

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
        render_mode = check_render_mode(render_mode, type(self).__name__)
        seed = check_seed(seed)
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
        self.render_mode = render_mode
        self._renderer = FrameRenderer(self.core)
        self._ended = False  # the episode terminated or was truncated: step() needs reset() first
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
        """Start an imagined episode from a real start state.

        Raises:
            InvalidArgumentError: ``seed`` is not ``None`` or an integer ``>= 0`` (as Gymnasium
                requires; any size works), or ``options`` is not a dict or ``None``.
        """
        seed = check_seed(seed)
        check_options(options)
        super().reset(seed=seed)
        if seed is None and self._initial_seed is not None:
            seed, self._initial_seed = self._initial_seed, None
        obs = self.core.reset(seed=seed, options=options)
        self._ended = False
        self._last_obs = index_obs(to_numpy(obs), 0)
        return self._last_obs, self._info()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Advance the imagined episode by one step.

        Raises:
            ResetNeededError: before the first ``reset()``; :class:`EpisodeEndedError` after the
                episode ended (``terminated`` or ``truncated``) until ``reset()``.
            InvalidActionError: wrong shape, dtype or range.
        """
        if self._ended:
            raise EpisodeEndedError(
                "step() called after the episode ended (terminated or truncated): call reset() before "
                "stepping again"
            )
        kind = type(action)
        if kind is int or kind is float:  # the common case of Discrete spaces: one cheap test
            a = np.asarray(action)
        elif kind is np.ndarray or isinstance(action, torch.Tensor):
            a = action
        else:
            a = as_array(action, "action", f"a numeric array of shape {self._action_shape[1:]} for {self.action_space}")
        if a.shape != self._action_shape[1:]:
            raise InvalidActionError(
                f"expected an action of shape {self._action_shape[1:]} for {self.action_space}, got {tuple(a.shape)}"
            )
        out = self.core.step(a[None])
        self._last_obs = index_obs(to_numpy(out.observation), 0)
        terminated, truncated = out.terminated.item(), out.truncated.item()
        self._ended = terminated or truncated
        return self._last_obs, out.reward.item(), terminated, truncated, self._info()

    def render(self) -> np.ndarray | None:
        """The current frame, ``(H, W, 3)`` uint8, with ``render_mode="rgb_array"`` (else ``None``).

        Raises:
            ResetNeededError: before the first ``reset()`` (as Gymnasium's order enforcing does).
        """
        if self.render_mode is None:
            return None
        return self._renderer.frames()[0]
