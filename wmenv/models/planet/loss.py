"""Terms of PlaNet's variational bound: reconstruction, reward, KL with free nats, latent overshooting.

All terms are negative log-likelihoods (unit-variance Gaussians for observations and rewards, up to
constants) or KL divergences, per element; :meth:`PlanetWorldModel.loss` reduces and weights them.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase

from wmenv.nn.losses import masked_mean
from wmenv.nn.rssm import RSSM

__all__ = ["gaussian_nll", "masked_mean", "overshooting_kl"]


def gaussian_nll(pred: torch.Tensor, target: torch.Tensor, dims: tuple[int, ...] = ()) -> torch.Tensor:
    """``0.5 * (pred - target)**2`` summed over ``dims`` (unit-variance Gaussian NLL without constants)."""
    se = 0.5 * (pred - target.to(pred.dtype)) ** 2
    return se.sum(dims) if dims else se




def overshooting_kl(
    rssm: RSSM,
    post: TensorDictBase,
    action: torch.Tensor,
    is_first: torch.Tensor,
    distance: int,
    free_nats: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent overshooting (PlaNet, Sec. 4): multi-step priors against the posteriors.

    ``cur_d[j]`` is the prior state at step ``j + d`` predicted from the posterior at ``j`` with the
    recorded actions; the term for distance ``d`` is ``max(free_nats, KL(sg(q(s_{j+d})) || p_d))``
    averaged over start steps ``j`` whose ``d`` next steps stay inside one episode. Distance 1 is
    the ordinary KL term and is not repeated here.

    Args:
        rssm: Gaussian RSSM.
        post: posterior ``[B, T]`` with ``deter``, ``stoch``, ``mean``, ``std``.
        action: ``(B, T, A)`` model action vectors (action ``t`` led to observation ``t``).
        is_first: ``(B, T)`` bool.
        distance: largest distance ``D >= 2``.
        free_nats: KL floor per step.

    Returns:
        ``(sum over d = 2..D of the mean KL terms, mean raw KL over those terms)`` as scalars.
    """
    b, t = post.batch_size
    episode = is_first.long().cumsum(1)  # (B, T): equal values = same episode segment
    cur = post.select("deter", "stoch")
    total = post["mean"].new_zeros(())
    raw = []
    for d in range(1, min(distance, t - 1) + 1):
        n = t - d
        flat = cur[:, :n].reshape(b * n)
        nxt = rssm.img_step(flat, action[:, d:].reshape(b * n, -1), sample=True).reshape(b, n)
        if d >= 2:
            target = post[:, d:].select("mean", "std").detach()
            kl = rssm.kl(target, nxt.select("mean", "std"))  # (B, n)
            valid = episode[:, d:] == episode[:, :n]
            total = total + masked_mean(kl.clamp(min=free_nats), valid)
            raw.append(masked_mean(kl.detach(), valid))
        cur = nxt.select("deter", "stoch")
    mean_raw = torch.stack(raw).mean() if raw else total.detach()
    return total, mean_raw
