"""Shared helpers of the World Models tests: spaces, a micro config, synthetic replay batches."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict

from wmenv.models.ha import WorldModelsConfig

VECTOR = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
IMAGE = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
DISCRETE = gym.spaces.Discrete(2)
BOX = gym.spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))


def micro(**changes) -> WorldModelsConfig:
    """``tiny()`` with any field replaced (still validated)."""
    return WorldModelsConfig.tiny().replace(**changes)


def make_batch(obs_space: gym.Space, act_space: gym.Space, b: int = 3, t: int = 6, seed: int = 0) -> TensorDict:
    """Random batch ``[B, T]`` in the replay format, one episode boundary per row (at ``t // 2``)."""
    g = torch.Generator().manual_seed(seed)
    if obs_space.dtype == np.uint8:
        obs = torch.randint(0, 256, (b, t, *obs_space.shape), generator=g, dtype=torch.uint8)
    else:
        obs = torch.randn(b, t, *obs_space.shape, generator=g)
    if isinstance(act_space, gym.spaces.Discrete):
        action = torch.randint(0, int(act_space.n), (b, t), generator=g)
    else:
        action = torch.rand(b, t, *act_space.shape, generator=g)
    is_first = torch.zeros(b, t, dtype=torch.bool)
    is_first[:, 0] = is_first[:, t // 2] = True
    terminated = torch.zeros(b, t, dtype=torch.bool)
    terminated[:, t // 2 - 1] = True
    action[is_first] = 0
    reward = torch.randn(b, t, generator=g).masked_fill(is_first, 0.0)
    return TensorDict(
        {"observation": obs, "action": action, "reward": reward, "terminated": terminated,
         "truncated": torch.zeros(b, t, dtype=torch.bool), "is_first": is_first, "is_last": terminated.clone(),
         "episode": torch.cumsum(is_first.long(), 1)},
        batch_size=[b, t],
    )


def fit(model: torch.nn.Module, batch: TensorDict, steps: int) -> list[float]:
    """Plain loop over the model's ``optim_groups`` (Adam), as the generic Trainer does it."""
    groups = list(model.optim_groups().values())
    opts = [torch.optim.Adam(g["params"], lr=g["lr"]) for g in groups]
    losses = []
    for step in range(steps):
        out = model.loss(batch)
        loss = sum(v for k, v in out.items() if k.startswith("loss_"))
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()
        model.after_update(step)
        losses.append(float(loss.detach()))
    return losses


def set_fixed_weights(module: torch.nn.Module) -> None:
    """Deterministic weights independent of any RNG: ``0.5 sin(0.37 i + k)`` for parameter ``k``."""
    with torch.no_grad():
        for k, (_, p) in enumerate(sorted(module.named_parameters())):
            p.copy_(0.5 * torch.sin(torch.arange(p.numel(), dtype=torch.float32) * 0.37 + k).reshape(p.shape))
