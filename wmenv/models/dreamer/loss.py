"""Loss terms of the Dreamer family: world-model terms, lambda-returns, actor and critic losses.

All functions take tensors and return per-element losses or reduced scalars; the modules in
``model.py`` / ``agent.py`` decide what to sum into their ``loss(batch)`` TensorDicts.
"""

from __future__ import annotations

import torch
from torch import nn

from wmenv.nn.distributions import TwoHotSymlog, bernoulli_loss

__all__ = [
    "scalar_head_nll",
    "scalar_head_mean",
    "continue_nll",
    "lambda_returns",
    "ReturnNormalizer",
]


def scalar_head_mean(out: torch.Tensor, kind: str) -> torch.Tensor:
    """Predicted scalar ``(...)`` of a reward/value head output ``(..., K)`` (two-hot) or ``(..., 1)``."""
    if kind == "twohot":
        return TwoHotSymlog(out).mean()
    return out.squeeze(-1)


def scalar_head_nll(out: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-element loss ``(...)``: two-hot symlog NLL, or ``0.5 * squared error`` (unit Gaussian)."""
    if kind == "twohot":
        return -TwoHotSymlog(out).log_prob(target)
    return 0.5 * (out.squeeze(-1) - target) ** 2


def continue_nll(
    logits: torch.Tensor, terminated: torch.Tensor, terminal_weight: float = 1.0
) -> torch.Tensor:
    """Per-element continue-head loss ``(...)`` with ``target = 1 - terminated``.

    Args:
        logits: ``(...)`` continue logits.
        terminated: ``(...)`` bool.
        terminal_weight: weight of terminal steps (class balancing for rare terminations).
    """
    cont = (~terminated.bool()).to(logits.dtype)
    return bernoulli_loss(logits, cont, positive_weight=1.0, negative_weight=terminal_weight)


def lambda_returns(
    reward: torch.Tensor, value: torch.Tensor, discount: torch.Tensor, lam: float
) -> torch.Tensor:
    """TD(lambda) returns along an imagined trajectory.

    ``R_t = r_{t+1} + d_{t+1} * ((1 - lam) * v_{t+1} + lam * R_{t+1})``, ``R_H = v_H``.

    Args:
        reward: ``(H, N)`` reward on arriving at steps ``1..H``.
        value: ``(H + 1, N)`` values of steps ``0..H``.
        discount: ``(H, N)`` ``gamma * continue`` of steps ``1..H``.
        lam: lambda.

    Returns:
        ``(H, N)`` returns of steps ``0..H-1``.
    """
    out = []
    last = value[-1]
    for t in reversed(range(reward.shape[0])):
        last = reward[t] + discount[t] * ((1 - lam) * value[t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1], 0)


class ReturnNormalizer(nn.Module):
    """DreamerV3 return scale: EMA of the 5th-95th percentile range, ``scale = max(1, range)``.

    Args:
        decay: EMA decay of the percentile estimates.
        low: lower percentile in [0, 1].
        high: upper percentile in [0, 1].
    """

    def __init__(self, decay: float = 0.99, low: float = 0.05, high: float = 0.95) -> None:
        super().__init__()
        self.decay, self.low, self.high = decay, low, high
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> None:
        """Update the EMA from a batch of (detached) returns of any shape."""
        flat = returns.detach().float().reshape(-1)
        lo, hi = torch.quantile(flat, self.low), torch.quantile(flat, self.high)
        if not bool(self.initialised):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.initialised.fill_(True)
        else:
            self.lo.mul_(self.decay).add_((1 - self.decay) * lo)
            self.hi.mul_(self.decay).add_((1 - self.decay) * hi)

    def scale(self) -> torch.Tensor:
        """``max(1, hi - lo)`` (a 0-d tensor)."""
        return torch.clamp(self.hi - self.lo, min=1.0)
