"""Convolutional image encoder (64x64 -> features) and its transposed-convolution mirror."""

from __future__ import annotations

import torch
from torch import nn

from wmenv.nn.mlp import Activation, activation

__all__ = ["ConvEncoder", "ConvDecoder", "ChannelNorm"]


class ChannelNorm(nn.Module):
    """LayerNorm over the channel dimension of ``(B, C, H, W)`` feature maps."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``(B, C, H, W)`` per pixel over ``C``."""
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _block(conv: nn.Module, channels: int, norm: bool, act: str) -> list[nn.Module]:
    return [conv, ChannelNorm(channels) if norm else nn.Identity(), activation(act)]


class ConvEncoder(nn.Module):
    """Stride-2 convolutions from a ``size x size`` image down to 4x4, then flatten.

    Channels double at every stage: ``depth, 2 depth, 4 depth, ...``. A 64x64 input uses four
    stages and yields ``8 * depth * 4 * 4`` features.

    Args:
        in_channels: image channels (3 for RGB).
        depth: channel multiplier.
        size: input height = width; a power of two >= 8.
        norm: channel LayerNorm after each convolution.
        act: activation name.
    """

    def __init__(
        self,
        in_channels: int = 3,
        depth: int = 32,
        size: int = 64,
        *,
        norm: bool = True,
        act: Activation = "silu",
    ) -> None:
        super().__init__()
        stages = _stages(size)
        layers: list[nn.Module] = []
        ch = in_channels
        for i in range(stages):
            out = depth * 2**i
            layers += _block(nn.Conv2d(ch, out, 4, 2, 1, bias=not norm), out, norm, act)
            ch = out
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_dim = ch * 4 * 4

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Encode ``(..., C, H, W)`` float images (roughly in [-0.5, 0.5]) to ``(..., out_dim)``."""
        lead = image.shape[:-3]
        out = self.net(image.reshape(-1, *image.shape[-3:]))
        return out.reshape(*lead, self.out_dim)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: features -> 4x4 map -> transposed convolutions -> image.

    Args:
        in_dim: feature size.
        out_channels: image channels.
        depth: channel multiplier (the first map has ``depth * 2**(stages-1)`` channels).
        size: output height = width.
        norm: channel LayerNorm after each hidden transposed convolution.
        act: activation name.
    """

    def __init__(
        self,
        in_dim: int,
        out_channels: int = 3,
        depth: int = 32,
        size: int = 64,
        *,
        norm: bool = True,
        act: Activation = "silu",
    ) -> None:
        super().__init__()
        stages = _stages(size)
        ch = depth * 2 ** (stages - 1)
        self.linear = nn.Linear(in_dim, ch * 4 * 4)
        self.first = (ch, 4, 4)
        layers: list[nn.Module] = []
        for i in reversed(range(stages - 1)):
            out = depth * 2**i
            layers += _block(nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=not norm), out, norm, act)
            ch = out
        layers.append(nn.ConvTranspose2d(ch, out_channels, 4, 2, 1))
        self.net = nn.Sequential(*layers)
        self.out_shape = (out_channels, size, size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Decode ``(..., in_dim)`` to image means ``(..., C, H, W)`` (same scale as the encoder input)."""
        lead = features.shape[:-1]
        x = self.linear(features.reshape(-1, features.shape[-1])).reshape(-1, *self.first)
        return self.net(x).reshape(*lead, *self.out_shape)


def _stages(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"image size must be a power of two >= 8, got {size}")
    return size.bit_length() - 3  # 64 -> 4 stages (64 -> 32 -> 16 -> 8 -> 4)
