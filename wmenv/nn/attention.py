"""Transformer blocks (pre-LayerNorm, Vaswani et al. 2017) and a ViT image encoder (Dosovitskiy et al. 2021).

``TransformerBlock`` is ``x + MHA(LN(x))`` then ``x + MLP(LN(x))``; attention masks are boolean
with ``True`` = may attend. :class:`ViTEncoder` cuts a ``64x64`` image into ``P x P`` patches,
embeds them linearly with learned position embeddings, runs a transformer and flattens the
normalised patch tokens (spatial layout kept for reconstruction-based world models).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.nn.mlp import Activation, activation

__all__ = ["MultiHeadAttention", "TransformerBlock", "Transformer", "ViTEncoder", "check_heads"]


def check_heads(width: int, heads: int, what: str = "transformer") -> None:
    """Raise :class:`ConfigError` unless ``heads >= 1`` divides ``width``."""
    if heads < 1 or width % heads:
        divisors = [d for d in range(1, width + 1) if width % d == 0 and d <= 16]
        raise ConfigError(
            f"{what}: heads={heads} must divide the width {width} (each head gets width / heads channels); "
            f"use heads in {divisors} or change the width"
        )


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product self-attention.

    Args:
        width: token size ``C``.
        heads: number of heads ``h`` (must divide ``width``).
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        check_heads(width, heads)
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, L, C)``, ``mask`` ``(B, L, L)`` or ``(L, L)`` bool (True = attend) -> ``(B, L, C)``."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)  # (B, 1, L, L): same mask for every head
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, L, C/h)
        return self.out(y.transpose(1, 2).reshape(b, n, c))


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))`` with a ``mlp_ratio * width`` hidden layer.

    Args:
        width: token size.
        heads: attention heads (must divide ``width``).
        mlp_ratio: hidden width of the MLP relative to ``width``.
        act: activation of the MLP.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float = 2.0, act: Activation = "silu") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = MultiHeadAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        hidden = max(1, int(round(width * mlp_ratio)))
        self.mlp = nn.Sequential(nn.Linear(width, hidden), activation(act), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L, C)`` -> ``(B, L, C)``."""
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """A stack of :class:`TransformerBlock` followed by a final LayerNorm.

    Args:
        width: token size.
        depth: number of blocks.
        heads: attention heads per block.
        mlp_ratio: MLP width ratio.
        act: MLP activation.
    """

    def __init__(self, width: int, depth: int, heads: int, mlp_ratio: float = 2.0, act: Activation = "silu") -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"transformer depth must be >= 1, got {depth}")
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, mlp_ratio, act) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L, C)`` (with an optional bool mask ``(B, L, L)`` / ``(L, L)``) -> ``(B, L, C)``."""
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


class ViTEncoder(nn.Module):
    """Vision-transformer encoder for square images.

    Args:
        in_channels: image channels.
        size: image height = width.
        patch: patch side ``P`` (must divide ``size``).
        width: token size.
        depth: transformer blocks.
        heads: attention heads (must divide ``width``).
        mlp_ratio: MLP width ratio.
        act: MLP activation.

    Attributes:
        out_dim: ``(size / P)**2 * width`` (flattened patch tokens).
    """

    def __init__(
        self,
        in_channels: int = 3,
        size: int = 64,
        patch: int = 8,
        width: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        act: Activation = "silu",
    ) -> None:
        super().__init__()
        if patch < 1 or size % patch:
            raise ConfigError(f"vit: patch={patch} must divide the image size {size} (e.g. 8 or 16 for 64x64)")
        check_heads(width, heads, "vit")
        self.tokens = (size // patch) ** 2
        self.patchify = nn.Conv2d(in_channels, width, patch, patch)  # a linear map of each patch
        self.pos = nn.Parameter(torch.randn(1, self.tokens, width) * 0.02)
        self.transformer = Transformer(width, depth, heads, mlp_ratio, act)
        self.out_dim = self.tokens * width

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Encode ``(..., C, H, W)`` float images to ``(..., out_dim)``."""
        lead = image.shape[:-3]
        x = self.patchify(image.reshape(-1, *image.shape[-3:]))  # (N, C', H/P, W/P)
        x = x.flatten(2).transpose(1, 2) + self.pos  # (N, tokens, width)
        return self.transformer(x).reshape(*lead, self.out_dim)
