"""The one place the Dreamer family meets :class:`wmenv.core.WorldModel`.

Usage::

    wm = create_model("dreamer-wm", env)             # or a DreamerAgent
    ...train...
    imagined = to_world_model(wm, observation_mode="decoded")
    core = ImaginationCore(imagined, ReplayStartStates(replay[:], context_length=8), num_envs=16)

State carried between calls: TensorDict ``[B]`` with ``"deter"`` ``(B, D)`` and ``"stoch"``
``(B, S, C)`` (or ``(B, S)`` for V1). The logic lives in :class:`wmenv.nn.rssm_imagination.RSSMImagination`.
"""

from __future__ import annotations

from torch import nn

from wmenv.models.dreamer.model import DreamerWorldModel
from wmenv.nn.rssm_imagination import ObservationMode, RSSMImagination

__all__ = ["DreamerImagination", "to_world_model"]


class DreamerImagination(RSSMImagination):
    """A trained :class:`DreamerWorldModel` as a batched :class:`~wmenv.core.WorldModel`.

    Arguments as :class:`~wmenv.nn.rssm_imagination.RSSMImagination`; :meth:`observe` is the
    posterior filter for acting in a real env.
    """

    world_model: DreamerWorldModel


def to_world_model(
    model: nn.Module,
    *,
    observation_mode: ObservationMode = "latent",
    sample: bool = True,
    sample_termination: bool = False,
) -> DreamerImagination:
    """Wrap a :class:`DreamerAgent` or :class:`DreamerWorldModel` as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: trained agent or world model (put it in ``eval()`` mode yourself if needed).
        observation_mode: ``"latent"`` (RSSM features) or ``"decoded"`` (real observation space).
        sample: sample latents with the core's generator (else modes: deterministic given the start).
        sample_termination: sample ``terminated`` from the continue head instead of thresholding.
    """
    wm = getattr(model, "world_model", model)
    if not isinstance(wm, DreamerWorldModel):
        raise TypeError(
            f"to_world_model expects a DreamerAgent or DreamerWorldModel, got {type(model).__name__}; "
            "build one with wmenv.create_model('dreamer', env) or create_model('dreamer-wm', env)"
        )
    return DreamerImagination(
        wm, observation_mode=observation_mode, sample=sample, sample_termination=sample_termination
    )
