import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.models.dreamer.conftest import BOX, DISCRETE, IMAGE, VECTOR, make_batch, micro, train
from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.dreamer import DreamerWorldModel, open_loop_error
from wmenv.registry import create_model


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_world_model_loss_decreases(version: str) -> None:
    model = DreamerWorldModel(micro(version), VECTOR, DISCRETE)
    batch = make_batch(VECTOR, DISCRETE)
    before = model.loss(batch)
    train(model, batch, 60)
    out = model.loss(batch)
    recon = ("loss_obs", "loss_reward", "loss_cont")  # the KL may sit at its free-bits floor
    assert sum(float(out[k].detach()) for k in recon) < 0.8 * sum(float(before[k].detach()) for k in recon)
    assert {"loss_obs", "loss_reward", "loss_cont", "loss_kl", "obs_mse", "kl"} <= set(out.keys())
    assert all(out[k].dim() == 0 for k in out.keys())
    assert not out["obs_mse"].requires_grad


@pytest.mark.parametrize(
    ("obs_space", "act_space"), [(VECTOR, DISCRETE), (VECTOR, BOX), (IMAGE, DISCRETE), (IMAGE, BOX)]
)
def test_every_parameter_gets_a_gradient(obs_space: gym.Space, act_space: gym.Space) -> None:
    model = DreamerWorldModel(micro(), obs_space, act_space)
    out = model.loss(make_batch(obs_space, act_space, b=2, t=4))
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    groups = model.optim_groups()
    assert set(groups) == {"model"}
    assert {"params", "lr", "eps", "grad_clip", "weight_decay"} <= set(groups["model"])
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert len(groups["model"]["params"]) == len(list(model.parameters()))


def test_pixel_decode_and_open_loop_error() -> None:
    model = DreamerWorldModel(micro(), IMAGE, DISCRETE)
    batch = make_batch(IMAGE, DISCRETE, b=2, t=6)
    feat = model.rssm.features(model.rssm.initial(2))
    img = model.decode(feat)
    assert img.shape == (2, 64, 64, 3) and img.dtype == torch.uint8
    err = open_loop_error(model, batch, horizon=3, context=2)
    assert err.shape == (3,)


def test_open_loop_error_skips_episode_boundaries() -> None:
    model = DreamerWorldModel(micro(), VECTOR, DISCRETE)
    batch = make_batch(VECTOR, DISCRETE, b=2, t=6)  # boundary at t=3
    err = open_loop_error(model, batch, horizon=4, context=2)
    assert torch.isfinite(err[0]) and torch.isnan(err[1:]).all()
    with pytest.raises(ValueError, match="needs >= context \\+ horizon = 9"):
        open_loop_error(model, batch, horizon=7, context=2)


def test_action_codec_roundtrip() -> None:
    model = DreamerWorldModel(micro(), VECTOR, BOX)
    a = torch.tensor([[-2.0, 2.0], [0.0, 1.0]])
    assert torch.allclose(model.actions.decode(model.actions.encode(a)), a)
    disc = DreamerWorldModel(micro(), VECTOR, DISCRETE).actions
    assert torch.equal(disc.decode(disc.encode(torch.tensor([2, 0]))), torch.tensor([2, 0]))


@pytest.mark.parametrize(
    ("obs_space", "act_space", "match"),
    [
        (gym.spaces.Box(0, 255, (32, 32, 3), np.uint8), DISCRETE, r"observation space Box.*Resize other images to 64x64x3"),
        (gym.spaces.Dict({"a": VECTOR}), DISCRETE, r"supported observation spaces: Box"),
        (VECTOR, gym.spaces.MultiDiscrete([2, 2]), r"cannot act in action space MultiDiscrete"),
    ],
)
def test_unsupported_spaces(obs_space: gym.Space, act_space: gym.Space, match: str) -> None:
    with pytest.raises(UnsupportedSpaceError, match=match):
        DreamerWorldModel(micro(), obs_space, act_space)


def test_create_model_world_model_only() -> None:
    env = gym.make("CartPole-v1")
    model = create_model("dreamer-wm", env, rssm__deter=32, rssm__hidden=32, mlp_units=32)
    assert isinstance(model, DreamerWorldModel)
    assert model.rssm.deter == 32
