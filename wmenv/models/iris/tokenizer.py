"""The IRIS tokenizer: a discrete autoencoder turning one frame into ``K`` tokens and back.

``uint8`` frames ``H x W x C`` (or ``H x W``) of any small size: MinAtar's ``10x10xC`` binary frames,
``64x64x3`` Atari / dm_control frames. The frame is scaled to ``[0, 1]`` (divided by the space's
``high``), zero-padded to ``S x S`` (``S = g * 2**d``, the smallest such size covering the frame),
encoded by a conv stack with ``d`` stride-2 stages into a ``g x g`` grid of vectors, each quantised
to the nearest of ``vocab_size`` codes (:class:`wmenv.nn.quantize.VectorQuantizer`), and decoded by
the mirror stack, cropped back to ``H x W``.

Reconstruction loss (``TokenizerConfig.recon_loss``, ``auto`` by default):

- **binary frames** (space ``high == 1``): per-cell BCE on decoder logits; a decoded frame is
  ``logit > 0`` (0 or 1). BCE rather than L1/L2 because most cells are off: a squared error on
  sparse binary maps is minimised by predicting "all off", BCE keeps the gradient of the rare on-cells.
- **other frames** (``0..255``): L1 on ``[0, 1]`` values (the paper's L1; its perceptual term needs
  pretrained VGG weights and is left out); a decoded frame is ``round(clamp(x, 0, 1) * high)``.

The commitment loss of the quantiser is added (its codebook follows moving averages by default).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tensordict import TensorDict
from torch import nn

from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.iris.config import TokenizerConfig
from wmenv.nn.quantize import VectorQuantizer

__all__ = ["Tokenizer", "frame_shape", "check_frame_space"]


def check_frame_space(space: gym.Space, who: str = "IRIS") -> tuple[int, int, int]:
    """``(H, W, C)`` of a ``uint8`` image space ``Box(H, W, C)`` or ``Box(H, W)``.

    Raises:
        UnsupportedSpaceError: anything else (vector observations, float images, dicts).
    """
    if isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3):
        h, w = int(space.shape[0]), int(space.shape[1])
        c = int(space.shape[2]) if len(space.shape) == 3 else 1
        if h >= 1 and w >= 1 and c >= 1 and float(np.max(space.high)) >= 1:
            return h, w, c
    raise UnsupportedSpaceError(
        f"{who} models image observations only: a uint8 Box of shape (H, W, C) or (H, W), e.g. MinAtar's "
        f"Box(0, 1, (10, 10, C), uint8) or Box(0, 255, (64, 64, 3), uint8); got {space}. For vector observations "
        "use a vector family (dreamer, mlp-wm); for dm_control/classic-control pixels pass make_env(..., pixels=True)"
    )


def frame_shape(space: gym.Space) -> tuple[int, int, int]:
    """Alias of :func:`check_frame_space`."""
    return check_frame_space(space)


class _Res(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))))))``."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.GroupNorm(1, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, 1, 1),
            nn.GroupNorm(1, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Tokenizer(nn.Module):
    """Frame <-> ``K`` discrete tokens (see the module docstring).

    Args:
        config: :class:`TokenizerConfig`.
        observation_space: ``uint8`` ``Box(H, W, C)`` or ``Box(H, W)``.

    Attributes:
        tokens: ``K = g * g`` tokens per frame.
        binary: frames are 0/1 (BCE loss, thresholded decoding).
    """

    def __init__(self, config: TokenizerConfig, observation_space: gym.Space) -> None:
        super().__init__()
        self.config = config
        self.height, self.width, self.channels = check_frame_space(observation_space)
        self.frame_shape = tuple(int(s) for s in observation_space.shape)
        self.high = float(np.max(observation_space.high))
        self.binary = self.high == 1.0
        loss = config.recon_loss
        self.recon_loss = ("bce" if self.binary else "l1") if loss == "auto" else loss
        g = config.grid
        self.grid, self.tokens = g, g * g
        side = max(self.height, self.width)
        self.stages = max(0, math.ceil(math.log2(side / g))) if side > g else 0
        self.side = g * 2**self.stages  # padded frame side

        def width(i: int) -> int:
            return min(config.channels * 2**i, config.max_channels)

        enc: list[nn.Module] = [nn.Conv2d(self.channels, width(0), 3, 1, 1)]
        for i in range(self.stages):
            enc += [_Res(width(i)) for _ in range(config.res_blocks)]
            enc += [nn.SiLU(), nn.Conv2d(width(i), width(i + 1), 4, 2, 1)]
        top = width(self.stages)
        enc += [_Res(top) for _ in range(config.res_blocks)]
        enc += [nn.GroupNorm(1, top), nn.SiLU(), nn.Conv2d(top, config.code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = VectorQuantizer(
            config.vocab_size, config.code_dim, commitment=config.commitment, ema_decay=config.ema_decay,
            dead_code_threshold=config.dead_code_threshold,
        )
        dec: list[nn.Module] = [nn.Conv2d(config.code_dim, top, 3, 1, 1)]
        dec += [_Res(top) for _ in range(config.res_blocks)]
        for i in reversed(range(self.stages)):
            dec += [nn.SiLU(), nn.ConvTranspose2d(width(i + 1), width(i), 4, 2, 1)]
            dec += [_Res(width(i)) for _ in range(config.res_blocks)]
        dec += [nn.GroupNorm(1, width(0)), nn.SiLU(), nn.Conv2d(width(0), self.channels, 3, 1, 1)]
        self.decoder = nn.Sequential(*dec)

    # ------------------------------------------------------------------ frames <-> tensors
    def to_input(self, frames: torch.Tensor) -> torch.Tensor:
        """``uint8`` frames ``(N, *frame_shape)`` -> padded floats ``(N, C, S, S)`` in ``[0, 1]``."""
        x = frames.float().clamp(0, self.high) / self.high
        x = x.unsqueeze(1) if len(self.frame_shape) == 2 else x.movedim(-1, 1)
        return F.pad(x, (0, self.side - self.width, 0, self.side - self.height))

    def to_frames(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output ``(N, C, H, W)`` -> ``uint8`` frames ``(N, *frame_shape)``."""
        if self.binary and self.recon_loss == "bce":
            x = (out > 0).to(torch.uint8)
        else:
            x = (out.clamp(0, 1) * self.high).round().to(torch.uint8)
        return x.squeeze(1) if len(self.frame_shape) == 2 else x.movedim(1, -1)

    # ------------------------------------------------------------------ encode / decode
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Pre-quantisation vectors ``(..., K, code_dim)`` of ``uint8`` frames ``(..., *frame_shape)``."""
        lead = frames.shape[: frames.dim() - len(self.frame_shape)]
        z = self.encoder(self.to_input(frames.reshape(-1, *self.frame_shape)))  # (N, D, g, g)
        return z.flatten(2).transpose(1, 2).reshape(*lead, self.tokens, self.config.code_dim)

    @torch.no_grad()
    def tokenize(self, frames: torch.Tensor) -> torch.Tensor:
        """Token indices ``(..., K)`` (int64) of ``uint8`` frames ``(..., *frame_shape)``; no codebook update."""
        return self.quantizer.nearest(self.encode(frames))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Code vectors ``(..., K, code_dim)`` of tokens ``(..., K)``."""
        return self.quantizer.lookup(tokens)

    def decode_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """Decoder output ``(..., C, H, W)`` (logits for BCE, else values) of code vectors ``(..., K, code_dim)``."""
        lead = codes.shape[:-2]
        g = self.grid
        x = codes.reshape(-1, g, g, self.config.code_dim).permute(0, 3, 1, 2)
        out = self.decoder(x)[:, :, : self.height, : self.width]
        return out.reshape(*lead, *out.shape[1:])

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """``uint8`` frames ``(..., *frame_shape)`` of tokens ``(..., K)``."""
        lead = tokens.shape[:-1]
        out = self.decode_vectors(self.embed(tokens.reshape(-1, self.tokens)))
        return self.to_frames(out).reshape(*lead, *self.frame_shape)

    @torch.no_grad()
    def reconstruct(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode-decode ``uint8`` frames ``(..., *frame_shape)`` (what the actor sees)."""
        return self.decode(self.tokenize(frames))

    # ------------------------------------------------------------------ training
    def loss(self, frames: torch.Tensor, update: bool = True) -> TensorDict:
        """Reconstruction + commitment losses of ``uint8`` frames ``(N, *frame_shape)`` (any leading dims).

        Returns:
            ``loss_recon``, ``loss_commit`` and metrics ``recon_error`` (mean absolute error on
            ``[0, 1]`` values), ``perplexity``, ``code_usage``, ``codes_active``, ``commitment``.
        """
        frames = frames.reshape(-1, *self.frame_shape)
        target = self.to_input(frames)[:, :, : self.height, : self.width]
        z = self.encode(frames)
        q = self.quantizer(z, update=update)
        out = self.decode_vectors(q.quantized)
        if self.recon_loss == "bce":
            recon = F.binary_cross_entropy_with_logits(out, target)
            value = torch.sigmoid(out)
        elif self.recon_loss == "l2":
            recon, value = F.mse_loss(out, target), out
        else:
            recon, value = F.l1_loss(out, target), out
        return TensorDict(
            {
                "loss_recon": recon,
                "loss_commit": q.loss,
                "recon_error": (value.detach().clamp(0, 1) - target).abs().mean(),
                "perplexity": q.perplexity,
                "code_usage": q.usage,
                "codes_active": self.quantizer.active_fraction().detach(),
                "commitment": q.commitment,
            },
            batch_size=[],
        )
