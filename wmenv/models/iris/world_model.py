"""The IRIS world model: a causal transformer over ``[z_t^1 .. z_t^K, a_t]`` per step.

Token layout of a window of ``S`` steps (``K`` obs tokens per frame, one action token per step)::

    position  0 .. K-1        K          K+1 .. 2K     2K+1  ...
    token     z_0^1 .. z_0^K  a_0        z_1^1 .. z_1^K  a_1  ...

``a_t`` is the action taken after frame ``t``. What each output predicts:

- the output at an obs token ``z_t^k`` (``k < K``) predicts the next obs token ``z_t^{k+1}``;
- the output at the action token ``a_t`` predicts the first token ``z_{t+1}^1`` of the next frame,
  the reward received on arriving at ``t + 1`` and whether ``t + 1`` is terminal.

The output at the last obs token of a frame (``z_t^K``) predicts nothing (the action comes from the
policy). Obs tokens are embedded by a table of ``vocab_size`` rows, actions by a linear map of their
encoding (one-hot for ``Discrete``, ``[-1, 1]`` vectors for ``Box``), so discrete and continuous
actions both work. A training sequence is ``context_steps`` consecutive replay rows, i.e.
``context_steps * (K + 1) - 1`` tokens (the last action is unknown).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tensordict import TensorDict
from torch import nn

from wmenv.models.iris.config import IRISConfig
from wmenv.nn.distributions import TwoHotSymlog
from wmenv.nn.losses import masked_mean
from wmenv.nn.transformer import CausalTransformer

__all__ = ["IRISWorldModel", "valid_steps"]

#: reward values of the three classes of the ``sign`` reward head
SIGN_VALUES = (-1.0, 0.0, 1.0)


def valid_steps(is_first: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` bool: steps before any episode start after step 0 (a sequence may not cross episodes)."""
    later = is_first.bool().clone()
    later[:, 0] = False
    return later.long().cumsum(1) == 0


def _head(width: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, out))


