"""Shared helpers of the IRIS tests: spaces, tiny models, real rows of the synthetic pixel game."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict

from tests.models.iris.pixel_env import CatchPixels
from wmenv.models.iris import IRIS, IRISConfig

BINARY = gym.spaces.Box(0, 1, (10, 10, 4), np.uint8)
RGB = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32))


def tiny_model(obs_space: gym.Space = BINARY, act_space: gym.Space = DISCRETE, seed: int = 0, **changes) -> IRIS:
    """``IRISConfig.tiny()`` (fields replaced by ``changes``) built with fixed weights."""
    torch.manual_seed(seed)
    return IRIS(IRISConfig.tiny().replace(**changes), obs_space, act_space)


def catch_rows(episodes: int = 6, seed: int = 0) -> TensorDict:
    """Rows ``[N]`` in the replay format from random-policy episodes of the synthetic pixel game."""
    env = CatchPixels()
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("observation", "action", "reward", "terminated", "truncated",
                                             "is_first", "is_last", "episode")}

    def add(*values):
        for k, v in zip(cols, values):
            cols[k].append(v)

    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        add(obs, 0, 0.0, False, False, True, False, ep)
        done = False
        while not done:
            action = int(rng.integers(3))
            obs, reward, term, trunc, _ = env.step(action)
            done = term or trunc
            add(obs, action, float(reward), term, trunc, False, done, ep)
    dtypes = (torch.uint8, torch.int64, torch.float32, torch.bool, torch.bool, torch.bool, torch.bool, torch.int64)
    data = {k: torch.as_tensor(np.asarray(v)).to(d) for (k, v), d in zip(cols.items(), dtypes)}
    return TensorDict(data, batch_size=[len(cols["episode"])])


def windows(rows: TensorDict, t: int, stride: int = 2) -> TensorDict:
    """Length-``t`` slices ``[B, t]`` of ``rows`` inside one episode each."""
    ep = rows["episode"]
    starts = [i for i in range(0, rows.batch_size[0] - t + 1, stride) if bool((ep[i : i + t] == ep[i]).all())]
    idx = torch.tensor(starts)[:, None] + torch.arange(t)[None]
    return rows[idx.reshape(-1)].reshape(len(starts), t)
