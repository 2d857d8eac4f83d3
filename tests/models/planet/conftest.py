"""Shared fixtures for the PlaNet tests: micro configs, spaces and synthetic replay batches."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from tensordict import TensorDict

from wmenv.models.planet import CEMConfig, PlanetConfig, PlanetRSSMConfig
from wmenv.testing import random_replay_batch, train_on_batch

VECTOR = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
IMAGE = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


def micro(**changes) -> PlanetConfig:
    """Smaller than ``tiny``: every test stays fast on two loaded CPU cores."""
    base = PlanetConfig.tiny().replace(
        rssm=PlanetRSSMConfig(deter=16, stoch=4, hidden=16), mlp_units=16, cnn_depth=4,
        planner=CEMConfig(horizon=3, candidates=16, iterations=2, top_k=4), lr=3e-3,
    )
    return base.replace(**changes)


def make_batch(obs_space: gym.Space, act_space: gym.Space, b: int = 3, t: int = 6, seed: int = 0) -> TensorDict:
    """Random batch ``[B, T]`` in the replay row format (see ``wmenv.testing.random_replay_batch``)."""
    return random_replay_batch(obs_space, act_space, b, t, seed, observation_noise="uniform")


train = train_on_batch
