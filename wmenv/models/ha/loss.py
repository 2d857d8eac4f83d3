"""Loss terms of the World Models family: the VAE's ELBO with free nats, the MDN-RNN's likelihoods.

Transitions from a replay batch ``[B, T]`` (see :mod:`wmenv.train.replay`): row ``t`` holds
``observation_t``, the action ``a_{t-1}`` that led to it, ``reward_t`` received on arriving and
``terminated_t``. The MDN-RNN step ``t`` reads ``[z_t, a_t]`` (``a_t`` is stored in row ``t + 1``)
and predicts ``z_{t+1}``, ``reward_{t+1}`` and ``terminated_{t+1}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tensordict import TensorDictBase

from wmenv.nn.losses import masked_mean

__all__ = ["gaussian_kl", "kl_with_tolerance", "transition_view", "masked_mean", "done_loss"]


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, exp(log_var)) || N(0, 1))`` summed over the last dim: ``(..., Z) -> (...)``."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)


def kl_with_tolerance(mean: torch.Tensor, log_var: torch.Tensor, tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's free-nats KL: ``max(mean_batch KL, tolerance * Z)``.

    Args:
        mean: ``(N, Z)`` posterior means.
        log_var: ``(N, Z)`` posterior log variances.
        tolerance: free nats per latent dimension.

    Returns:
        ``(clamped, raw)`` scalars; only ``clamped`` carries the gradient that matters.
    """
    raw = gaussian_kl(mean, log_var).mean()
    floor = torch.as_tensor(tolerance * mean.shape[-1], dtype=raw.dtype, device=raw.device)
    return torch.maximum(raw, floor), raw.detach()




def transition_view(batch: TensorDictBase) -> dict[str, torch.Tensor]:
    """Split a ``[B, T]`` batch into ``T - 1`` aligned transitions.

    Returns:
        ``action`` ``(B, T-1, ...)`` (``a_t``, read from row ``t + 1``), ``reward`` ``(B, T-1)``,
        ``terminated`` ``(B, T-1)`` float, and ``valid`` ``(B, T-1)`` bool (false where row
        ``t + 1`` starts a new episode, so no transition crosses episodes).
    """
    b, t = batch.batch_size[:2]
    if t < 2:
        raise ValueError(f"MDN-RNN batches need sequences of at least 2 rows, got T={t}; raise seq_len")
    is_first = batch.get("is_first", None)
    if is_first is None:
        valid = torch.ones(b, t - 1, dtype=torch.bool, device=batch.device)
    else:
        valid = ~is_first[:, 1:].reshape(b, t - 1).bool()
    return {
        "action": batch["action"][:, 1:],
        "reward": batch["reward"][:, 1:].reshape(b, t - 1).float(),
        "terminated": batch["terminated"][:, 1:].reshape(b, t - 1).float(),
        "valid": valid,
    }


def done_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Per-step binary cross-entropy ``(...)`` of the termination head, terminal steps weighted."""
    weight = 1.0 + (pos_weight - 1.0) * target
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight
