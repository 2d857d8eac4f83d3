"""Loss terms of the Modular RSSM: reconstruction, reward, continue and balanced KL with free bits.

:func:`world_model_loss` assembles them into the ``loss(batch)`` TensorDict the generic trainer sums.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict, TensorDictBase

from wmenv.nn import bernoulli_loss, kl_loss
from wmenv.nn.losses import masked_mean

if TYPE_CHECKING:
    from wmenv.models.modular_rssm.model import ModularRSSMWorldModel

__all__ = ["squared_error", "masked_mean", "world_model_loss"]


def squared_error(pred: torch.Tensor, target: torch.Tensor, dims: tuple[int, ...] = ()) -> torch.Tensor:
    """``0.5 * (pred - target)**2`` summed over ``dims`` (unit-variance Gaussian NLL without constants)."""
    se = 0.5 * (pred - target.to(pred.dtype)) ** 2
    return se.sum(dims) if dims else se




def world_model_loss(model: ModularRSSMWorldModel, batch: TensorDictBase) -> TensorDictBase:
    """``loss_obs``, ``loss_reward``, ``loss_cont``, ``loss_kl`` (scalars) plus detached metrics.

    Args:
        model: the world model.
        batch: TensorDict ``[B, T]`` of replay rows (``observation``, ``action``, ``reward``,
            ``terminated``, ``is_first``).
    """
    cfg = model.config
    post, prior, _ = model.observe(batch)
    feat = model.rssm.features(post)
    obs_nll = squared_error(model.decoder(feat), model.obs.encode(batch["observation"]), model.obs.event_dims())
    not_first = ~batch["is_first"].bool()
    reward_pred = model.reward(feat)
    reward_nll = squared_error(reward_pred, batch["reward"].float())
    cont_logit = model.cont_head(feat).squeeze(-1)
    cont = (~batch["terminated"].bool()).float()
    kl, kl_metrics = kl_loss(model.rssm, post, prior, dyn_scale=cfg.kl.dyn_scale, rep_scale=cfg.kl.rep_scale,
                             free_bits=cfg.kl.free_bits, balanced=True)
    return TensorDict(
        {
            "loss_obs": cfg.obs_scale * obs_nll.mean(),
            "loss_reward": cfg.reward_scale * masked_mean(reward_nll, not_first),
            "loss_cont": cfg.cont_scale * bernoulli_loss(cont_logit, cont).mean(),
            "loss_kl": kl.mean(),
            "obs_nll": obs_nll.detach().mean(),
            "reward_mae": masked_mean((reward_pred.detach() - batch["reward"]).abs(), not_first),
            "cont_acc": ((cont_logit.detach() > 0).float() == cont).float().mean(),
            **kl_metrics,
        },
        batch_size=[],
    )
