"""Every encoder x backbone x decoder combination: valid ones train and pass the env checkers, the others
raise a typed error naming the fix. All 18 run by default (the six pixel ones take ~2-3 s each on a loaded
2-core CPU)."""

from __future__ import annotations

import itertools

import gymnasium as gym
import pytest

from tests.models.modular_rssm.conftest import DISCRETE, IMAGE, VECTOR, make_batch, micro, train
from wmenv.core import ReplayStartStates
from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.modular_rssm import ModularRSSMWorldModel, to_world_model
from wmenv.testing import check_world_model_env

ENCODERS, BACKBONES, DECODERS = ("mlp", "conv", "vit"), ("gru", "lstm", "transformer"), ("mlp", "conv")


def _space(encoder: str, decoder: str) -> gym.Space | None:
    """The observation space a combination is valid for (``None``: valid for none)."""
    if encoder == "mlp" and decoder == "mlp":
        return VECTOR
    if encoder in ("conv", "vit") and decoder == "conv":
        return IMAGE
    return None


@pytest.mark.parametrize(
    ("encoder", "backbone", "decoder"),
    [pytest.param(*c, id="-".join(c)) for c in itertools.product(ENCODERS, BACKBONES, DECODERS)],
)
def test_combination(encoder: str, backbone: str, decoder: str) -> None:
    config = micro(encoder=encoder, backbone=backbone, decoder=decoder)
    space = _space(encoder, decoder)
    if space is None:
        for obs_space in (VECTOR, IMAGE):
            with pytest.raises(UnsupportedSpaceError, match=r"(en|de)coder='(mlp|conv|vit)' does not fit .* set"):
                ModularRSSMWorldModel(config, obs_space, DISCRETE)
        return
    model = ModularRSSMWorldModel(config, space, DISCRETE)
    assert (model.encoder_kind, model.decoder_kind) == (encoder, decoder)
    batch = make_batch(space, DISCRETE, b=2, t=5)
    losses = train(model, batch, 8)
    assert losses[-1] < losses[0], losses
    report = check_world_model_env(
        to_world_model(model.eval(), observation_mode="decoded"),
        ReplayStartStates(make_batch(space, DISCRETE, b=3, t=6).reshape(-1), context_length=2),
        max_episode_steps=4, num_envs=2, steps=8,
    )
    assert set(report.values()) == {"ok"}
