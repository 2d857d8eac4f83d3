"""The IRIS actor-critic: a small CNN + LSTM on frames, trained in imagination with lambda-returns.

Network: ``len(channels)`` stages of (3x3 conv, SiLU, 2x2 max-pool) until the map is at most 4x4,
flatten, an LSTM cell, then a policy head (categorical logits for ``Discrete``, a bounded normal for
``Box`` actions) and a value head. Input frames are scaled to ``[0, 1]`` by the space's ``high``.

Training (:func:`actor_critic_loss`, the paper's recipe):

1. burn the LSTM in (no gradient) on ``burn_in`` real frames, as the tokenizer reconstructs them;
2. start the world model on the real context and imagine ``horizon`` steps with actions sampled
   from the policy (no gradient through the world model: it is only sampled from);
3. lambda-returns ``R_t = r_{t+1} + gamma (1 - d_{t+1}) ((1 - lam) V_{t+1} + lam R_{t+1})`` bootstrapped
   with the value of the last imagined frame;
4. losses: REINFORCE with the value as baseline ``-log pi(a_t) sg(R_t - V_t)``, an entropy bonus, and
   ``(V_t - sg(R_t))^2``. Steps after an imagined termination get weight 0.

In the real env (:class:`IRISPolicy`) the policy sees the tokenizer's reconstruction of each frame
(``ActorCriticConfig.on_reconstructions``), as in imagination.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.models.iris.config import ActorCriticConfig
from wmenv.models.iris.tokenizer import check_frame_space
from wmenv.nn.distributions import BoundedNormal
from wmenv.nn.losses import masked_mean

__all__ = ["ActorCritic", "IRISPolicy", "lambda_returns", "actor_critic_loss"]


def lambda_returns(reward: torch.Tensor, value: torch.Tensor, cont: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """TD(lambda) returns ``(H, N)`` from rewards and continuation flags ``(H, N)`` of steps ``1..H`` and
    values ``(H + 1, N)`` of steps ``0..H``."""
    out, last = [], value[-1]
    for t in reversed(range(reward.shape[0])):
        last = reward[t] + gamma * cont[t] * ((1 - lam) * value[t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1])


class ActorCritic(nn.Module):
    """CNN + LSTM with policy and value heads (see the module docstring).

    Args:
        config: :class:`ActorCriticConfig`.
        observation_space: ``uint8`` image space (``H x W x C`` or ``H x W``).
        action_space: ``Discrete(n)`` or 1-D ``Box``.
    """

    def __init__(self, config: ActorCriticConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.config = config
        h, w, c = check_frame_space(observation_space, "the IRIS actor-critic")
        self.frame_shape = tuple(int(s) for s in observation_space.shape)
        self.high = float(np.max(observation_space.high))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            self.action_dim = int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.action_dim = int(action_space.shape[0])
        else:
            raise ConfigError(f"the IRIS actor-critic acts in Discrete or 1-D Box spaces, got {action_space}")
        layers: list[nn.Module] = []
        ch, side = c, max(h, w)
        for out in config.channels:
            layers += [nn.Conv2d(ch, out, 3, 1, 1), nn.SiLU()]
            ch = out
            if side > 4:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                side = -(-side // 2)
        layers.append(nn.Flatten())
        self.cnn = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.cnn(torch.zeros(1, c, h, w)).shape[-1]
        self.lstm = nn.LSTMCell(flat, config.lstm)
        self.policy_head = nn.Linear(config.lstm, self.action_dim if self.discrete else 2 * self.action_dim)
        self.value_head = nn.Linear(config.lstm, 1)
        nn.init.zeros_(self.policy_head.weight)
        nn.init.zeros_(self.policy_head.bias)

    def initial(self, n: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero LSTM state ``(h, c)`` for ``n`` members."""
        device = device if device is not None else self.value_head.weight.device
        zeros = torch.zeros(n, self.config.lstm, device=device)
        return zeros, zeros.clone()

    def forward(
        self, frames: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``uint8`` frames ``(N, *frame_shape)`` -> ``(policy output (N, A or 2A), value (N,), new hidden)``."""
        x = frames.float().clamp(0, self.high) / self.high
        x = x.unsqueeze(1) if len(self.frame_shape) == 2 else x.movedim(-1, 1)
        hidden = self.lstm(self.cnn(x), hidden)
        out = hidden[0]
        return self.policy_head(out), self.value_head(out).squeeze(-1), hidden

    # ------------------------------------------------------------------ distributions
    def sample(self, out: torch.Tensor, explore: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """Env actions ``(N,)`` int64 or ``(N, A)`` in ``[-1, 1]`` (not yet rescaled to the Box)."""
        if self.discrete:
            if not explore:
                return out.argmax(-1)
            probs = torch.softmax(out.detach().float(), -1)
            return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        dist = BoundedNormal(out)
        return (dist.rsample(generator) if explore else dist.mode()).detach()

    def log_prob_entropy(self, out: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log pi(action)`` and the entropy, both ``(N,)``."""
        if self.discrete:
            logp = F.log_softmax(out.float(), -1)
            return logp.gather(-1, action.long()[:, None]).squeeze(-1), -(logp.exp() * logp).sum(-1)
        dist = BoundedNormal(out.float())
        return dist.log_prob(action), dist.entropy()


def actor_critic_loss(model: Any, batch: TensorDictBase) -> TensorDict:
    """Actor and critic losses of an :class:`~wmenv.models.iris.model.IRIS` model from imagination.

    Args:
        model: the IRIS module (tokenizer, world model, actor-critic, ``imagination(...)``).
        batch: replay sequences ``[B, T]``; their last ``config.actor_critic_context`` rows are the real
            context (the LSTM burn-in and the world model's start).
    """
    cfg = model.config
    ac, c = model.actor_critic, cfg.actor_critic
    ctx = batch[:, -min(cfg.actor_critic_context, batch.batch_size[1]) :]
    b, t = ctx.batch_size
    engine = model.imagination(observation_mode="decoded", real_start_observation=False, sample_termination=True,
                               copy_state=False)
    with torch.no_grad(), model.evaluating():
        wm_ctx = ctx[:, -min(cfg.world_model.burn_in, t) :]
        out = engine.initial_state(wm_ctx)
        hidden = ac.initial(b)
        if t > 1 and c.burn_in > 0:
            frames = ctx["observation"][:, :-1]
            if c.on_reconstructions:
                frames = model.tokenizer.reconstruct(frames)
            for i in range(frames.shape[1]):
                _, _, hidden = ac(frames[:, i], hidden)
    state, obs = out["state"], out["observation"]
    logps, ents, values, rewards, conts = [], [], [], [], []
    for _ in range(c.horizon):
        pout, value, hidden = ac(obs, hidden)
        action = ac.sample(pout, explore=True)
        logp, ent = ac.log_prob_entropy(pout, action)
        logps.append(logp)
        ents.append(ent)
        values.append(value)
        env_action = action if ac.discrete else model.actions.decode(action)
        with torch.no_grad(), model.evaluating():
            step = engine.step(state, env_action)
        state, obs = step["state"], step["observation"]
        rewards.append(step["reward"])
        conts.append((~step["terminated"]).float())
    _, last_value, _ = ac(obs, hidden)
    values.append(last_value)
    value = torch.stack(values)  # (H + 1, B)
    reward, cont = torch.stack(rewards), torch.stack(conts)  # (H, B)
    returns = lambda_returns(reward, value.detach(), cont, c.gamma, c.lam)  # (H, B)
    alive = torch.cat([torch.ones_like(cont[:1]), cont[:-1]]).cumprod(0) > 0  # steps not after an imagined end
    logp, entropy = torch.stack(logps), torch.stack(ents)
    advantage = (returns - value[:-1]).detach()
    return TensorDict(
        {
            "loss_policy": -masked_mean(logp * advantage, alive),
            "loss_entropy": -c.entropy * masked_mean(entropy, alive),
            "loss_value": masked_mean((value[:-1] - returns.detach()).pow(2), alive),
            "imag_return": returns.detach().mean(),
            "imag_reward": reward.mean(),
            "imag_end": (1 - cont).mean(),
            "policy_entropy": entropy.detach().mean(),
        },
        batch_size=[],
    )


class IRISPolicy:
    """Acts in real envs: ``obs (N, ...) NumPy -> actions (N, ...)``, carrying the LSTM state.

    Call :meth:`reset` for members starting a new episode (the collector does).

    Args:
        model: the IRIS module.
        explore: sample from the policy (else its mode).
        seed: seed of the policy's own generator.
    """

    def __init__(self, model: Any, explore: bool = False, seed: int | None = None) -> None:
        self.model, self.explore = model, bool(explore)
        self.ac: ActorCritic = model.actor_critic
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))
        self.hidden: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset(self, mask: Any = None) -> None:
        """Start new episodes for members in ``mask`` ``(N,)`` (``None``: all)."""
        if mask is None or self.hidden is None:
            self.hidden = None
            return
        m = torch.as_tensor(np.asarray(mask), dtype=torch.bool, device=self.device).reshape(-1, 1)
        self.hidden = (self.hidden[0].masked_fill(m, 0.0), self.hidden[1].masked_fill(m, 0.0))

    @torch.no_grad()
    def act(self, observation: torch.Tensor) -> torch.Tensor:
        """Torch version of ``__call__``: ``(N, *frame_shape)`` -> env actions."""
        obs = observation.to(self.device)
        n = obs.shape[0]
        if self.hidden is None or self.hidden[0].shape[0] != n:
            self.hidden = self.ac.initial(n, self.device)
        frames = self.model.tokenizer.reconstruct(obs) if self.ac.config.on_reconstructions else obs
        out, _, self.hidden = self.ac(frames, self.hidden)
        action = self.ac.sample(out, self.explore, self.generator)
        return action if self.ac.discrete else self.model.actions.decode(action)

    def __call__(self, observation: Any) -> np.ndarray:
        """Actions ``(N, ...)`` for real observations ``(N, *frame_shape)``."""
        obs = torch.as_tensor(np.ascontiguousarray(np.asarray(observation)))
        action = self.act(obs).cpu().numpy()
        return action.astype(np.int64) if self.ac.discrete else action.astype(np.float32)
