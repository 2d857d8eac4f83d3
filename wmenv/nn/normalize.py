"""Running normalisation of vector inputs (and of the targets predicted in the same space)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RunningNorm"]


class RunningNorm(nn.Module):
    """Per-feature mean/std accumulated over every batch seen in training (Chan et al. merge).

    The statistics are buffers (saved in checkpoints) and only change through :meth:`update`,
    so a trained model normalises deterministically. Cumulative (not exponential) averaging makes
    them settle as data grows, so targets expressed in the normalised space stop drifting.

    Args:
        dim: number of features.
        eps: added to the std.
        max_count: statistics stop changing after this many samples (``0``: never stop).
    """

    def __init__(self, dim: int, eps: float = 1e-3, max_count: int = 0) -> None:
        super().__init__()
        self.eps, self.max_count = eps, max_count
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the statistics of ``x`` ``(..., dim)`` into the running ones."""
        if self.max_count and float(self.count) >= self.max_count:
            return
        flat = x.detach().reshape(-1, x.shape[-1]).float()
        n = flat.shape[0]
        if n == 0:
            return
        b_mean, b_var = flat.mean(0), flat.var(0, unbiased=False)
        total = float(self.count) + n
        w = n / total
        delta = b_mean - self.mean
        self.mean.add_(delta * w)
        self.var.copy_(self.var * (1 - w) + b_var * w + delta.pow(2) * w * (1 - w))
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / (std + eps)``."""
        return (x - self.mean) / (self.var.sqrt() + self.eps)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`forward`."""
        return y * (self.var.sqrt() + self.eps) + self.mean