class IRISWorldModel(nn.Module):
    """Transformer + heads (next obs token, reward, termination) over token windows.

    Args:
        config: the family config (``world_model`` and ``tokenizer`` sizes are used).
        action_dim: size of an encoded action (``ActionCodec.dim``).
    """

    def __init__(self, config: IRISConfig, action_dim: int) -> None:
        super().__init__()
        c = config.world_model
        self.config = config
        self.tokens = config.tokenizer.tokens_per_frame
        self.vocab = config.tokenizer.vocab_size
        self.steps = c.context_steps
        self.action_dim = action_dim
        self.obs_embed = nn.Embedding(self.vocab, c.embed)
        self.action_embed = nn.Linear(action_dim, c.embed)
        self.transformer = CausalTransformer(c.embed, c.layers, c.heads, config.max_tokens, c.mlp_ratio, c.dropout)
        self.obs_head = _head(c.embed, self.vocab)
        self.reward_head = _head(c.embed, 3 if c.reward_head == "sign" else c.reward_bins)
        self.end_head = _head(c.embed, 1)
        nn.init.normal_(self.obs_embed.weight, 0.0, 0.02)

    # ------------------------------------------------------------------ embeddings
    def embed_steps(self, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, S * (K + 1), C)`` of obs tokens ``(B, S, K)`` and encoded actions ``(B, S, A)``
        (the full layout; callers cut what they need)."""
        b, s, k = tokens.shape
        obs = self.obs_embed(tokens)  # (B, S, K, C)
        act = self.action_embed(actions.to(obs.dtype)).unsqueeze(2)  # (B, S, 1, C)
        return torch.cat([obs, act], 2).reshape(b, s * (k + 1), -1)

    def embed_obs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(..., C)`` of obs tokens ``(...)``."""
        return self.obs_embed(tokens)

    def embed_action(self, actions: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(..., C)`` of encoded actions ``(..., A)``."""
        return self.action_embed(actions.to(self.action_embed.weight.dtype))

    # ------------------------------------------------------------------ heads
    def reward_value(self, logits: torch.Tensor, sample: torch.Tensor | None = None) -> torch.Tensor:
        """Reward ``(...)`` of reward-head logits: ``sample`` class (sign head) or the expected value."""
        if self.config.world_model.reward_head == "sign":
            values = torch.tensor(SIGN_VALUES, device=logits.device, dtype=torch.float32)
            if sample is None:
                return (torch.softmax(logits.float(), -1) * values).sum(-1)
            return values[sample]
        return TwoHotSymlog(logits.float()).mean()

    # ------------------------------------------------------------------ training
    def loss(
        self, tokens: torch.Tensor, actions: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor,
        is_first: torch.Tensor,
    ) -> TensorDict:
        """Cross-entropies of next obs tokens, reward and termination over replay sequences.

        Args:
            tokens: ``(B, T, K)`` obs tokens of rows ``0..T-1``.
            actions: ``(B, T, A)`` encoded actions, row ``t`` holding the action taken after frame ``t``
                (the replay's ``action[t + 1]``; the last row is unused).
            reward: ``(B, T)`` reward on arriving at row ``t``.
            terminated: ``(B, T)`` row ``t`` is terminal.
            is_first: ``(B, T)`` row ``t`` starts an episode (everything from a later start on is masked).
        """
        b, t, k = tokens.shape
        n = t * (k + 1) - 1
        x = self.embed_steps(tokens, actions)[:, :n]
        h = self.transformer(x)  # (B, n, C)
        valid = valid_steps(is_first)  # (B, T)
        # next-token targets: position p predicts the token at p + 1 when that is an obs token
        ids = torch.cat([tokens, torch.full_like(tokens[..., :1], -1)], 2).reshape(b, t * (k + 1))
        step_of = torch.arange(t * (k + 1), device=tokens.device) // (k + 1)
        target = ids[:, 1 : n + 1]
        keep = (target >= 0) & valid[:, step_of[1 : n + 1]]
        logits = self.obs_head(h)
        ce = F.cross_entropy(logits.reshape(-1, self.vocab).float(), target.clamp(min=0).reshape(-1), reduction="none")
        loss_obs = masked_mean(ce.reshape(b, n), keep)
        acc = masked_mean((logits.argmax(-1) == target).float(), keep)
        # reward and termination at the action tokens a_0 .. a_{T-2}
        act_pos = torch.arange(t - 1, device=tokens.device) * (k + 1) + k
        ha = h[:, act_pos]  # (B, T-1, C)
        keep_a = valid[:, 1:]
        r_target, d_target = reward[:, 1:].float(), terminated[:, 1:].float()
        r_logits = self.reward_head(ha).float()
        if self.config.world_model.reward_head == "sign":
            cls = (torch.sign(r_target) + 1).long()
            r_nll = F.cross_entropy(r_logits.reshape(-1, 3), cls.reshape(-1), reduction="none").reshape(cls.shape)
            r_acc = masked_mean((r_logits.argmax(-1) == cls).float(), keep_a)
        else:
            r_nll = -TwoHotSymlog(r_logits).log_prob(r_target)
            r_acc = masked_mean((TwoHotSymlog(r_logits).mean() - r_target).abs(), keep_a)
        d_logits = self.end_head(ha).squeeze(-1).float()
        d_nll = F.binary_cross_entropy_with_logits(d_logits, d_target, reduction="none")
        return TensorDict(
            {
                "loss_obs_tokens": loss_obs,
                "loss_reward": masked_mean(r_nll, keep_a),
                "loss_end": masked_mean(d_nll, keep_a),
                "token_acc": acc.detach(),
                "reward_acc" if self.config.world_model.reward_head == "sign" else "reward_mae": r_acc.detach(),
                "end_acc": masked_mean(((d_logits > 0).float() == d_target).float(), keep_a).detach(),
            },
            batch_size=[],
        )
