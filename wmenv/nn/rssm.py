"""Recurrent State-Space Model (PlaNet / Dreamer): deterministic GRU path + stochastic latent.

State (a TensorDict with batch size ``[B]`` or ``[B, T]``):

``"deter"``   ``(B, D)`` deterministic GRU state
``"stoch"``   ``(B, S, C)`` one-hot samples of ``S`` categoricals with ``C`` classes (discrete, V2/V3)
              or ``(B, S)`` Gaussian samples (continuous, V1 / PlaNet)
``"logits"``  ``(B, S, C)`` distribution parameters (discrete; from ``observe``/``img_step`` only)
``"mean"``, ``"std"``  ``(B, S)`` distribution parameters (Gaussian)

``features(state) = concat(deter, flatten(stoch))`` feeds every head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.nn.distributions import OneHotDist, gaussian_from_raw, sample_gaussian
from wmenv.nn.mlp import MLP, Activation
from wmenv.nn.recurrent import NormGRUCell

__all__ = ["RSSM", "LatentRSSMBase", "kl_loss"]


class LatentRSSMBase(nn.Module):
    """What every RSSM here shares: the stochastic latent and its MLP heads' parameterisation.

    A discrete latent (``classes > 0``: ``S`` categoricals with ``C`` classes, optional unimix)
    or a diagonal Gaussian (``classes == 0``, std floored at ``min_std``); ``features`` is
    ``concat(deter, flatten(stoch))``. Subclasses own the deterministic path (a GRU here, any
    backbone in :class:`wmenv.nn.backbone_rssm.BackboneRSSM`).
    """

    def _init_latent(self, deter: int, stoch: int, classes: int, unimix: float, min_std: float) -> int:
        """Set the latent attributes; returns the size of the distribution parameters."""
        self.deter, self.stoch, self.classes = deter, stoch, classes
        self.unimix, self.min_std = unimix, min_std
        self.discrete = classes > 0
        self.stoch_flat = stoch * classes if self.discrete else stoch
        return stoch * classes if self.discrete else 2 * stoch

    @property
    def feature_dim(self) -> int:
        """Size of :meth:`features`: ``D + S * C`` (discrete) or ``D + S`` (Gaussian)."""
        return self.deter + self.stoch_flat

    def _stats(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.discrete:
            return {"logits": raw.reshape(*raw.shape[:-1], self.stoch, self.classes)}
        mean, std = gaussian_from_raw(raw, self.min_std)
        return {"mean": mean, "std": std}

    def _sample(
        self, stats: dict[str, torch.Tensor], sample: bool, generator: torch.Generator | None
    ) -> torch.Tensor:
        if self.discrete:
            dist = OneHotDist(stats["logits"], self.unimix)
            return dist.sample(generator) if sample else dist.mode()
        if not sample:
            return stats["mean"]
        return sample_gaussian(stats["mean"], stats["std"], generator)

    def features(self, state: TensorDictBase) -> torch.Tensor:
        """``concat(deter, flatten(stoch))`` ``(..., feature_dim)``."""
        stoch = state["stoch"]
        if self.discrete:
            stoch = stoch.flatten(-2)
        return torch.cat([state["deter"], stoch], -1)

    def _flat_stoch(self, stoch: torch.Tensor) -> torch.Tensor:
        return stoch.flatten(-2) if self.discrete else stoch

    def kl(self, lhs: TensorDictBase, rhs: TensorDictBase) -> torch.Tensor:
        """``KL(lhs || rhs)`` summed over latent variables, shape ``lhs.batch_size``."""
        if self.discrete:
            p = OneHotDist(lhs["logits"], self.unimix)
            q = OneHotDist(rhs["logits"], self.unimix)
            return (p.probs * (p.logits - q.logits)).sum((-1, -2))
        m1, s1, m2, s2 = lhs["mean"], lhs["std"], rhs["mean"], rhs["std"]
        kl = torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
        return kl.sum(-1)


class RSSM(LatentRSSMBase):
    """GRU-based RSSM with a discrete (``classes > 0``) or Gaussian (``classes == 0``) latent.

    Args:
        action_dim: size of the (one-hot or normalised) action vector.
        embed_dim: size of the observation embedding.
        deter: GRU state size ``D``.
        stoch: number of latent variables ``S``.
        classes: classes per latent ``C``; 0 for a diagonal Gaussian latent.
        hidden: width of the input/prior/posterior MLPs.
        norm: LayerNorm in the MLPs and GRU.
        act: activation name.
        unimix: uniform mixture of the categorical latents.
        min_std: minimum std of Gaussian latents.
        learned_initial: learn the initial deterministic state (DreamerV3) instead of zeros.
    """

    def __init__(
        self,
        action_dim: int,
        embed_dim: int,
        *,
        deter: int = 512,
        stoch: int = 32,
        classes: int = 32,
        hidden: int = 512,
        norm: bool = True,
        act: Activation = "silu",
        unimix: float = 0.01,
        min_std: float = 0.1,
        learned_initial: bool = True,
    ) -> None:
        super().__init__()
        stat_dim = self._init_latent(deter, stoch, classes, unimix, min_std)
        self.img_in = MLP(self.stoch_flat + action_dim, None, hidden, 1, norm=norm, act=act)
        self.gru = NormGRUCell(hidden, deter, norm=norm)
        self.img_out = MLP(deter, stat_dim, hidden, 1, norm=norm, act=act)
        self.obs_out = MLP(deter + embed_dim, stat_dim, hidden, 1, norm=norm, act=act)
        self.init_deter = nn.Parameter(torch.zeros(deter)) if learned_initial else None

    def initial(self, batch: int, device: torch.device | str | None = None) -> TensorDictBase:
        """Initial state ``[batch]``: the (learned) initial ``deter`` and its prior mode as ``stoch``."""
        device = device if device is not None else self.img_in.net[0].weight.device
        if self.init_deter is not None:
            deter = torch.tanh(self.init_deter).to(device).expand(batch, self.deter)
        else:
            deter = torch.zeros(batch, self.deter, device=device)
        stoch = self._sample(self._stats(self.img_out(deter)), False, None)
        return TensorDict({"deter": deter, "stoch": stoch}, batch_size=[batch])

    # ------------------------------------------------------------------ dynamics
    def _deter_step(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.gru(self.img_in(torch.cat([self._flat_stoch(stoch), action], -1)), deter)

    def img_step(
        self,
        state: TensorDictBase,
        action: torch.Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> TensorDictBase:
        """One prior step (imagination).

        Args:
            state: ``[B]`` with ``deter`` and ``stoch``.
            action: ``(B, action_dim)``.
            sample: sample the latent (else take the mode / mean).
            generator: source of randomness (``None``: global RNG).

        Returns:
            Prior state ``[B]`` with ``deter``, ``stoch`` and the distribution parameters.
        """
        deter = self._deter_step(state["deter"], state["stoch"], action)
        stats = self._stats(self.img_out(deter))
        stoch = self._sample(stats, sample, generator)
        return TensorDict({"deter": deter, "stoch": stoch, **stats}, batch_size=state.batch_size)

    imagine_step = img_step

    def observe(
        self,
        embed: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: TensorDictBase | None = None,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[TensorDictBase, TensorDictBase]:
        """Posterior filter over a sequence; resets to :meth:`initial` wherever ``is_first``.

        Args:
            embed: ``(B, T, E)`` observation embeddings.
            action: ``(B, T, A)`` action taken *before* each observation (zeros at episode start).
            is_first: ``(B, T)`` bool, first step of an episode.
            state: state ``[B]`` before the sequence (``None``: initial state).
            sample: sample the posterior latents (else modes).
            generator: source of randomness (``None``: global RNG).

        Returns:
            ``(posterior, prior)``, TensorDicts ``[B, T]`` with states and distribution parameters.
        """
        b, t = embed.shape[:2]
        init = self.initial(b, embed.device)
        init_deter, init_stoch = init["deter"], init["stoch"]
        deter, stoch = (init_deter, init_stoch) if state is None else (state["deter"], state["stoch"])
        keep_all = (~is_first.bool()).to(embed.dtype)  # (B, T)
        action = action * keep_all.unsqueeze(-1)  # no action leads into a first step
        # The posterior layer sees concat(deter, embed): its embed half is computed for all T at once.
        first_layer = self.obs_out.net[0]
        w_deter, w_embed = first_layer.weight.split([self.deter, embed.shape[-1]], -1)
        embed_proj = F.linear(embed, w_embed, first_layer.bias)  # (B, T, hidden)
        rest = self.obs_out.net[1:]
        stoch_dims = (1,) * (init_stoch.dim() - 1)
        deters, stochs, raws = [], [], []
        for i in range(t):
            keep = keep_all[:, i : i + 1]  # (B, 1)
            deter = deter * keep + init_deter * (1 - keep)
            keep_s = keep.reshape(b, *stoch_dims)
            stoch = stoch * keep_s + init_stoch * (1 - keep_s)
            deter = self._deter_step(deter, stoch, action[:, i])
            raw = rest(F.linear(deter, w_deter) + embed_proj[:, i])
            stoch = self._sample(self._stats(raw), sample, generator)
            deters.append(deter)
            stochs.append(stoch)
            raws.append(raw)
        deter_seq = torch.stack(deters, 1)
        post_stats = self._stats(torch.stack(raws, 1))
        post = TensorDict({"deter": deter_seq, "stoch": torch.stack(stochs, 1), **post_stats}, batch_size=[b, t])
        prior_stats = self._stats(self.img_out(deter_seq))  # batched over T
        prior = TensorDict({"deter": deter_seq, **prior_stats}, batch_size=[b, t])
        return post, prior


def _stats_only(state: TensorDictBase, detach: bool) -> TensorDictBase:
    keys = [k for k in ("logits", "mean", "std") if k in state.keys()]
    out = state.select(*keys)
    return out.detach() if detach else out


def kl_loss(
    rssm: RSSM,
    post: TensorDictBase,
    prior: TensorDictBase,
    *,
    dyn_scale: float,
    rep_scale: float,
    free_bits: float,
    balanced: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """KL regulariser with balancing and free bits.

    Balanced (V2/V3): ``dyn_scale * max(free, KL(sg(post) || prior)) + rep_scale * max(free,
    KL(post || sg(prior)))``; the dynamics term trains the prior, the representation term the
    posterior. V2's balancing ``alpha = 0.8`` is ``dyn_scale = 0.8, rep_scale = 0.2``.
    Plain (V1): ``dyn_scale * max(free, KL(post || prior))``.

    Args:
        rssm: the model (knows the latent type).
        post: posterior ``[B, T]`` with distribution parameters.
        prior: prior ``[B, T]`` with distribution parameters.
        dyn_scale: weight of the dynamics (prior) term, or of the plain KL.
        rep_scale: weight of the representation (posterior) term (ignored when not balanced).
        free_bits: per-step floor in nats below which the KL is not penalised.
        balanced: balanced form (V2/V3) or plain KL (V1).

    Returns:
        ``(loss (B, T), metrics)`` with metrics ``kl``, ``kl_dyn``, ``kl_rep`` (detached means).
    """
    if not balanced:
        kl = rssm.kl(_stats_only(post, False), _stats_only(prior, False))
        return dyn_scale * kl.clamp(min=free_bits), {"kl": kl.detach().mean()}
    dyn = rssm.kl(_stats_only(post, True), _stats_only(prior, False))
    rep = rssm.kl(_stats_only(post, False), _stats_only(prior, True))
    loss = dyn_scale * dyn.clamp(min=free_bits) + rep_scale * rep.clamp(min=free_bits)
    return loss, {"kl": dyn.detach().mean()}
