"""Shared fixtures for the Dreamer tests: tiny configs, spaces and synthetic batches."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from tensordict import TensorDict

from wmenv.models.dreamer import DreamerConfig
from wmenv.testing import random_replay_batch, train_on_batch

VECTOR = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
IMAGE = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)


def micro(version: str = "v3", **changes) -> DreamerConfig:
    """A config far smaller than ``tiny`` so every test stays fast on two CPU cores."""
    cfg = DreamerConfig.tiny()
    cfg = cfg.replace(
        version=version,
        rssm=cfg.rssm.__class__(deter=32, stoch=4, classes=4, hidden=32),
        mlp_units=32,
        mlp_layers=1,
        cnn_depth=4,
        bins=31,
        behavior=cfg.behavior.__class__(horizon=4),
        **changes,
    )
    return cfg


def make_batch(obs_space: gym.Space, act_space: gym.Space, b: int = 3, t: int = 6, seed: int = 0) -> TensorDict:
    """Random batch ``[B, T]`` in the replay row format (see ``wmenv.testing.random_replay_batch``)."""
    return random_replay_batch(obs_space, act_space, b, t, seed, observation_noise="normal")


train = train_on_batch
