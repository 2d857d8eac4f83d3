"""Multi-layer perceptron with the LayerNorm + SiLU blocks of DreamerV3 (or plain ELU of V1)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["MLP", "activation"]

Activation = Literal["silu", "elu", "relu", "tanh"]


def activation(name: str) -> nn.Module:
    """Activation module by name (``"silu"``, ``"elu"``, ``"relu"``, ``"tanh"``)."""
    table = {"silu": nn.SiLU, "elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(table)}")
    return table[name]()


class MLP(nn.Module):
    """``layers`` hidden blocks ``Linear -> [LayerNorm] -> act``, then an optional output layer.

    Args:
        in_dim: input features.
        out_dim: output features; ``None`` ends on the last hidden block (``out_dim = units``).
        units: width of the hidden blocks.
        layers: number of hidden blocks (0 gives a single linear map, or identity without ``out_dim``).
        norm: LayerNorm before the activation (the hidden Linear then has no bias).
        act: activation name.
        out_init_zero: zero-initialise the output layer (DreamerV3 does this for reward/critic heads).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int | None,
        units: int,
        layers: int,
        *,
        norm: bool = True,
        act: Activation = "silu",
        out_init_zero: bool = False,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        dim = in_dim
        for _ in range(layers):
            blocks.append(nn.Linear(dim, units, bias=not norm))
            if norm:
                blocks.append(nn.LayerNorm(units, eps=1e-3))
            blocks.append(activation(act))
            dim = units
        if out_dim is not None:
            out = nn.Linear(dim, out_dim)
            if out_init_zero:
                nn.init.zeros_(out.weight)
                nn.init.zeros_(out.bias)
            blocks.append(out)
            dim = out_dim
        self.net = nn.Sequential(*blocks)
        self.in_dim, self.out_dim = in_dim, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_dim)`` to ``(..., out_dim)``."""
        return self.net(x)
