"""Shared fixtures for the Dreamer tests: tiny configs, spaces and synthetic batches."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import TensorDict

from wmenv.models.dreamer import DreamerConfig

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


def make_batch(
    obs_space: gym.Space, act_space: gym.Space, b: int = 3, t: int = 6, seed: int = 0
) -> TensorDict:
    """Random batch ``[B, T]`` in the replay format, with one episode boundary per row."""
    g = torch.Generator().manual_seed(seed)
    if obs_space.dtype == np.uint8:
        obs = torch.randint(0, 256, (b, t, *obs_space.shape), generator=g, dtype=torch.uint8)
    else:
        obs = torch.randn(b, t, *obs_space.shape, generator=g)
    if isinstance(act_space, gym.spaces.Discrete):
        action = torch.randint(0, int(act_space.n), (b, t), generator=g)
    else:
        action = torch.rand(b, t, *act_space.shape, generator=g) * 4 - 2
    is_first = torch.zeros(b, t, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[:, t // 2] = True
    terminated = torch.zeros(b, t, dtype=torch.bool)
    terminated[:, t // 2 - 1] = True
    action[is_first] = 0
    reward = torch.randn(b, t, generator=g).masked_fill(is_first, 0.0)
    return TensorDict(
        {
            "observation": obs,
            "action": action,
            "reward": reward,
            "terminated": terminated,
            "truncated": torch.zeros(b, t, dtype=torch.bool),
            "is_first": is_first,
            "is_last": terminated.clone(),
            "episode": torch.cumsum(is_first.long(), 1),
        },
        batch_size=[b, t],
    )


def train(model: torch.nn.Module, batch: TensorDict, steps: int) -> list[float]:
    """Plain training loop over ``optim_groups`` (one Adam per group, one backward per step)."""
    opts = [
        (torch.optim.Adam(g["params"], lr=g["lr"], eps=g["eps"]), g) for g in model.optim_groups().values()
    ]
    losses = []
    for step in range(steps):
        out = model.loss(batch)
        loss = sum(v for k, v in out.items() if k.startswith("loss_"))
        for opt, _ in opts:
            opt.zero_grad()
        loss.backward()
        for opt, g in opts:
            torch.nn.utils.clip_grad_norm_(g["params"], g["grad_clip"])
            opt.step()
        if hasattr(model, "after_update"):
            model.after_update(step)
        losses.append(float(loss.detach()))
    return losses


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seed, and use one intra-op thread: tiny models on a loaded 2-core machine run up to 50x
    slower with two threads contending."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
