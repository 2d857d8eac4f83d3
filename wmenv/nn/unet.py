"""A conditional U-Net frame denoiser in the style of DIAMOND (Alonso et al. 2024) and its blocks.

:class:`FrameDenoiserUNet` predicts the next frame's denoiser output from a noisy frame, the last
``L`` frames (concatenated along channels with the noisy frame) and a conditioning vector made of
the noise level and the ``L`` actions (:class:`~wmenv.nn.diffusion.NoiseActionEmbedding`), which
enters every residual block through adaptive group normalisation (:class:`AdaGroupNorm`:
``GroupNorm(x) * (1 + scale(c)) + shift(c)``).

The U-Net has ``len(channels)`` levels and ``len(channels) - 1`` stride-2 downsamplings; inputs are
zero-padded on the bottom/right to a multiple of ``2 ** (levels - 1)`` and the output is cropped
back, so any frame size works (10x10 MinAtar frames, 64x64 Atari frames).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.nn.diffusion import NoiseActionEmbedding

__all__ = [
    "group_count",
    "AdaGroupNorm",
    "SelfAttention2d",
    "ResBlock",
    "Downsample",
    "Upsample",
    "UNet",
    "FrameDenoiserUNet",
    "pad_to_multiple",
]


def group_count(channels: int, group_size: int = 32) -> int:
    """Groups of a GroupNorm over ``channels``: about one per ``group_size`` channels, dividing ``channels``."""
    g = max(1, channels // group_size)
    while channels % g:
        g -= 1
    return g


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad ``(..., H, W)`` on the bottom/right to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph)) if ph or pw else x


class AdaGroupNorm(nn.Module):
    """Group normalisation whose scale and shift come from a conditioning vector.

    Args:
        channels: feature channels.
        cond_dim: size of the conditioning vector.
    """

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.groups = group_count(channels)
        self.linear = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, H, W)``, ``cond`` ``(B, cond_dim)`` -> ``(B, C, H, W)``."""
        scale, shift = self.linear(cond)[:, :, None, None].chunk(2, 1)
        return F.group_norm(x, self.groups, eps=1e-5) * (1 + scale) + shift


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, residual, zero-initialised output.

    Args:
        channels: feature channels.
        head_dim: channels per head.
    """

    def __init__(self, channels: int, head_dim: int = 8) -> None:
        super().__init__()
        self.heads = max(1, channels // head_dim)
        while channels % self.heads:
            self.heads -= 1
        self.norm = nn.GroupNorm(group_count(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        return x + self.out(y.transpose(-1, -2).reshape(b, c, h, w))


class ResBlock(nn.Module):
    """``x + conv(silu(AdaGN(conv(silu(AdaGN(x))))))`` (1x1 projection when channels change), then
    optional self-attention. The second convolution starts at zero, so a new block is the identity.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        cond_dim: conditioning vector size.
        attention: add :class:`SelfAttention2d` after the block.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, attention: bool = False) -> None:
        super().__init__()
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.norm1 = AdaGroupNorm(in_channels, cond_dim)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = AdaGroupNorm(out_channels, cond_dim)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        self.attention = SelfAttention2d(out_channels) if attention else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B, in, H, W)``, ``(B, cond_dim)`` -> ``(B, out, H, W)``."""
        h = self.conv1(F.silu(self.norm1(x, cond)))
        h = self.conv2(F.silu(self.norm2(h, cond)))
        x = self.skip(x) + h
        return self.attention(x) if self.attention is not None else x


class Downsample(nn.Module):
    """Stride-2 3x3 convolution (halves H and W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H/2, W/2)``."""
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, 2H, 2W)``."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """Conditional U-Net: ``len(channels)`` levels of residual blocks with skip connections.

    Level ``i`` has ``depths[i]`` :class:`ResBlock` of ``channels[i]`` channels on the way down and
    ``depths[i] + 1`` on the way up (each fed the matching down-path activation); two blocks with
    self-attention sit in the middle (``mid_attention``).

    Args:
        channels: channels per level (the input must have ``channels[0]``).
        depths: residual blocks per level.
        cond_dim: conditioning vector size.
        attention: self-attention in the blocks of each level.
        mid_attention: self-attention in the middle blocks (DIAMOND: yes).
    """

    def __init__(
        self,
        channels: tuple[int, ...],
        depths: tuple[int, ...],
        cond_dim: int,
        attention: tuple[bool, ...] | None = None,
        mid_attention: bool = True,
    ) -> None:
        super().__init__()
        attention = tuple(attention) if attention is not None else (False,) * len(channels)
        if not (len(channels) == len(depths) == len(attention)) or not channels:
            raise ConfigError(
                f"UNet: channels, depths and attention need one entry per level, got {channels}, {depths}, {attention}"
            )
        if min(channels) < 1 or min(depths) < 1:
            raise ConfigError(f"UNet: channels and depths must be >= 1, got {channels} and {depths}")
        self.levels = len(channels)
        self.multiple = 2 ** (self.levels - 1)
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i, (c, n, a) in enumerate(zip(channels, depths, attention)):
            prev = channels[max(0, i - 1)]
            self.down.append(nn.ModuleList(ResBlock(prev if j == 0 else c, c, cond_dim, a) for j in range(n)))
            # up path: n blocks taking [x, skip of a down block] (2c), then one taking [x, level input] (c + prev)
            ups = [ResBlock(2 * c, c, cond_dim, a) for _ in range(n)] + [ResBlock(c + prev, prev, cond_dim, a)]
            self.up.append(nn.ModuleList(ups))
        self.downsample = nn.ModuleList(Downsample(c) for c in channels[:-1])
        self.upsample = nn.ModuleList(Upsample(c) for c in channels[:-1])
        top = channels[-1]
        self.mid = nn.ModuleList(ResBlock(top, top, cond_dim, mid_attention) for _ in range(2))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, channels[0], H, W)`` (any H, W), ``cond`` ``(B, cond_dim)`` -> ``(B, channels[0], H, W)``."""
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, self.multiple)
        skips: list[list[torch.Tensor]] = []
        for i, blocks in enumerate(self.down):
            if i > 0:
                x = self.downsample[i - 1](x)
            level = [x]
            for block in blocks:
                x = block(x, cond)
                level.append(x)
            skips.append(level)
        for block in self.mid:
            x = block(x, cond)
        for i in reversed(range(self.levels)):
            level = skips[i]
            for block in self.up[i]:
                x = block(torch.cat([x, level.pop()], 1), cond)
            if i > 0:
                x = self.upsample[i - 1](x)
        return x[..., :h, :w]


class FrameDenoiserUNet(nn.Module):
    """DIAMOND's denoiser network: noisy next frame + ``L`` context frames -> ``F`` (EDM) or ``eps`` (DDPM).

    Args:
        frame_channels: channels ``C`` of one frame.
        context_frames: ``L``, frames of context concatenated along channels.
        action_dim: size of one action vector (one-hot for discrete actions).
        channels: U-Net channels per level.
        depths: U-Net residual blocks per level.
        cond_dim: conditioning vector size (noise level + actions).
        attention: self-attention per level.
        mid_attention: self-attention in the middle blocks.
    """

    def __init__(
        self,
        frame_channels: int,
        context_frames: int,
        action_dim: int,
        channels: tuple[int, ...] = (64, 64, 64, 64),
        depths: tuple[int, ...] = (2, 2, 2, 2),
        cond_dim: int = 256,
        attention: tuple[bool, ...] | None = None,
        mid_attention: bool = True,
    ) -> None:
        super().__init__()
        self.frame_channels, self.context_frames = frame_channels, context_frames
        self.embed = NoiseActionEmbedding(cond_dim, context_frames * action_dim)
        self.conv_in = nn.Conv2d((context_frames + 1) * frame_channels, channels[0], 3, padding=1)
        self.unet = UNet(tuple(channels), tuple(depths), cond_dim, attention, mid_attention)
        self.norm_out = nn.GroupNorm(group_count(channels[0]), channels[0])
        self.conv_out = nn.Conv2d(channels[0], frame_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self, noisy: torch.Tensor, c_noise: torch.Tensor, context: torch.Tensor, actions: torch.Tensor | None
    ) -> torch.Tensor:
        """Denoiser output for a batch.

        Args:
            noisy: ``(B, C, H, W)`` scaled noisy next frame.
            c_noise: ``(B,)`` noise-level input.
            context: ``(B, L * C, H, W)`` context frames (already scaled by the caller).
            actions: ``(B, L * A)`` action vectors of the context frames (the last leads to the target).

        Returns:
            ``(B, C, H, W)``.
        """
        cond = self.embed(c_noise, actions)
        x = self.conv_in(torch.cat([context, noisy], 1))
        x = self.unet(x, cond)
        return self.conv_out(F.silu(self.norm_out(x)))
