"""A tiny registered test family: an MLP predicting the next observation (and reward).

Used by the trainer, checkpoint and CLI tests; registered as ``"test_mlp"`` (family ``"test"``).
Importable both as ``tests.train.testfamily``-style package module and as a plain module (the
kill/resume subprocess puts this directory on ``sys.path``).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase

from wmenv.core.errors import ConfigError
from wmenv.registry import ModelSpec, register_model

NAME = "test_mlp"


@dataclass(frozen=True)
class MLPConfig:
    """Config of the test MLP."""

    hidden: int = 64
    """Hidden width."""
    lr: float = 3e-3
    """Learning rate of the predictor group."""
    two_groups: bool = False
    """Use optim_groups() with separate obs and reward heads."""

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ConfigError(f"hidden must be >= 1, got {self.hidden}")

    @classmethod
    def tiny(cls) -> MLPConfig:
        """Small width."""
        return cls(hidden=32)


class NextObsMLP(torch.nn.Module):
    """Predicts ``obs[t+1]`` and ``reward[t+1]`` from ``obs[t]`` and ``action[t+1]``."""

    def __init__(self, config: MLPConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.config = config
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_dim = int(np.prod(observation_space.shape))
        self.n_act = int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else 0
        act_dim = self.n_act or int(np.prod(action_space.shape))
        self.body = torch.nn.Sequential(
            torch.nn.Linear(self.obs_dim + act_dim, config.hidden), torch.nn.Tanh()
        )
        self.obs_head = torch.nn.Linear(config.hidden, self.obs_dim)
        self.reward_head = torch.nn.Linear(config.hidden, 1)
        self.updates = 0

    def _act(self, a: torch.Tensor) -> torch.Tensor:
        if self.n_act:
            return torch.nn.functional.one_hot(a.long(), self.n_act).float()
        return a.float().flatten(2)

    def loss(self, batch: TensorDictBase) -> TensorDict:
        obs = batch["observation"].float().flatten(2)  # (B, T, D)
        x = torch.cat([obs[:, :-1], self._act(batch["action"][:, 1:])], -1)
        h = self.body(x)
        mask = (~batch["is_first"][:, 1:]).float()  # (B, T-1)
        denom = mask.sum().clamp(min=1)
        obs_err = ((self.obs_head(h) - obs[:, 1:]) ** 2).mean(-1)
        rew_err = (self.reward_head(h).squeeze(-1) - batch["reward"][:, 1:]) ** 2
        return TensorDict(
            {
                "loss_obs": (obs_err * mask).sum() / denom,
                "loss_reward": (rew_err * mask).sum() / denom,
                "obs_abs_mean": obs.abs().mean().detach(),
            },
            batch_size=[],
        )

    def optim_groups(self) -> dict[str, dict]:
        if not self.config.two_groups:
            return {"model": {"params": list(self.parameters()), "lr": self.config.lr}}
        return {
            "obs": {"params": [*self.body.parameters(), *self.obs_head.parameters()], "lr": self.config.lr},
            "reward": {"params": list(self.reward_head.parameters()), "lr": 1e-3, "grad_clip": 1.0},
        }

    def after_update(self, step: int) -> None:
        self.updates = step

    def policy(self):
        """A deterministic 'policy' (always action 0) to exercise the CLI hook."""
        space = self.action_space

        def act(obs: np.ndarray) -> np.ndarray:
            n = len(obs)
            return np.zeros((n, *space.shape), dtype=space.dtype)

        return act


def build(config: MLPConfig, observation_space: gym.Space, action_space: gym.Space) -> NextObsMLP:
    return NextObsMLP(config, observation_space, action_space)


def act_in_real_env(model: NextObsMLP, *, seed: int | None = None, explore: bool = False):
    """``ModelSpec.policy``: the model's constant policy."""
    return model.policy()


SPEC = ModelSpec(name=NAME, config_cls=MLPConfig, build=build, family="test", description="test MLP",
                 policy=act_in_real_env)


def register() -> ModelSpec:
    """Register (idempotently) the test family."""
    return register_model(SPEC, overwrite=True)


register()
