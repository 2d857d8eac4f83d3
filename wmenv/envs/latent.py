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

from wmenv.core.errors import ArgumentTypeError, UnsupportedSpaceError
from wmenv.core.imagination import check_seed, torch_seed
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

    The real env must fit the model, which is checked here rather than at the first step: when
    the adapter declares the spaces it was trained on (``decoded_spec`` or
    ``world_model.observation_space``; ``action_spec``) they are compared with the env's, and the
    filter is run once on a zero observation of the env's space.

    Raises:
        UnsupportedSpaceError: the env's observation or action space does not fit the model
            (the message names both spaces).
        ArgumentTypeError: the adapter has no ``observe`` filter or no latent spec.
    """

    def __init__(self, env: gym.Env, world_model_adapter: Any, *, seed: int | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, world_model_adapter=world_model_adapter, seed=seed)
        gym.Wrapper.__init__(self, env)
        seed = check_seed(seed)
        if not callable(getattr(world_model_adapter, "observe", None)):
            raise ArgumentTypeError(
                f"{type(world_model_adapter).__name__} has no observe(state, action, observation) filter; "
                "pass a world-model adapter such as wmenv.models.dreamer.to_world_model(model)"
            )
        spec = getattr(world_model_adapter, "latent_spec", None) or getattr(world_model_adapter, "observation_spec", None)
        if spec is None:
            raise ArgumentTypeError(
                f"{type(world_model_adapter).__name__} declares no latent_spec (or observation_spec) for the "
                "features its observe() filter returns"
            )
        self.adapter = world_model_adapter
        self.observation_space = spec_to_space(spec)
        self._check_fit(env, world_model_adapter)
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(torch_seed(seed))
        self._state: TensorDictBase | None = None

    def _check_fit(self, env: gym.Env, adapter: Any) -> None:
        """Refuse a real env whose spaces do not fit the model, naming both spaces."""
        name = type(adapter).__name__
        declared = getattr(adapter, "decoded_spec", None)
        model_obs = spec_to_space(declared) if declared is not None else getattr(
            getattr(adapter, "world_model", None), "observation_space", None
        )
        if isinstance(model_obs, gym.Space) and not _fits(env.observation_space, model_obs):
            raise UnsupportedSpaceError(
                f"LatentObservationWrapper: the real env's observation space {env.observation_space} does not fit "
                f"the world model ({name}), which was built for observations {model_obs}"
            )
        action_spec = getattr(adapter, "action_spec", None)
        if action_spec is not None:
            model_act = spec_to_space(action_spec)
            if not _fits(env.action_space, model_act):
                raise UnsupportedSpaceError(
                    f"LatentObservationWrapper: the real env's action space {env.action_space} does not fit the "
                    f"world model ({name}), which was built for actions {model_act}"
                )
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            return
        probe = np.zeros((1, *space.shape), dtype=space.dtype)
        try:
            out = adapter.observe(None, None, probe, generator=torch.Generator().manual_seed(0))
            latent = tuple(out["observation"].shape)
        except Exception as err:  # noqa: BLE001 - re-raised naming both spaces
            raise UnsupportedSpaceError(
                f"LatentObservationWrapper: the world model's filter ({name}.observe) fails on an observation of "
                f"the real env's space {space}: {type(err).__name__}: {err}"
            ) from err
        if latent != (1, *self.observation_space.shape):
            raise UnsupportedSpaceError(
                f"LatentObservationWrapper: {name}.observe returned features of shape {latent[1:]} for the real "
                f"env's observations {space}, but declares the latent space {self.observation_space}"
            )

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
        seed = check_seed(seed)
        if seed is not None:
            self.generator.manual_seed(torch_seed(seed))
        obs, info = self.env.reset(seed=seed, options=options)
        self._state = None
        return self._filter(None, obs), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the real env and filter its observation."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._filter(action, obs), reward, terminated, truncated, info


def _fits(env_space: gym.Space, model_space: gym.Space) -> bool:
    """Whether an env's space carries what a model built for ``model_space`` takes (same kind
    and shape; the same number of actions for discrete spaces; dtypes may differ)."""
    if isinstance(model_space, gym.spaces.Dict):
        return isinstance(env_space, gym.spaces.Dict) and set(env_space.spaces) == set(model_space.spaces) and all(
            _fits(env_space[k], model_space[k]) for k in model_space.spaces
        )
    if isinstance(model_space, gym.spaces.Discrete):
        return isinstance(env_space, gym.spaces.Discrete) and int(env_space.n) == int(model_space.n)
    if isinstance(model_space, gym.spaces.MultiDiscrete):
        return isinstance(env_space, gym.spaces.MultiDiscrete) and np.array_equal(env_space.nvec, model_space.nvec)
    return type(env_space) is type(model_space) and tuple(env_space.shape) == tuple(model_space.shape)
