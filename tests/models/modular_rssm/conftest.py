"""Shared fixtures for the Modular RSSM tests: micro configs, spaces and synthetic replay batches."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import TensorDict

from wmenv.models.modular_rssm import ModularRSSMConfig
from wmenv.nn.planning import CEMConfig

VECTOR = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
IMAGE = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)


def micro(**changes) -> ModularRSSMConfig:
    """The ``tiny`` preset with a tiny planner and a higher learning rate (a few steps must show progress)."""
    base = ModularRSSMConfig.tiny().replace(planner=CEMConfig(horizon=3, candidates=16, iterations=2, top_k=4),
                                            lr=3e-3)
    return base.replace(**changes)


def make_batch(obs_space: gym.Space, act_space: gym.Space, b: int = 3, t: int = 6, seed: int = 0) -> TensorDict:
    """Random batch ``[B, T]`` in the replay row format with one episode boundary per row."""
    g = torch.Generator().manual_seed(seed)
    if obs_space.dtype == np.uint8:
        obs = torch.randint(0, 256, (b, t, *obs_space.shape), generator=g, dtype=torch.uint8)
    else:
        obs = torch.rand(b, t, *obs_space.shape, generator=g) * 2 - 1
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
            "observation": obs, "action": action, "reward": reward, "terminated": terminated,
            "truncated": torch.zeros(b, t, dtype=torch.bool), "is_first": is_first,
            "is_last": terminated.clone(), "episode": torch.cumsum(is_first.long(), 1),
        },
        batch_size=[b, t],
    )


def train(model: torch.nn.Module, batch: TensorDict, steps: int) -> list[float]:
    """Plain loop over ``optim_groups`` (one Adam per group); returns the summed loss per step."""
    opts = [(torch.optim.Adam(g["params"], lr=g["lr"], eps=g["eps"]), g) for g in model.optim_groups().values()]
    losses = []
    for _ in range(steps):
        out = model.loss(batch)
        loss = sum(v for k, v in out.items() if k.startswith("loss_"))
        for opt, _ in opts:
            opt.zero_grad()
        loss.backward()
        for opt, g in opts:
            torch.nn.utils.clip_grad_norm_(g["params"], g["grad_clip"])
            opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seed, and one intra-op thread (tiny models on a loaded 2-core box slow down badly with two)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
