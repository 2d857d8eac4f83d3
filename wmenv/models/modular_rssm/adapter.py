"""The one place the Modular RSSM meets :class:`wmenv.core.WorldModel`.

Usage::

    model = create_model("modular-rssm", env, encoder="vit", backbone="transformer", decoder="conv")
    ...train...
    imagined = to_world_model(model, observation_mode="decoded")

State carried between calls: TensorDict ``[B]`` with ``"deter"``, ``"stoch"`` and the backbone
``"carry"`` (GRU ``{"h"}``, LSTM ``{"h", "c"}``, transformer ``{"tokens", "valid"}``), all fixed-shape,
so the imagination core resets members individually. The logic lives in
:class:`wmenv.nn.rssm_imagination.RSSMImagination`.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torch import nn

from wmenv.models.modular_rssm.model import ModularRSSMWorldModel
from wmenv.nn.backbone_rssm import STATE_KEYS
from wmenv.nn.rssm_imagination import ObservationMode, RSSMImagination

__all__ = ["ModularRSSMImagination", "to_world_model"]


class ModularRSSMImagination(RSSMImagination):
    """A trained :class:`ModularRSSMWorldModel` as a batched :class:`~wmenv.core.WorldModel`.

    Arguments as :class:`~wmenv.nn.rssm_imagination.RSSMImagination`; the state also carries the
    backbone ``"carry"``.
    """

    world_model: ModularRSSMWorldModel
    state_keys = STATE_KEYS

    def _posterior(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: TensorDictBase | None,
        generator: torch.Generator | None,
    ) -> TensorDictBase:
        # the backbone carry is only in the last state the filter returns, not in the posterior sequence
        wm = self.world_model
        _, _, last = wm.rssm.observe(wm.embed(obs), action, is_first, state, sample=self.sample, generator=generator)
        return last.select(*self.state_keys)


def to_world_model(
    model: nn.Module,
    *,
    observation_mode: ObservationMode = "latent",
    sample: bool = True,
    sample_termination: bool = False,
) -> ModularRSSMImagination:
    """Wrap a :class:`ModularRSSMWorldModel` as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: the trained model (call ``eval()`` yourself if needed).
        observation_mode: ``"latent"`` or ``"decoded"``.
        sample: sample latents with the core's generator (else modes: deterministic given the start).
        sample_termination: sample ``terminated`` from the continue head instead of thresholding.

    Raises:
        TypeError: ``model`` is not a Modular RSSM.
    """
    wm = getattr(model, "world_model", model)
    if not isinstance(wm, ModularRSSMWorldModel):
        raise TypeError(
            f"to_world_model expects a ModularRSSMWorldModel, got {type(model).__name__}; build one with "
            "wmenv.create_model('modular-rssm', env)"
        )
    return ModularRSSMImagination(wm, observation_mode=observation_mode, sample=sample,
                                  sample_termination=sample_termination)
