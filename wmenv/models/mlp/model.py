"""A deterministic MLP world model: last ``context`` observations + action -> next observation, reward, end.

Batch format: the replay rows of :mod:`wmenv.train.replay` as a TensorDict ``[B, T]``; ``action[t]`` is the
action that led to ``observation[t]``, so the transitions are ``obs[t-K+1..t], action[t+1] -> obs[t+1],
reward[t+1], terminated[t+1]``, masked where an episode starts inside the window (``is_first``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.mlp.config import MLPWorldModelConfig
from wmenv.nn import MLP, RunningNorm
from wmenv.nn.codecs import ActionCodec

__all__ = ["MLPWorldModel"]


class MLPWorldModel(nn.Module):
    """Predicts the next observation as a residual delta, the reward (MSE) and termination (BCE logit).

    Observations and deltas are normalised by running statistics (buffers: checkpoints hold them).

    Raises:
        UnsupportedSpaceError: observations that are not a 1-D float ``Box``; actions that are not
            ``Discrete`` or a 1-D ``Box``.
    """

    def __init__(self, config: MLPWorldModelConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1
                and np.issubdtype(observation_space.dtype, np.floating)):
            raise UnsupportedSpaceError(
                f"the MLP world model needs 1-D float Box observations, got {observation_space}; flatten Dict "
                "spaces (gymnasium.wrappers.FlattenObservation) or use an image family (dreamer, modular-rssm)"
            )
        self.config, self.observation_space, self.action_space = config, observation_space, action_space
        self.actions = ActionCodec(action_space, "the MLP world model")
        self.obs_dim = dim = int(observation_space.shape[0])
        self.obs_norm, self.delta_norm = RunningNorm(dim), RunningNorm(dim)
        self.body = MLP(config.context * dim + self.actions.dim, dim + 2, config.hidden, config.layers)

    def predict(self, history: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``history (..., K, D)`` raw observations, env ``action`` -> next obs, reward, termination logit
        and the normalised delta (the ``loss_obs`` prediction)."""
        x = torch.cat([self.obs_norm(history.float()).flatten(-2), self.actions.encode(action)], -1)
        out = self.body(x)
        delta, reward, logit = out[..., : self.obs_dim], out[..., -2], out[..., -1]
        return history[..., -1, :].float() + self.delta_norm.inverse(delta), reward, logit, delta

    def loss(self, batch: TensorDictBase) -> TensorDict:
        """``loss_obs`` (normalised delta MSE), ``loss_reward`` (MSE), ``loss_term`` (BCE) and metrics."""
        k = self.config.context
        obs = batch["observation"].float()  # (B, T, D)
        if obs.shape[1] < k + 1:
            raise ValueError(f"mlp-wm with context={k} needs sequences of >= {k + 1} steps, got {obs.shape[1]}")
        history = obs.unfold(1, k, 1).movedim(-1, -2)[:, :-1]  # (B, T-K, K, D): windows ending at t
        target = obs[:, k:]  # obs[t+1]
        mask = ~batch["is_first"].unfold(1, k, 1)[:, 1:].any(-1)  # no episode start in t-K+2..t+1
        delta = target - history[..., -1, :]
        if self.training:
            self.obs_norm.update(obs)
            self.delta_norm.update(delta[mask])
        pred, reward, logit, delta_n = self.predict(history, batch["action"][:, k:])
        w = mask.float() / mask.sum().clamp(min=1)
        term = batch["terminated"][:, k:].float()
        err_obs = (delta_n - self.delta_norm(delta)).pow(2).mean(-1)
        bce = F.binary_cross_entropy_with_logits(logit, term, reduction="none")
        with torch.no_grad():
            metrics = {
                "obs_mae": ((pred - target).abs().mean(-1) * w).sum(),
                "term_acc": (((logit > 0).float() == term).float() * w).sum(),
                "valid_frac": mask.float().mean(),
            }
        return TensorDict(
            {
                "loss_obs": (err_obs * w).sum(),
                "loss_reward": ((reward - batch["reward"][:, k:].float()).pow(2) * w).sum(),
                "loss_term": (bce * w).sum(),
                **metrics,
            },
            batch_size=[],
        )

    def optim_groups(self) -> dict[str, dict]:
        """One Adam group with the config's lr, eps and grad clip."""
        c = self.config
        return {"model": {"params": list(self.parameters()), "lr": c.lr, "eps": c.eps, "grad_clip": c.grad_clip}}
