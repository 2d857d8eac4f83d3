"""Dreamer agent: world model + actor + critic learned in imagination, and a collector policy.

One ``loss(batch)`` returns world-model, actor and critic losses to be summed into ONE backward
pass. Isolation between them: imagination starts from *detached* posterior states and runs with
the world model (and the critic, where its values feed the actor) frozen, so the actor loss
trains only the actor and the critic loss, computed on detached features and targets, only the
critic.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.models.dreamer.config import DreamerConfig
from wmenv.models.dreamer.loss import ReturnNormalizer, lambda_returns, scalar_head_mean, scalar_head_nll
from wmenv.models.dreamer.model import DreamerWorldModel
from wmenv.nn import MLP, BoundedNormal, OneHotDist, TanhNormal, frozen

__all__ = ["DreamerAgent", "DreamerPolicy"]


class DreamerAgent(nn.Module):
    """World model + actor + critic (+ slow target critic) of Dreamer V1/V2/V3.

    Args:
        config: :class:`DreamerConfig`.
        observation_space: ``Box`` vectors or 64x64x3 uint8 images.
        action_space: ``Discrete`` (one-hot categorical actor) or 1-D ``Box`` (bounded/tanh normal).
    """

    def __init__(self, config: DreamerConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.world_model = DreamerWorldModel(config, observation_space, action_space)
        self.config = cfg = self.world_model.config
        self.observation_space, self.action_space = observation_space, action_space
        wm = self.world_model
        feat, kw = wm.rssm.feature_dim, {"norm": cfg.norm, "act": cfg.act}
        self.discrete = wm.actions.discrete
        adim = wm.actions.dim
        self.actor = MLP(feat, adim if self.discrete else 2 * adim, cfg.mlp_units, cfg.mlp_layers, **kw)
        twohot = cfg.critic_head == "twohot"
        self.critic = MLP(
            feat, cfg.bins if twohot else 1, cfg.mlp_units, cfg.mlp_layers, out_init_zero=twohot, **kw
        )
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.return_norm = ReturnNormalizer()
        b = cfg.behavior
        self.actor_grad = (
            b.actor_grad if b.actor_grad != "auto" else ("reinforce" if self.discrete else "dynamics")
        )
        dist = b.continuous_dist
        self.continuous_dist = (
            dist if dist != "auto" else ("bounded_normal" if cfg.version == "v3" else "tanh_normal")
        )

    # ------------------------------------------------------------------ policy
    def policy(self, features: torch.Tensor) -> OneHotDist | BoundedNormal | TanhNormal:
        """Action distribution for features ``(..., F)`` (model action space: one-hot or [-1, 1])."""
        out = self.actor(features)
        if self.discrete:
            return OneHotDist(out, unimix=0.01 if self.config.version == "v3" else 0.0)
        if self.continuous_dist == "bounded_normal":
            return BoundedNormal(out)
        return TanhNormal(out)

    def _draw(self, dist: Any, explore: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        if not explore:
            return dist.mode()
        return dist.sample(generator) if self.discrete else dist.rsample(generator)

    def value(self, features: torch.Tensor, slow: bool = False) -> torch.Tensor:
        """Critic (or slow critic) value ``(...)``."""
        net = self.slow_critic if slow else self.critic
        return scalar_head_mean(net(features), self.config.critic_head)

    # ------------------------------------------------------------------ training
    def imagine(self, start: TensorDictBase) -> dict[str, torch.Tensor]:
        """Roll the actor out in the (frozen) world model from detached start states ``[N]``.

        Returns:
            ``feat`` ``(H + 1, N, F)``, ``logp`` and ``entropy`` ``(H, N)``.
        """
        rssm, reinforce = self.world_model.rssm, self.actor_grad == "reinforce"
        state = start
        feats, logps, ents = [rssm.features(state)], [], []
        for _ in range(self.config.behavior.horizon):
            feat = feats[-1]
            dist = self.policy(feat.detach() if reinforce else feat)
            action = self._draw(dist, explore=True)
            logps.append(dist.log_prob(action.detach()))
            ents.append(dist.entropy())
            state = rssm.img_step(state, action.detach() if reinforce else action)
            feats.append(rssm.features(state))
        return {"feat": torch.stack(feats), "logp": torch.stack(logps), "entropy": torch.stack(ents)}

    def behavior_loss(self, start: TensorDictBase, start_terminated: torch.Tensor) -> TensorDictBase:
        """Actor and critic losses from imagined trajectories.

        Args:
            start: detached RSSM states ``[N]`` (``deter``, ``stoch``) to imagine from.
            start_terminated: ``(N,)`` bool, start state is terminal (its trajectory gets weight 0).
        """
        cfg, b, wm = self.config, self.config.behavior, self.world_model
        with frozen(wm, self.critic):
            traj = self.imagine(start)
            feat = traj["feat"]
            reward = wm.reward(feat[1:])  # (H, N)
            discount = b.gamma * wm.cont_prob(feat[1:])
            value = self.value(feat, slow=cfg.version != "v3")  # (H + 1, N)
            ret = lambda_returns(reward, value, discount, b.lam)  # (H, N)
        start_cont = (~start_terminated.bool()).float()
        weight = torch.cat([torch.ones_like(discount[:1]), discount[:-1]]).cumprod(0).detach() * start_cont
        if cfg.behavior.return_norm:
            if self.training:
                self.return_norm.update(ret)
            scale = self.return_norm.scale()
        else:
            scale = torch.ones(())
        if self.actor_grad == "reinforce":
            objective = traj["logp"] * ((ret - value[:-1]) / scale).detach()
        else:
            objective = ret / scale
        actor_loss = -(weight * (objective + b.entropy * traj["entropy"])).mean()
        crit_in = feat[:-1].detach()
        crit_out = self.critic(crit_in)
        critic_nll = scalar_head_nll(crit_out, ret.detach(), cfg.critic_head)
        if b.slow_critic_reg > 0:
            slow_target = self.value(crit_in, slow=True).detach()
            critic_nll = critic_nll + b.slow_critic_reg * scalar_head_nll(
                crit_out, slow_target, cfg.critic_head
            )
        critic_loss = (weight * critic_nll).mean()
        return TensorDict(
            {
                "loss_actor": actor_loss,
                "loss_critic": critic_loss,
                "imag_return": ret.detach().mean(),
                "imag_reward": reward.detach().mean(),
                "actor_entropy": traj["entropy"].detach().mean(),
                "return_scale": scale.detach().clone(),
            },
            batch_size=[],
        )

    def loss(self, batch: TensorDictBase) -> TensorDictBase:
        """World-model losses plus ``loss_actor`` and ``loss_critic`` (sum them; one backward).

        Args:
            batch: TensorDict ``[B, T]`` (see :mod:`wmenv.models.dreamer.model`).
        """
        wm_out, post = self.world_model.compute_loss(batch)
        start = post.select("deter", "stoch").detach().reshape(-1)
        ac_out = self.behavior_loss(start, batch["terminated"].reshape(-1))
        return wm_out.update(ac_out)

    def optim_groups(self) -> dict[str, dict]:
        """Optimizer groups ``model``, ``actor``, ``critic`` (the slow critic is not trained)."""
        o = self.config.optim
        groups = self.world_model.optim_groups()
        groups["actor"] = {
            "params": list(self.actor.parameters()),
            "lr": o.actor_lr,
            "eps": o.eps,
            "grad_clip": o.ac_grad_clip,
            "weight_decay": o.weight_decay,
        }
        groups["critic"] = {
            "params": list(self.critic.parameters()),
            "lr": o.critic_lr,
            "eps": o.eps,
            "grad_clip": o.ac_grad_clip,
            "weight_decay": o.weight_decay,
        }
        return groups

    @torch.no_grad()
    def after_update(self, step: int) -> None:
        """Move the slow critic towards the critic (EMA with ``behavior.slow_critic_fraction``)."""
        frac = self.config.behavior.slow_critic_fraction
        for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters()):
            slow.lerp_(fast, frac)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(
        self,
        observation: torch.Tensor,
        state: TensorDictBase | None = None,
        explore: bool = False,
        *,
        is_first: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, TensorDictBase]:
        """Filter a real observation with the posterior and pick an action.

        Args:
            observation: ``(B, *obs_shape)`` real observations.
            state: ``[B]`` from the previous call (``deter``, ``stoch``, ``action``), ``None`` at start.
            explore: sample from the policy (else its mode).
            is_first: ``(B,)`` bool, members starting a new episode (ignored when ``state`` is None).
            generator: randomness for sampling.

        Returns:
            ``(env actions (B, *action_shape), new state [B])``.
        """
        wm = self.world_model
        obs = observation.to(next(self.parameters()).device)
        n = obs.shape[0]
        if state is None:
            first = torch.ones(n, dtype=torch.bool, device=obs.device)
            prev_action = torch.zeros(n, wm.actions.dim, device=obs.device)
            rssm_state = None
        else:
            first = (
                torch.zeros(n, dtype=torch.bool, device=obs.device) if is_first is None else is_first.bool()
            )
            prev_action, rssm_state = state["action"], state.select("deter", "stoch")
        post, _ = wm.rssm.observe(
            wm.embed(obs.unsqueeze(1)),
            prev_action.unsqueeze(1),
            first.unsqueeze(1),
            rssm_state,
            sample=explore,
            generator=generator,
        )
        new = post[:, -1].select("deter", "stoch")
        action = self._draw(self.policy(wm.rssm.features(new)), explore, generator)
        new.set("action", action)
        return wm.actions.decode(action), new

    def make_policy(self, explore: bool = True, seed: int | None = None) -> DreamerPolicy:
        """A NumPy-in / NumPy-out recurrent policy for collectors (see :class:`DreamerPolicy`)."""
        return DreamerPolicy(self, explore=explore, seed=seed)


class DreamerPolicy:
    """Callable ``obs (N, ...) np -> actions (N, ...) np`` that carries the recurrent state.

    Call :meth:`reset` at the start (all members) and for members whose episode ended.

    Args:
        agent: the agent to act with.
        explore: sample actions (else the policy mode).
        seed: seeds the policy's own generator.
    """

    def __init__(self, agent: DreamerAgent, explore: bool = True, seed: int | None = None) -> None:
        self.agent, self.explore = agent, explore
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self.state: TensorDictBase | None = None
        self._first: torch.Tensor | None = None

    def reset(self, mask: np.ndarray | torch.Tensor | None = None) -> None:
        """Forget the state of all members (``mask=None``) or of the members where ``mask`` is True."""
        if mask is None or self.state is None:
            self.state, self._first = None, None
            return
        m = torch.as_tensor(np.asarray(mask), dtype=torch.bool).reshape(-1)
        self._first = m if self._first is None else (self._first | m)

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """Actions for a batch of real observations ``(N, *obs_shape)``."""
        obs = torch.as_tensor(np.asarray(observation))
        action, self.state = self.agent.act(
            obs, self.state, self.explore, is_first=self._first, generator=self.generator
        )
        self._first = None
        out = action.cpu().numpy()
        return out.astype(np.int64) if self.agent.discrete else out.astype(np.float32)
