"""Recurrent cells for latent dynamics."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NormGRUCell"]


class NormGRUCell(nn.Module):
    """GRU cell with LayerNorm on the gates and a negative update bias (DreamerV2/V3 style).

    ``reset, cand, update = split(LN(W [x, h]))``; ``cand = tanh(sigmoid(reset) * cand)``;
    ``u = sigmoid(update + update_bias)``; ``h' = u * cand + (1 - u) * h``. The bias of -1
    keeps the state close to its previous value early in training.

    Args:
        in_dim: input features.
        hidden: state size.
        norm: LayerNorm on the gate pre-activations.
        update_bias: added to the update gate pre-activation.
    """

    def __init__(self, in_dim: int, hidden: int, *, norm: bool = True, update_bias: float = -1.0) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim + hidden, 3 * hidden, bias=not norm)
        self.norm = nn.LayerNorm(3 * hidden, eps=1e-3) if norm else nn.Identity()
        self.hidden, self.update_bias = hidden, update_bias

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step: ``x`` ``(B, in_dim)``, ``h`` ``(B, hidden)`` -> ``(B, hidden)``."""
        parts = self.norm(self.linear(torch.cat([x, h], -1)))
        reset, cand, update = parts.split(self.hidden, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update + self.update_bias)
        return update * cand + (1 - update) * h
