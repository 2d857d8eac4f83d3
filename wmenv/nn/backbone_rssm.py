"""RSSM with a swappable deterministic backbone (GRU, LSTM or windowed transformer).

Same interface and latent choices as :class:`wmenv.nn.rssm.RSSM` (discrete ``S x C`` one-hot latents
or a diagonal Gaussian when ``classes == 0``), but the deterministic path is any backbone of
:mod:`wmenv.nn.backbones`, whose carry travels with the state.

State (TensorDict ``[B]``):

``"deter"``  ``(B, D)`` backbone output
``"stoch"``  ``(B, S, C)`` one-hot samples, or ``(B, S)`` Gaussian samples
``"carry"``  backbone carry (``{"h"}`` GRU, ``{"h", "c"}`` LSTM, ``{"tokens", "valid"}`` transformer)
``"logits"`` / ``"mean"``, ``"std"``  distribution parameters (from ``observe`` / ``img_step`` only)
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase

from wmenv.nn.backbones import GRUBackbone, LSTMBackbone, TransformerBackbone
from wmenv.nn.mlp import MLP, Activation
from wmenv.nn.rssm import LatentRSSMBase

__all__ = ["BackboneRSSM", "STATE_KEYS"]

#: Keys of a model state (distribution parameters are dropped between steps).
STATE_KEYS = ("deter", "stoch", "carry")


class BackboneRSSM(LatentRSSMBase):
    """Recurrent state-space model over a given backbone.

    Args:
        backbone: a backbone from :func:`wmenv.nn.backbones.make_backbone` whose input size is ``hidden``.
        action_dim: size of model action vectors.
        embed_dim: size of observation embeddings.
        stoch: number of latent variables ``S``.
        classes: classes per latent ``C``; 0 for a diagonal Gaussian latent.
        hidden: width of the input/prior/posterior MLPs.
        norm: LayerNorm in those MLPs.
        act: activation name.
        unimix: uniform mixture of categorical latents.
        min_std: minimum std of Gaussian latents.
    """

    def __init__(
        self,
        backbone: GRUBackbone | LSTMBackbone | TransformerBackbone,
        action_dim: int,
        embed_dim: int,
        *,
        stoch: int = 32,
        classes: int = 32,
        hidden: int = 256,
        norm: bool = True,
        act: Activation = "silu",
        unimix: float = 0.01,
        min_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        stat_dim = self._init_latent(backbone.out_dim, stoch, classes, unimix, min_std)
        self.img_in = MLP(self.stoch_flat + action_dim, None, hidden, 1, norm=norm, act=act)
        self.img_out = MLP(self.deter, stat_dim, hidden, 1, norm=norm, act=act)
        self.obs_out = MLP(self.deter + embed_dim, stat_dim, hidden, 1, norm=norm, act=act)

    def initial(self, batch: int, device: torch.device | str | None = None) -> TensorDictBase:
        """Initial state ``[batch]``: zero ``deter``, empty carry, the prior mode as ``stoch``."""
        device = device if device is not None else self.img_out.net[0].weight.device
        deter = torch.zeros(batch, self.deter, device=device)
        stoch = self._sample(self._stats(self.img_out(deter)), False, None)
        carry = self.backbone.initial(batch, device)
        return TensorDict({"deter": deter, "stoch": stoch, "carry": carry}, batch_size=[batch])

    def _deter_step(self, state: TensorDictBase, action: torch.Tensor) -> tuple[torch.Tensor, TensorDictBase]:
        return self.backbone(self.img_in(torch.cat([self._flat_stoch(state["stoch"]), action], -1)), state["carry"])

    def img_step(
        self, state: TensorDictBase, action: torch.Tensor, *, sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> TensorDictBase:
        """One prior step: state ``[B]`` (``deter``, ``stoch``, ``carry``) and action ``(B, A)`` -> prior state ``[B]``."""
        deter, carry = self._deter_step(state, action)
        stats = self._stats(self.img_out(deter))
        stoch = self._sample(stats, sample, generator)
        return TensorDict({"deter": deter, "stoch": stoch, "carry": carry, **stats}, batch_size=state.batch_size)

    def observe(
        self,
        embed: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: TensorDictBase | None = None,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[TensorDictBase, TensorDictBase, TensorDictBase]:
        """Posterior filter over a sequence; resets to :meth:`initial` wherever ``is_first``.

        Args:
            embed: ``(B, T, E)`` observation embeddings.
            action: ``(B, T, A)`` action vectors taken *before* each observation.
            is_first: ``(B, T)`` bool.
            state: state ``[B]`` before the sequence (``None``: initial state).
            sample: sample posterior latents (else modes / means).
            generator: source of randomness (``None``: global RNG).

        Returns:
            ``(posterior [B, T], prior [B, T], last posterior state [B] with its carry)``; the
            sequences hold ``deter``, ``stoch`` (posterior only) and distribution parameters.
        """
        b, t = embed.shape[:2]
        init = self.initial(b, embed.device)
        state = init if state is None else state.select(*STATE_KEYS)
        first = is_first.to(torch.bool)
        deters, stochs, stats_seq = [], [], []
        for i in range(t):
            reset = first[:, i]
            prev = state.select(*STATE_KEYS).apply(
                lambda cur, ini, r=reset: torch.where(r.reshape(-1, *([1] * (cur.dim() - 1))), ini, cur), init
            )
            keep = (~reset).to(action.dtype).unsqueeze(-1)
            deter, carry = self._deter_step(prev, action[:, i] * keep)
            stats = self._stats(self.obs_out(torch.cat([deter, embed[:, i]], -1)))
            stoch = self._sample(stats, sample, generator)
            state = TensorDict({"deter": deter, "stoch": stoch, "carry": carry}, batch_size=[b])
            deters.append(deter)
            stochs.append(stoch)
            stats_seq.append(stats)
        deter_seq = torch.stack(deters, 1)
        post = TensorDict(
            {"deter": deter_seq, "stoch": torch.stack(stochs, 1),
             **{k: torch.stack([s[k] for s in stats_seq], 1) for k in stats_seq[0]}},
            batch_size=[b, t],
        )
        prior = TensorDict({"deter": deter_seq, **self._stats(self.img_out(deter_seq))}, batch_size=[b, t])
        return post, prior, state
