"""What every face shares: building the one core, and the torch ↔ NumPy boundary."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDictBase

from wmenv.core.callables import CallableWorldModel
from wmenv.core.imagination import ImaginationCore
from wmenv.core.protocol import StartStates, WorldModel

__all__ = ["build_core", "to_numpy", "index_obs"]


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
        TypeError: the model is neither a ``WorldModel`` nor used with ``reset_fn`` and
            ``transition_fn``, or a protocol model comes without start states.
    """
    if reset_fn is not None or transition_fn is not None:
        if reset_fn is None or transition_fn is None:
            raise TypeError("the callables API needs both reset_fn= and transition_fn=")
        if num_envs != 1:
            raise ValueError(
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
        raise TypeError(
            f"{type(model).__name__} does not follow the WorldModel protocol (observation_spec, action_spec, "
            "initial_state, step); either implement it or pass reset_fn= and transition_fn="
        )
    if start_states is None:
        raise TypeError(
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
