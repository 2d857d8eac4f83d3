"""DIAMOND's agent: the world model plus an actor-critic trained entirely in imagination.

The actor-critic (:class:`ActorCritic`) reads one frame at a time through a small residual CNN and an
LSTM, with a policy head and a value head (both zero-initialised). Its loss (phase
``"actor_critic"``) follows DIAMOND:

1. **Burn-in from real frames**: ``L`` consecutive real frames of a replay sequence start the
   world model (:meth:`~wmenv.models.diamond.model.DiamondWorldModel.start`: frame buffer and the
   reward/termination LSTM) and the actor-critic's LSTM (run without gradients over the first
   ``L - 1`` frames).
2. **Imagination**: ``horizon`` steps of the frozen world model (no gradients; one batched sampler
   call per step), actions sampled from the policy.
3. **Lambda-returns** ``R_t = r_t + gamma (1 - d_t) ((1 - lambda) V(x_{t+1}) + lambda R_{t+1})``,
   bootstrapped with the value of the last imagined frame; steps after an imagined termination,
   and trajectories starting on a terminal frame, get weight 0.
4. **Losses**: REINFORCE with the value baseline ``-log pi(a_t) (R_t - V_t)``, the value regression
   ``(V_t - R_t)^2`` (``value_weight``) and an entropy bonus (``entropy``).

Differences from DIAMOND's code: every update starts new imagined trajectories from replay
(DIAMOND keeps its imagined envs running across updates); continuous actions are supported (a
bounded normal policy) besides DIAMOND's discrete ones.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.models.diamond.config import ActorCriticConfig, DiamondConfig
from wmenv.models.diamond.model import DiamondWorldModel
from wmenv.nn import BoundedNormal
from wmenv.nn.unet import group_count

__all__ = ["ActorCritic", "DiamondAgent", "DiamondPolicy", "lambda_returns", "PHASES"]

#: What ``DiamondAgent.loss`` trains: everything, the world model only, or the actor-critic only.
PHASES = ("all", "world_model", "actor_critic")


class _SmallResBlock(nn.Module):
    """``skip(x) + conv(silu(GroupNorm(x)))``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.GroupNorm(group_count(in_channels), in_channels), nn.SiLU(),
                               nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.f(x)


