"""Mixture density networks: a factorised Gaussian mixture and the linear head that predicts it.

Each output dimension ``d`` has its own mixture of ``K`` one-dimensional Gaussians (as in Ha &
Schmidhuber's MDN-RNN): ``p(y_d) = sum_k pi_dk N(y_d; mu_dk, sigma_dk)``. Sampling takes an
explicit :class:`torch.Generator` and a temperature ``tau`` that sharpens or flattens the
mixture weights (``logits / tau``) and scales every std by ``sqrt(tau)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GaussianMixture", "MixtureDensityHead"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class GaussianMixture:
    """Factorised mixture of ``K`` Gaussians per dimension.

    Args:
        logits: ``(..., D, K)`` unnormalised mixture weights.
        mean: ``(..., D, K)`` component means.
        log_std: ``(..., D, K)`` component log standard deviations.
    """

    def __init__(self, logits: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        if not (logits.shape == mean.shape == log_std.shape):
            raise ValueError(
                f"logits, mean and log_std must share a shape (..., D, K), got {tuple(logits.shape)}, "
                f"{tuple(mean.shape)}, {tuple(log_std.shape)}"
            )
        self.logits, self.mean, self.log_std = logits, mean, log_std

    @property
    def n_components(self) -> int:
        """Number of components ``K`` per dimension."""
        return int(self.logits.shape[-1])

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Per-dimension log-likelihood ``(..., D)`` of ``value`` ``(..., D)``."""
        x = value.unsqueeze(-1)
        comp = -0.5 * ((x - self.mean) * torch.exp(-self.log_std)) ** 2 - self.log_std - _LOG_SQRT_2PI
        return torch.logsumexp(torch.log_softmax(self.logits, -1) + comp, -1)

    def expected(self) -> torch.Tensor:
        """Mixture mean ``(..., D)``."""
        return (torch.softmax(self.logits, -1) * self.mean).sum(-1)

    def sample(self, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Draw one sample ``(..., D)``: pick a component per dimension, then add scaled noise.

        Args:
            generator: the only source of randomness (``None``: torch's global RNG).
            temperature: ``tau > 0``; weights from ``softmax(logits / tau)``, stds times ``sqrt(tau)``.
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        lead, k = self.logits.shape[:-1], self.n_components
        cdf = torch.softmax(self.logits / temperature, -1).cumsum(-1)
        u = torch.rand((*lead, 1), generator=generator, device=cdf.device, dtype=cdf.dtype)
        idx = torch.searchsorted(cdf.contiguous(), u * cdf[..., -1:]).clamp_max(k - 1)  # inverse CDF
        mean = self.mean.gather(-1, idx).squeeze(-1)
        std = self.log_std.gather(-1, idx).squeeze(-1).exp() * math.sqrt(temperature)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + std * eps


class MixtureDensityHead(nn.Module):
    """Linear map from features to a :class:`GaussianMixture` over ``out_dim`` values.

    Args:
        in_dim: input features.
        out_dim: dimensions ``D`` of the modelled value.
        n_components: Gaussians ``K`` per dimension.
        min_log_std: lower clamp of the predicted log stds (keeps the likelihood finite).
        max_log_std: upper clamp of the predicted log stds.
    """

    def __init__(
        self, in_dim: int, out_dim: int, n_components: int, *, min_log_std: float = -7.0, max_log_std: float = 2.0
    ) -> None:
        super().__init__()
        if n_components < 1 or out_dim < 1 or in_dim < 1:
            raise ValueError(
                f"in_dim, out_dim and n_components must be >= 1, got {in_dim}, {out_dim}, {n_components}"
            )
        self.out_dim, self.n_components = out_dim, n_components
        self.min_log_std, self.max_log_std = min_log_std, max_log_std
        self.proj = nn.Linear(in_dim, 3 * out_dim * n_components)

    def forward(self, features: torch.Tensor) -> GaussianMixture:
        """Mixture over ``(..., out_dim)`` from features ``(..., in_dim)``."""
        raw = self.proj(features).reshape(*features.shape[:-1], self.out_dim, 3 * self.n_components)
        logits, mean, log_std = raw.chunk(3, -1)
        return GaussianMixture(logits, mean, log_std.clamp(self.min_log_std, self.max_log_std))
