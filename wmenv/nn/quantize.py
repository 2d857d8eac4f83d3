"""Vector quantisation (van den Oord et al. 2017, "VQ-VAE") with a codebook kept healthy.

:class:`VectorQuantizer` maps vectors ``(..., D)`` to the nearest of ``num_codes`` code vectors and
returns the straight-through estimate ``z + sg(q - z)`` (the encoder gets the decoder's gradient
unchanged), the code indices and a loss:

- **commitment** ``beta * ||z - sg(q)||^2`` always (the encoder commits to its code);
- **codebook** ``||sg(z) - q||^2`` only when the codebook is learned by gradient
  (``ema_decay=0``). With ``ema_decay > 0`` (default) the code vectors are exponential moving
  averages of the vectors assigned to them (Razavi et al. 2019) and get no gradient.

Keeping the codebook healthy (every code in use) matters more than any other detail:

- the codebook is initialised from the first batch it sees in an update (random encoder outputs,
  not random noise far away from the data);
- **dead-code restarts**: after every update, codes whose moving-average usage count fell below
  ``dead_code_threshold`` are moved onto random vectors of the current batch (Dhariwal et al. 2020,
  Jukebox), so a code that lost its data gets another chance instead of staying unused for ever.

Usage is reported as ``perplexity`` (``exp`` of the entropy of the batch's code histogram: the
effective number of codes in use; ``num_codes`` when the use is uniform) and ``usage`` (fraction of
codes used by the batch), plus ``active`` (fraction of codes whose moving-average count is above the
threshold).

Updates happen only when asked (``update=True``, default: ``module.training``), so using a trained
tokenizer elsewhere in training (tokenising a world model's targets) never moves the codebook.
Reusable by any discrete-token model (IRIS, Genie).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wmenv.core.errors import ConfigError

__all__ = ["VectorQuantizer", "QuantizerOutput"]


@dataclass
class QuantizerOutput:
    """What :meth:`VectorQuantizer.forward` returns.

    Attributes:
        quantized: ``(..., D)`` straight-through code vectors (gradient flows to the input).
        indices: ``(...)`` int64 code indices.
        loss: scalar, ``commitment * ||z - sg(q)||^2`` (+ the codebook term without EMA).
        commitment: scalar, the unweighted commitment error ``||z - sg(q)||^2`` (detached).
        perplexity: scalar, effective number of codes used by this batch (detached).
        usage: scalar, fraction of codes used by this batch (detached).
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    commitment: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor


class VectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantiser with EMA codebook updates and dead-code restarts.

    Args:
        num_codes: codebook size ``K``.
        dim: code vector size ``D``.
        commitment: weight ``beta`` of the commitment loss (VQ-VAE: 0.25).
        ema_decay: decay of the codebook moving averages; ``0`` learns the codebook by gradient
            (codebook loss added) and keeps the moving-average counts for usage statistics only.
        dead_code_threshold: a code whose moving-average count (assignments per update) is below
            this is restarted from a random input vector at the next update (``0``: never).
        eps: Laplace smoothing of the EMA counts.
        init_from_data: set the codebook to random input vectors at the first update.
    """

    def __init__(
        self,
        num_codes: int,
        dim: int,
        *,
        commitment: float = 0.25,
        ema_decay: float = 0.99,
        dead_code_threshold: float = 0.03,
        eps: float = 1e-5,
        init_from_data: bool = True,
    ) -> None:
        super().__init__()
        if num_codes < 2 or dim < 1:
            raise ConfigError(f"VectorQuantizer needs num_codes >= 2 and dim >= 1, got {num_codes} and {dim}")
        if not 0 <= ema_decay < 1:
            raise ConfigError(f"VectorQuantizer.ema_decay must be in [0, 1), got {ema_decay!r}")
        if commitment < 0 or dead_code_threshold < 0:
            raise ConfigError("VectorQuantizer: commitment and dead_code_threshold must be >= 0")
        self.num_codes, self.dim = int(num_codes), int(dim)
        self.commitment, self.ema_decay = float(commitment), float(ema_decay)
        self.dead_code_threshold, self.eps = float(dead_code_threshold), float(eps)
        self.init_from_data = init_from_data
        init = torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        if self.use_ema:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.int64))

    @property
    def use_ema(self) -> bool:
        """Whether the codebook follows moving averages (else it is a learned parameter)."""
        return self.ema_decay > 0

    # ------------------------------------------------------------------ lookups
    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices ``(...)`` of the nearest codes of ``z`` ``(..., D)`` (squared Euclidean distance)."""
        flat = z.reshape(-1, self.dim)
        code = self.codebook.to(flat.dtype)
        dist = flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ code.t() + code.pow(2).sum(-1)[None]
        return dist.argmin(-1).reshape(z.shape[:-1])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors ``(..., D)`` of ``indices`` ``(...)``."""
        return F.embedding(indices, self.codebook)

    # ------------------------------------------------------------------ forward
    def forward(self, z: torch.Tensor, update: bool | None = None) -> QuantizerOutput:
        """Quantise ``z`` ``(..., D)``.

        Args:
            z: input vectors.
            update: update the codebook (EMA, data init, restarts); default ``self.training``.
        """
        if z.shape[-1] != self.dim:
            raise ValueError(f"VectorQuantizer expects vectors of size {self.dim}, got shape {tuple(z.shape)}")
        update = self.training if update is None else update
        flat = z.reshape(-1, self.dim)
        if update and self.init_from_data and not bool(self.initialised):
            self._init_from(flat.detach())
        indices = self.nearest(flat.detach())
        counts = torch.bincount(indices, minlength=self.num_codes).to(flat.dtype)
        if update:
            self._update(flat.detach(), indices, counts)
        q = self.lookup(indices)
        commit = F.mse_loss(flat, q.detach())
        loss = self.commitment * commit
        if not self.use_ema:
            loss = loss + F.mse_loss(q, flat.detach())
        probs = counts / counts.sum().clamp(min=1.0)
        perplexity = torch.exp(-(probs * torch.log(probs.clamp(min=1e-10))).sum())
        quantized = flat + (q - flat).detach()
        return QuantizerOutput(
            quantized=quantized.reshape(z.shape),
            indices=indices.reshape(z.shape[:-1]),
            loss=loss,
            commitment=commit.detach(),
            perplexity=perplexity.detach(),
            usage=(counts > 0).float().mean().detach(),
        )

    def active_fraction(self) -> torch.Tensor:
        """Fraction of codes whose moving-average count is at or above ``dead_code_threshold``."""
        return (self.ema_count >= max(self.dead_code_threshold, 1e-12)).float().mean()

    # ------------------------------------------------------------------ codebook maintenance
    @torch.no_grad()
    def _init_from(self, flat: torch.Tensor) -> None:
        pick = torch.randint(flat.shape[0], (self.num_codes,), device=flat.device)
        vectors = flat[pick].to(self.codebook.dtype)
        self.codebook.data.copy_(vectors)
        if self.use_ema:
            self.ema_sum.copy_(vectors)
        self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> None:
        decay = self.ema_decay if self.use_ema else 0.99
        self.ema_count.mul_(decay).add_((1 - decay) * counts.to(self.ema_count.dtype))
        if self.use_ema:
            sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, flat.to(self.ema_sum.dtype))
            self.ema_sum.mul_(decay).add_((1 - decay) * sums)
            n = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n
            self.codebook.copy_(self.ema_sum / smoothed[:, None])
        if self.dead_code_threshold > 0:
            dead = self.ema_count < self.dead_code_threshold
            k = int(dead.sum())
            if k:
                pick = torch.randint(flat.shape[0], (k,), device=flat.device)
                vectors = flat[pick].to(self.codebook.dtype)
                self.codebook.data[dead] = vectors
                if self.use_ema:
                    self.ema_sum[dead] = vectors
                self.ema_count[dead] = 1.0
                self.restarts.add_(k)
