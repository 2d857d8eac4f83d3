"""A diffusion transformer (DiT, Peebles & Xie 2023) frame denoiser with adaLN-Zero conditioning.

:class:`FrameDenoiserDiT` has the interface of :class:`~wmenv.nn.unet.FrameDenoiserUNet`: the noisy
next frame and ``L`` context frames are concatenated along channels, zero-padded on the
bottom/right to a multiple of the patch size, cut into ``P x P`` patches and embedded linearly
(plus fixed 2-D sine-cosine position embeddings). Every :class:`DiTBlock` is modulated by the
conditioning vector (noise level + actions): ``adaLN-Zero`` regresses a shift, a scale and a gate
for the attention and the MLP branch from it, with the regression initialised at zero so each
block starts as the identity. A final adaptive LayerNorm and a zero-initialised linear layer map
each token back to its patch, and the output is cropped to the frame size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.nn.attention import MultiHeadAttention, check_heads
from wmenv.nn.diffusion import NoiseActionEmbedding
from wmenv.nn.unet import pad_to_multiple

__all__ = ["DiTBlock", "FrameDenoiserDiT", "sincos_2d"]


def sincos_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings ``(height * width, dim)`` (``dim`` divisible by 4)."""
    if dim % 4:
        raise ConfigError(f"DiT width must be divisible by 4 for 2-D position embeddings, got {dim}")
    quarter = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    ay, ax = ys.reshape(-1, 1) * freq, xs.reshape(-1, 1) * freq
    return torch.cat([ay.sin(), ay.cos(), ax.sin(), ax.cos()], 1).float()


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class DiTBlock(nn.Module):
    """Pre-LN transformer block whose LayerNorms are modulated by the conditioning (adaLN-Zero).

    Args:
        dim: token width.
        heads: attention heads (must divide ``dim``).
        mlp_ratio: hidden width of the MLP relative to ``dim``.
        cond_dim: conditioning vector size.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = MultiHeadAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = max(1, int(round(dim * mlp_ratio)))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, dim)``, ``cond`` ``(B, cond_dim)`` -> ``(B, N, dim)``."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond).unsqueeze(1).chunk(6, -1)
        x = x + gate1 * self.attn(_modulate(self.norm1(x), shift1, scale1))
        return x + gate2 * self.mlp(_modulate(self.norm2(x), shift2, scale2))


class FrameDenoiserDiT(nn.Module):
    """Patchified transformer denoiser: noisy next frame + ``L`` context frames -> ``F`` or ``eps``.

    Args:
        frame_channels: channels ``C`` of one frame.
        context_frames: ``L``.
        action_dim: size of one action vector.
        image_size: ``(H, W)`` of the frames.
        patch: patch side ``P`` (frames are padded to a multiple of it).
        dim: token width.
        depth: number of :class:`DiTBlock`.
        heads: attention heads.
        mlp_ratio: MLP width ratio.
        cond_dim: conditioning vector size.
    """

    def __init__(
        self,
        frame_channels: int,
        context_frames: int,
        action_dim: int,
        image_size: tuple[int, int],
        patch: int = 4,
        dim: int = 256,
        depth: int = 8,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        cond_dim: int = 256,
    ) -> None:
        super().__init__()
        if patch < 1 or depth < 1:
            raise ConfigError(f"DiT: patch and depth must be >= 1, got patch={patch}, depth={depth}")
        check_heads(dim, heads, "dit")
        h, w = image_size
        self.frame_channels, self.patch, self.image_size = frame_channels, patch, (h, w)
        self.grid = (math.ceil(h / patch), math.ceil(w / patch))
        self.embed = NoiseActionEmbedding(cond_dim, context_frames * action_dim)
        self.patchify = nn.Conv2d((context_frames + 1) * frame_channels, dim, patch, stride=patch)
        self.register_buffer("pos", sincos_2d(*self.grid, dim).unsqueeze(0), persistent=False)
        self.blocks = nn.ModuleList(DiTBlock(dim, heads, mlp_ratio, cond_dim) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim))
        self.out = nn.Linear(dim, patch * patch * frame_channels)
        for layer in (self.ada_out[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self, noisy: torch.Tensor, c_noise: torch.Tensor, context: torch.Tensor, actions: torch.Tensor | None
    ) -> torch.Tensor:
        """Same contract as :meth:`wmenv.nn.unet.FrameDenoiserUNet.forward`: ``(B, C, H, W)`` out."""
        b = noisy.shape[0]
        h, w = noisy.shape[-2:]
        if (h, w) != self.image_size:
            raise ConfigError(f"DiT built for {self.image_size[0]}x{self.image_size[1]} frames, got {h}x{w}")
        cond = self.embed(c_noise, actions)
        x = pad_to_multiple(torch.cat([context, noisy], 1), self.patch)
        x = self.patchify(x).flatten(2).transpose(1, 2) + self.pos  # (B, N, dim)
        for block in self.blocks:
            x = block(x, cond)
        shift, scale = self.ada_out(cond).unsqueeze(1).chunk(2, -1)
        x = self.out(_modulate(self.norm_out(x), shift, scale))  # (B, N, P*P*C)
        gh, gw, p, c = *self.grid, self.patch, self.frame_channels
        x = x.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, gh * p, gw * p)
        return x[..., :h, :w]

