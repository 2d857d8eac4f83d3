"""A real environment seen through a world model's posterior filter.

A policy trained in imagination on ``"latent"`` observations (model features) acts in the real
env unchanged once the real env is wrapped by :class:`LatentObservationWrapper`: every real
observation is pushed through the model's filter and the policy sees the resulting features.

Works with any adapter that offers the filter interface::

    adapter.observe(state | None, action | None, observation (B, ...)) -> TensorDict
        {"state": [B] model state, "observation": (B, F) latent features}

and a ``latent_spec`` (or ``observation_spec``) describing the features.
"""

from __future__ import annotations

from typing import Any, Protocol, SupportsFloat, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDictBase

from wmenv.core.specs import spec_to_space

__all__ = ["LatentFilter", "LatentObservationWrapper"]


@runtime_checkable
class LatentFilter(Protocol):
    """What :class:`LatentObservationWrapper` needs from a world-model adapter."""

    def observe(
        self,
        state: TensorDictBase | None,
        action: Any,
        observation: Any,
        *,
        generator: torch.Generator | None = None,
    ) -> TensorDictBase:
        """Posterior update from a batch of real observations; see the module docstring."""
        ...


class LatentObservationWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace a real env's observations by a world model's filtered latent features.

    Args:
        env: the real env (batch of one; its observation space must be the model's).
        world_model_adapter: any object with ``observe(state, action, observation, generator=)``
            and ``latent_spec`` (or ``observation_spec``) for the feature space.
        seed: seeds the filter's generator (reseeded by ``reset(seed=...)``).

    The observation space is the adapter's latent space (float32 ``Box``); observations are
    NumPy arrays. Actions pass through unchanged.
    """

    def __init__(self, env: gym.Env, world_model_adapter: Any, *, seed: int | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, world_model_adapter=world_model_adapter, seed=seed)
        gym.Wrapper.__init__(self, env)
        if not callable(getattr(world_model_adapter, "observe", None)):
            raise TypeError(
                f"{type(world_model_adapter).__name__} has no observe(state, action, observation) filter; "
                "pass a world-model adapter such as wmenv.models.dreamer.to_world_model(model)"
            )
        spec = getattr(world_model_adapter, "latent_spec", None) or world_model_adapter.observation_spec
        self.adapter = world_model_adapter
        self.observation_space = spec_to_space(spec)
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self._state: TensorDictBase | None = None

    def _filter(self, action: Any, observation: Any) -> np.ndarray:
        obs = np.asarray(observation)[None]
        act = None if action is None else np.asarray(action)[None]
        out = self.adapter.observe(self._state, act, obs, generator=self.generator)
        self._state = out["state"]
        latent = out["observation"][0]
        return latent.detach().cpu().numpy().astype(self.observation_space.dtype, copy=False)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Reset the real env and the filter; returns the first latent observation."""
        if seed is not None:
            self.generator.manual_seed(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        self._state = None
        return self._filter(None, obs), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the real env and filter its observation."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._filter(action, obs), reward, terminated, truncated, info