class ActorCritic(nn.Module):
    """CNN + LSTMCell actor-critic over single frames.

    Args:
        frame_channels: ``C``.
        image_size: ``(H, W)``.
        action_dim: ``n`` for ``Discrete(n)`` (logits), ``A`` for ``Box((A,))`` (mean and std).
        discrete: discrete or continuous actions.
        config: :class:`ActorCriticConfig`.
    """

    def __init__(self, frame_channels: int, image_size: tuple[int, int], action_dim: int, discrete: bool,
                 config: ActorCriticConfig) -> None:
        super().__init__()
        ch = config.channels
        layers: list[nn.Module] = [nn.Conv2d(frame_channels, ch[0], 3, padding=1)]
        for i, (c, down) in enumerate(zip(ch, config.down)):
            layers.append(_SmallResBlock(ch[max(0, i - 1)], c))
            if down:
                layers.append(nn.MaxPool2d(2))
        layers += [nn.SiLU(), nn.Flatten()]
        self.encoder = nn.Sequential(*layers)
        try:
            with torch.no_grad():
                flat = self.encoder(torch.zeros(1, frame_channels, *image_size)).shape[1]
        except RuntimeError:  # a pooling step on a 1x1 map
            flat = 0
        if flat == 0:
            raise ConfigError(f"actor_critic.down={config.down} pools the {image_size[0]}x{image_size[1]} frames "
                              "away; pool less (fewer True entries)")
        self.lstm = nn.LSTMCell(flat, config.lstm_dim)
        self.discrete, self.lstm_dim = discrete, config.lstm_dim
        self.actor = nn.Linear(config.lstm_dim, action_dim if discrete else 2 * action_dim)
        self.critic = nn.Linear(config.lstm_dim, 1)
        for layer in (self.actor, self.critic):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def initial_state(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero ``(h, c)``."""
        z = torch.zeros(n, self.lstm_dim, device=device)
        return z, z.clone()

    def forward(self, frame: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``frame`` ``(B, C, H, W)`` in ``[-1, 1]`` -> policy output, value ``(B,)``, new ``(h, c)``."""
        h, c = self.lstm(self.encoder(frame), state)
        return self.actor(h), self.critic(h).squeeze(-1), (h, c)

    def distribution(self, out: torch.Tensor) -> torch.distributions.Categorical | BoundedNormal:
        """The policy of a head output: categorical logits or a bounded normal in ``[-1, 1]``."""
        if self.discrete:
            return torch.distributions.Categorical(logits=out)
        return BoundedNormal(out)


def lambda_returns(reward: torch.Tensor, end: torch.Tensor, value: torch.Tensor, gamma: float,
                   lam: float) -> torch.Tensor:
    """``R_t = r_t + gamma (1 - d_t) ((1 - lam) V_{t+1} + lam R_{t+1})`` with ``R_{H} = V_H``.

    Args:
        reward: ``(B, H)`` reward on arriving at step ``t + 1``.
        end: ``(B, H)`` termination on arriving at step ``t + 1``.
        value: ``(B, H + 1)`` values of steps ``0..H``.
    """
    cont = gamma * (1.0 - end.float())
    out = torch.empty_like(reward)
    last = value[:, -1]
    for t in reversed(range(reward.shape[1])):
        last = reward[:, t] + cont[:, t] * ((1 - lam) * value[:, t + 1] + lam * last)
        out[:, t] = last
    return out


class DiamondAgent(nn.Module):
    """World model (:class:`DiamondWorldModel`) + :class:`ActorCritic`, trainable by :class:`wmenv.train.Trainer`.

    ``loss(batch)`` trains the parts of the current :attr:`phase` (``"all"``: world model and
    actor-critic, what the generic ``wmenv train`` runs; the staged driver alternates
    ``"world_model"`` and ``"actor_critic"``). One AdamW per part (:meth:`optim_groups`): parts
    absent from a loss get no gradient, so their optimizer leaves them untouched.

    Args:
        config: :class:`DiamondConfig`.
        observation_space: ``uint8`` frames.
        action_space: ``Discrete`` or 1-D ``Box``.
    """

    def __init__(self, config: DiamondConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.world_model = DiamondWorldModel(config, observation_space, action_space)
        self.config, self.observation_space, self.action_space = config, observation_space, action_space
        h, w, c = self.world_model.frame_shape
        codec = self.world_model.actions
        self.discrete = codec.discrete
        self.actor_critic = ActorCritic(c, (h, w), codec.dim, codec.discrete, config.actor_critic)
        self.phase = "all"

    def set_phase(self, phase: str) -> None:
        """What :meth:`loss` trains next: ``"all"``, ``"world_model"`` or ``"actor_critic"``."""
        if phase not in PHASES:
            raise ConfigError(f"unknown phase {phase!r}; expected one of {list(PHASES)}")
        self.phase = phase

    # ------------------------------------------------------------------ losses
    def loss(self, batch: TensorDictBase) -> TensorDict:
        """The losses of the current phase on a replay batch ``[B, T]`` (``T >= L + 1`` for the world model,
        ``T >= 1`` for the actor-critic, which burns in on the last ``L`` rows of each sequence)."""
        out: dict[str, torch.Tensor] = {}
        if self.phase in ("all", "world_model"):
            wm = self.world_model
            loss_d, metrics_d = wm.denoiser_loss(batch)
            loss_r, loss_e, metrics_r = wm.reward_end_loss(batch)
            out.update(loss_denoiser=loss_d, loss_reward=loss_r, loss_end=loss_e, **metrics_d, **metrics_r)
        if self.phase in ("all", "actor_critic"):
            out.update(self.actor_critic_loss(batch))
        return TensorDict(out, batch_size=[])

    def actor_critic_loss(self, batch: TensorDictBase) -> dict[str, torch.Tensor]:
        """``loss_actor``, ``loss_value``, ``loss_entropy`` from imagined trajectories (module docstring)."""
        cfg, wm, ac = self.config.actor_critic, self.world_model, self.actor_critic
        big_l = self.config.context_frames
        ctx = batch[:, -big_l:] if batch.batch_size[1] > big_l else batch
        obs = ctx["observation"]
        b, dev = obs.shape[0], obs.device
        key = torch.randint(0, 2**62, (b,), device=dev)
        state = wm.start(obs, ctx["action"], ctx["is_first"], key=key)
        hc = ac.initial_state(b, dev)
        with torch.no_grad():  # burn-in of the actor-critic's LSTM on the real frames before the last one
            frames = wm.codec.encode(state["frames"])
            for p in range(big_l - 1):
                _, _, (h2, c2) = ac(frames[:, p], hc)
                v = state["valid"][:, p, None]
                hc = (torch.where(v, h2, hc[0]), torch.where(v, c2, hc[1]))
        frame = frames[:, -1]
        logps, ents, values, rewards, ends = [], [], [], [], []
        for _ in range(cfg.horizon):
            out, value, hc = ac(frame, hc)
            dist = ac.distribution(out)
            with torch.no_grad():
                action = dist.sample() if self.discrete else dist.rsample()
            logps.append(dist.log_prob(action))
            ents.append(dist.entropy())
            values.append(value)
            env_action = action if self.discrete else wm.actions.decode(action)
            step = wm.imagine(state, env_action)
            state = step["state"]
            rewards.append(step["reward"])
            ends.append(step["terminated"])
            frame = wm.codec.encode(step["observation"])
        with torch.no_grad():
            _, boot, _ = ac(frame, hc)
        value = torch.stack(values, 1)  # (B, H)
        reward, end = torch.stack(rewards, 1), torch.stack(ends, 1).float()
        ret = lambda_returns(reward, end, torch.cat([value.detach(), boot[:, None]], 1), cfg.gamma, cfg.lam)
        alive = torch.cat([torch.ones_like(end[:, :1]), (1 - end[:, :-1]).cumprod(1)], 1)
        alive = alive * (~ctx["terminated"][:, -1].bool()).float()[:, None]
        w = alive / alive.sum().clamp(min=1)
        logp, ent = torch.stack(logps, 1), torch.stack(ents, 1)
        advantage = (ret - value).detach()
        return {
            "loss_actor": -(logp * advantage * w).sum(),
            "loss_value": cfg.value_weight * ((value - ret.detach()).pow(2) * w).sum(),
            "loss_entropy": -cfg.entropy * (ent * w).sum(),
            "imag_return": (ret.detach() * w).sum(),
            "imag_reward": reward.mean(),
            "imag_end": end.mean(),
            "policy_entropy": (ent.detach() * w).sum(),
        }

    def optim_groups(self) -> dict[str, dict[str, Any]]:
        """AdamW groups ``denoiser``, ``reward_end`` and ``actor_critic`` (DIAMOND's learning rates and clips)."""
        o = self.config.optim
        wm = self.world_model
        return {
            "denoiser": {"params": list(wm.denoiser.parameters()), "lr": o.denoiser_lr, "eps": o.eps,
                         "grad_clip": o.denoiser_grad_clip, "weight_decay": o.weight_decay},
            "reward_end": {"params": list(wm.reward_end.parameters()), "lr": o.reward_end_lr, "eps": o.eps,
                           "grad_clip": o.reward_end_grad_clip, "weight_decay": o.weight_decay},
            "actor_critic": {"params": list(self.actor_critic.parameters()), "lr": o.actor_critic_lr, "eps": o.eps,
                             "grad_clip": o.actor_critic_grad_clip, "weight_decay": 0.0},
        }

    # ------------------------------------------------------------------ acting
    def make_policy(self, explore: bool = False, seed: int | None = None) -> DiamondPolicy:
        """A NumPy-in / NumPy-out recurrent policy for the real env (see :class:`DiamondPolicy`)."""
        return DiamondPolicy(self, explore=explore, seed=seed)


class DiamondPolicy:
    """``obs (N, H, W, C) uint8 -> actions (N, ...)`` with the actor-critic's LSTM state per member.

    ``explore=True`` (collection): sample from the policy, and with probability
    ``actor_critic.explore_epsilon`` take a uniformly random action instead. ``explore=False``:
    sample (``actor_critic.eval_sample``, DIAMOND's evaluation) or take the most likely action.
    Call :meth:`reset` for members whose episode starts.

    Args:
        agent: the trained agent.
        explore: collection or evaluation behaviour.
        seed: seed of the policy's own generator.
    """

    def __init__(self, agent: DiamondAgent, explore: bool = False, seed: int | None = None) -> None:
        self.agent, self.explore = agent, explore
        self.generator = torch.Generator(device=next(agent.parameters()).device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset(self, mask: np.ndarray | torch.Tensor | None = None) -> None:
        """Forget the LSTM state of every member (``mask=None``) or of the members where ``mask`` is True."""
        if mask is None or self.state is None:
            self.state = None
            return
        keep = (~torch.as_tensor(np.asarray(mask), dtype=torch.bool).reshape(-1)).float().to(self.state[0].device)
        self.state = (self.state[0] * keep[:, None], self.state[1] * keep[:, None])

    @torch.no_grad()
    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """Actions for a batch of real frames ``(N, H, W, C)``."""
        agent = self.agent
        ac, wm = agent.actor_critic, agent.world_model
        dev = next(agent.parameters()).device
        obs = torch.as_tensor(np.asarray(observation), device=dev)
        if obs.dim() == 3:
            obs = obs[None]
        n = obs.shape[0]
        if self.state is None or self.state[0].shape[0] != n:
            self.state = ac.initial_state(n, dev)
        out, _, self.state = ac(wm.codec.encode(obs), self.state)
        cfg = agent.config.actor_critic
        g = self.generator
        if agent.discrete:
            probs = torch.softmax(out, -1)
            if self.explore or cfg.eval_sample:
                action = torch.multinomial(probs, 1, generator=g).squeeze(-1)
            else:
                action = probs.argmax(-1)
            if self.explore and cfg.explore_epsilon > 0:
                rand = torch.randint(0, probs.shape[-1], (n,), generator=g, device=dev)
                flip = torch.rand(n, generator=g, device=dev) < cfg.explore_epsilon
                action = torch.where(flip, rand, action)
            return action.cpu().numpy().astype(np.int64)
        dist = BoundedNormal(out)
        vec = dist.rsample(g) if (self.explore or cfg.eval_sample) else dist.mode()
        if self.explore and cfg.explore_epsilon > 0:
            flip = torch.rand(n, 1, generator=g, device=dev) < cfg.explore_epsilon
            vec = torch.where(flip, torch.rand(vec.shape, generator=g, device=dev) * 2 - 1, vec)
        return wm.actions.decode(vec).cpu().numpy().astype(np.float32)

