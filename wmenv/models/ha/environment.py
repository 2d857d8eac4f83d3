"""Real envs as the World Models agent sees them: vectors as they are, images resized to 64x64x3."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import ResizeObservation

__all__ = ["fit_observation", "make_agent_env", "env_factory"]

_SIDE = 64


def fit_observation(env: gym.Env) -> gym.Env:
    """Resize ``H x W x 3`` uint8 image observations to 64x64 (``gymnasium.wrappers.ResizeObservation``);
    other envs are returned unchanged."""
    space = env.observation_space
    if (
        isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
        and space.shape[-1] == 3 and tuple(space.shape[:2]) != (_SIDE, _SIDE)
    ):
        return ResizeObservation(env, (_SIDE, _SIDE))
    return env


def make_agent_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``wmenv.envs.make.make_env(env_id, **kwargs)`` followed by :func:`fit_observation`.

    Example: ``make_agent_env("CarRacing-v3")`` gives CarRacing's own 96x96 frames resized to 64x64;
    ``make_agent_env("CartPole-v1", pixels=True)`` gives rendered 64x64 frames.
    """
    from wmenv.envs.make import make_env

    return fit_observation(make_env(env_id, **kwargs))


def env_factory(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Callable[[], gym.Env]:
    """A picklable thunk making :func:`make_agent_env` ``(env_id, **env_kwargs)``."""
    return partial(make_agent_env, env_id, **dict(env_kwargs or {}))
