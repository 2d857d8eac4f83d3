"""Deterministic backbones of a recurrent state-space model: GRU, LSTM or windowed causal transformer.

Every backbone steps one input at a time and carries an explicit ``carry`` TensorDict ``[B]``::

    carry = backbone.initial(B, device)
    h, carry = backbone(x, carry)          # x (B, in_dim) -> h (B, out_dim)

``carry`` holds fixed-shape tensors only, so batches of states can be indexed, masked and reset
member by member (partial resets in the imagination core):

``gru``          ``{"h": (B, D)}`` (:class:`~wmenv.nn.recurrent.NormGRUCell`)
``lstm``         ``{"h": (B, D), "c": (B, D)}`` (:class:`NormLSTMCell`)
``transformer``  ``{"tokens": (B, W, D), "valid": (B, W) bool}``: the last ``W`` inputs (a sliding
                 window, TransDreamer/TSSM style); ``h`` is the causal transformer's output at the
                 newest token, with learned embeddings of each token's age.
"""

from __future__ import annotations

from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.nn.attention import Transformer, check_heads
from wmenv.nn.mlp import Activation
from wmenv.nn.recurrent import NormGRUCell

__all__ = ["BackboneKind", "NormLSTMCell", "GRUBackbone", "LSTMBackbone", "TransformerBackbone", "make_backbone"]

BackboneKind = Literal["gru", "lstm", "transformer"]


