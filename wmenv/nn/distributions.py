"""Distributions and transforms of the Dreamer line, with explicit generators for sampling.

Every ``sample`` takes an optional :class:`torch.Generator` so imagination is reproducible
without touching the global RNG.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "symlog",
    "symexp",
    "TwoHotSymlog",
    "OneHotDist",
    "BoundedNormal",
    "TanhNormal",
    "bernoulli_loss",
    "gaussian_from_raw",
    "sample_gaussian",
]


def symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log(1 + |x|)``: compresses large magnitudes, identity-like near zero."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`symlog`: ``sign(x) * (exp(|x|) - 1)``."""
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHotSymlog:
    """Categorical over fixed bins in symlog space, trained with two-hot targets (DreamerV3).

    Args:
        logits: ``(..., K)`` unnormalised bin scores.
        low: lowest bin in symlog space.
        high: highest bin in symlog space.
    """

    def __init__(self, logits: torch.Tensor, low: float = -20.0, high: float = 20.0) -> None:
        self.logits = logits
        self.bins = torch.linspace(low, high, logits.shape[-1], device=logits.device, dtype=logits.dtype)

    def mean(self) -> torch.Tensor:
        """Expected value ``(...)`` in the original scale: ``symexp(sum_k p_k b_k)``."""
        return symexp((torch.softmax(self.logits, -1) * self.bins).sum(-1))

    def log_prob(self, target: torch.Tensor) -> torch.Tensor:
        """Two-hot log-likelihood ``(...)`` of ``target`` ``(...)`` (original scale)."""
        y = symlog(target.to(self.logits.dtype)).clamp(self.bins[0], self.bins[-1])
        k = self.bins.shape[0]
        idx = (torch.bucketize(y, self.bins, right=True) - 1).clamp(0, k - 2)
        lo, hi = self.bins[idx], self.bins[idx + 1]
        w_hi = ((y - lo) / (hi - lo)).clamp(0, 1)
        logp = torch.log_softmax(self.logits, -1)
        lp_lo = logp.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        lp_hi = logp.gather(-1, (idx + 1).unsqueeze(-1)).squeeze(-1)
        return (1 - w_hi) * lp_lo + w_hi * lp_hi


class OneHotDist:
    """One-hot categorical with a uniform mixture and straight-through gradients.

    Args:
        logits: ``(..., K)``.
        unimix: weight of the uniform mixture (DreamerV3: 0.01) so no class has zero probability.
    """

    def __init__(self, logits: torch.Tensor, unimix: float = 0.0) -> None:
        probs = torch.softmax(logits, -1)
        if unimix > 0:
            probs = (1 - unimix) * probs + unimix / logits.shape[-1]
            logits = torch.log(probs)
        else:
            logits = torch.log_softmax(logits, -1)
        self.probs, self.logits = probs, logits

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One-hot sample ``(..., K)`` with straight-through gradient to the probabilities."""
        flat = self.probs.detach().reshape(-1, self.probs.shape[-1])
        idx = torch.multinomial(flat, 1, generator=generator).reshape(self.probs.shape[:-1])
        onehot = F.one_hot(idx, self.probs.shape[-1]).to(self.probs.dtype)
        return onehot + self.probs - self.probs.detach()

    def mode(self) -> torch.Tensor:
        """Most likely class as one-hot ``(..., K)``, straight-through."""
        onehot = F.one_hot(self.probs.argmax(-1), self.probs.shape[-1]).to(self.probs.dtype)
        return onehot + self.probs - self.probs.detach()

    def log_prob(self, onehot: torch.Tensor) -> torch.Tensor:
        """Log-probability ``(...)`` of one-hot values ``(..., K)``."""
        return (onehot * self.logits).sum(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy ``(...)``."""
        return -(self.probs * self.logits).sum(-1)


def sample_gaussian(
    mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Reparameterised Gaussian sample ``mean + std * eps`` with ``eps`` from ``generator``."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + std * eps


def gaussian_from_raw(raw: torch.Tensor, min_std: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``(..., 2D)`` into mean ``(..., D)`` and ``std = softplus(.) + min_std``."""
    mean, std = raw.chunk(2, -1)
    return mean, F.softplus(std) + min_std


def _normal_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)


class BoundedNormal:
    """Normal with ``tanh`` mean and std squashed into ``[min_std, max_std]`` (DreamerV3 actor).

    Samples are clipped to ``[-1, 1]`` with a straight-through gradient.

    Args:
        raw: ``(..., 2A)`` network output (mean and std pre-activations).
        min_std: smallest std.
        max_std: largest std.
    """

    def __init__(self, raw: torch.Tensor, min_std: float = 0.1, max_std: float = 1.0) -> None:
        mean, std = raw.chunk(2, -1)
        self.mean = torch.tanh(mean)
        self.std = (max_std - min_std) * torch.sigmoid(std + 2.0) + min_std

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample ``(..., A)`` in ``[-1, 1]``."""
        x = sample_gaussian(self.mean, self.std, generator)
        return x + (x.clamp(-1, 1) - x).detach()

    def mode(self) -> torch.Tensor:
        """Mean ``(..., A)``."""
        return self.mean

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density ``(...)`` summed over action dims."""
        return _normal_log_prob(x, self.mean, self.std).sum(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy ``(...)`` summed over action dims."""
        return (0.5 + 0.5 * math.log(2 * math.pi) + self.std.log()).sum(-1)


class TanhNormal:
    """``tanh`` of a Normal (DreamerV1/V2 actor for continuous actions).

    Args:
        raw: ``(..., 2A)`` network output.
        min_std: added to ``softplus`` of the std pre-activation.
        init_std: std at zero pre-activation.
        mean_scale: mean is ``mean_scale * tanh(mean / mean_scale)`` before the squashing.
    """

    def __init__(
        self, raw: torch.Tensor, min_std: float = 1e-4, init_std: float = 5.0, mean_scale: float = 5.0
    ) -> None:
        mean, std = raw.chunk(2, -1)
        self.loc = mean_scale * torch.tanh(mean / mean_scale)
        raw_init = math.log(math.expm1(init_std))
        self.std = F.softplus(std + raw_init) + min_std

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample ``(..., A)`` in ``(-1, 1)``."""
        return torch.tanh(sample_gaussian(self.loc, self.std, generator))

    def mode(self) -> torch.Tensor:
        """``tanh`` of the Normal mean ``(..., A)`` (a cheap stand-in for the mode)."""
        return torch.tanh(self.loc)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density ``(...)`` of squashed values ``(..., A)``, with the tanh Jacobian."""
        x = x.clamp(-1 + 1e-6, 1 - 1e-6)
        u = torch.atanh(x)
        return (_normal_log_prob(u, self.loc, self.std) - torch.log1p(-x.pow(2) + 1e-6)).sum(-1)

    def entropy(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One-sample entropy estimate ``(...)`` (no closed form for a squashed Normal)."""
        return -self.log_prob(self.rsample(generator))


def bernoulli_loss(
    logits: torch.Tensor, target: torch.Tensor, positive_weight: float = 1.0, negative_weight: float = 1.0
) -> torch.Tensor:
    """Per-element negative log-likelihood ``(...)`` of a Bernoulli with class weights.

    Args:
        logits: ``(...)`` Bernoulli logits.
        target: ``(...)`` 0/1 targets.
        positive_weight: weight of elements with target 1.
        negative_weight: weight of elements with target 0 (e.g. > 1 for rare terminations when
            the target is "continue").
    """
    target = target.to(logits.dtype)
    nll = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    weight = target * positive_weight + (1 - target) * negative_weight
    return nll * weight