class NormLSTMCell(nn.Module):
    """LSTM cell with optional LayerNorm on the gate pre-activations and a forget-gate bias.

    ``i, f, g, o = split(LN(W [x, h]))``; ``c' = sigmoid(f + forget_bias) c + sigmoid(i) tanh(g)``;
    ``h' = sigmoid(o) tanh(c')``.

    Args:
        in_dim: input features.
        hidden: state size.
        norm: LayerNorm on the gates.
        forget_bias: added to the forget gate (1.0 keeps memory early in training).
    """

    def __init__(self, in_dim: int, hidden: int, *, norm: bool = True, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim + hidden, 4 * hidden, bias=not norm)
        self.norm = nn.LayerNorm(4 * hidden, eps=1e-3) if norm else nn.Identity()
        self.hidden, self.forget_bias = hidden, forget_bias

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``x`` ``(B, in_dim)``, ``h``, ``c`` ``(B, hidden)`` -> ``(h', c')``."""
        i, f, g, o = self.norm(self.linear(torch.cat([x, h], -1))).split(self.hidden, -1)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class GRUBackbone(nn.Module):
    """GRU backbone (DreamerV2/V3 cell). ``out_dim = hidden``."""

    def __init__(self, in_dim: int, hidden: int, *, norm: bool = True) -> None:
        super().__init__()
        self.cell = NormGRUCell(in_dim, hidden, norm=norm)
        self.out_dim = hidden

    def initial(self, batch: int, device: torch.device | str) -> TensorDictBase:
        """Zero carry ``[batch]``."""
        return TensorDict({"h": torch.zeros(batch, self.out_dim, device=device)}, batch_size=[batch])

    def forward(self, x: torch.Tensor, carry: TensorDictBase) -> tuple[torch.Tensor, TensorDictBase]:
        """``x`` ``(B, in_dim)`` -> ``(h (B, hidden), carry)``."""
        h = self.cell(x, carry["h"])
        return h, TensorDict({"h": h}, batch_size=carry.batch_size)


class LSTMBackbone(nn.Module):
    """LSTM backbone. ``out_dim = hidden``; the carry also holds the cell state ``c``."""

    def __init__(self, in_dim: int, hidden: int, *, norm: bool = True) -> None:
        super().__init__()
        self.cell = NormLSTMCell(in_dim, hidden, norm=norm)
        self.out_dim = hidden

    def initial(self, batch: int, device: torch.device | str) -> TensorDictBase:
        """Zero carry ``[batch]``."""
        zeros = torch.zeros(batch, self.out_dim, device=device)
        return TensorDict({"h": zeros, "c": zeros.clone()}, batch_size=[batch])

    def forward(self, x: torch.Tensor, carry: TensorDictBase) -> tuple[torch.Tensor, TensorDictBase]:
        """``x`` ``(B, in_dim)`` -> ``(h (B, hidden), carry)``."""
        h, c = self.cell(x, carry["h"], carry["c"])
        return h, TensorDict({"h": h, "c": c}, batch_size=carry.batch_size)


class TransformerBackbone(nn.Module):
    """Causal transformer over a sliding window of the last ``window`` inputs.

    Args:
        in_dim: input features (projected to ``width``).
        width: token size and ``out_dim``.
        depth: transformer blocks.
        heads: attention heads (must divide ``width``).
        window: number of past inputs attended to (the carry's length ``W``).
        mlp_ratio: MLP width ratio of the blocks.
        act: MLP activation.
    """

    def __init__(
        self, in_dim: int, width: int, *, depth: int = 1, heads: int = 2, window: int = 8, mlp_ratio: float = 2.0,
        act: Activation = "silu",
    ) -> None:
        super().__init__()
        check_heads(width, heads, "backbone='transformer'")
        if window < 1:
            raise ConfigError(f"transformer window must be >= 1, got {window}")
        self.inp = nn.Linear(in_dim, width)
        self.age = nn.Parameter(torch.randn(window, width) * 0.02)  # slot i holds the input of age W-1-i
        self.transformer = Transformer(width, depth, heads, mlp_ratio, act)
        self.window, self.out_dim = window, width
        causal = torch.tril(torch.ones(window, window, dtype=torch.bool))
        self.register_buffer("causal", causal, persistent=False)

    def initial(self, batch: int, device: torch.device | str) -> TensorDictBase:
        """Empty window ``[batch]`` (no valid token)."""
        return TensorDict(
            {
                "tokens": torch.zeros(batch, self.window, self.out_dim, device=device),
                "valid": torch.zeros(batch, self.window, dtype=torch.bool, device=device),
            },
            batch_size=[batch],
        )

    def forward(self, x: torch.Tensor, carry: TensorDictBase) -> tuple[torch.Tensor, TensorDictBase]:
        """Append ``x`` ``(B, in_dim)`` to the window and read the newest output ``(B, width)``."""
        b = x.shape[0]
        token = self.inp(x).unsqueeze(1)
        tokens = torch.cat([carry["tokens"][:, 1:], token], 1)  # (B, W, C)
        valid = torch.cat([carry["valid"][:, 1:], torch.ones(b, 1, dtype=torch.bool, device=x.device)], 1)
        eye = torch.eye(self.window, dtype=torch.bool, device=x.device)
        # causal over the window, never onto empty slots; every query may see itself (no empty rows)
        mask = (self.causal & valid[:, None, :]) | eye
        out = self.transformer(tokens + self.age, mask)
        return out[:, -1], TensorDict({"tokens": tokens, "valid": valid}, batch_size=carry.batch_size)


def make_backbone(
    kind: str, in_dim: int, width: int, *, norm: bool = True, depth: int = 1, heads: int = 2, window: int = 8,
    mlp_ratio: float = 2.0, act: Activation = "silu",
) -> GRUBackbone | LSTMBackbone | TransformerBackbone:
    """Build a backbone by name (``"gru"``, ``"lstm"``, ``"transformer"``); transformer arguments
    (``depth``, ``heads``, ``window``, ``mlp_ratio``) are ignored by the recurrent cells.

    Raises:
        ConfigError: unknown ``kind`` or a transformer whose heads do not divide ``width``.
    """
    if kind == "gru":
        return GRUBackbone(in_dim, width, norm=norm)
    if kind == "lstm":
        return LSTMBackbone(in_dim, width, norm=norm)
    if kind == "transformer":
        return TransformerBackbone(in_dim, width, depth=depth, heads=heads, window=window, mlp_ratio=mlp_ratio,
                                   act=act)
    raise ConfigError(f"unknown backbone {kind!r}; expected 'gru', 'lstm' or 'transformer'")
