"""PlaNet world model: loss terms, training signal, gradients, golden values, overshooting, spaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.models.planet.conftest import BOX, DISCRETE, IMAGE, VECTOR, make_batch, micro, train
from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.planet import PlanetAgent, PlanetWorldModel, overshooting_kl


@pytest.mark.parametrize(("obs_space", "act_space"), [(VECTOR, BOX), (VECTOR, DISCRETE)])
def test_loss_decreases_on_a_fixed_batch(obs_space: gym.Space, act_space: gym.Space) -> None:
    model = PlanetAgent(micro(), obs_space, act_space)
    batch = make_batch(obs_space, act_space)
    before = model.loss(batch)
    losses = train(model, batch, 60)
    after = model.loss(batch)
    recon = ("loss_obs", "loss_reward", "loss_cont")  # the KL may sit at its free-nats floor
    assert sum(float(after[k].detach()) for k in recon) < 0.7 * sum(float(before[k].detach()) for k in recon)
    assert losses[-1] < losses[0]
    assert {"loss_obs", "loss_reward", "loss_kl", "loss_cont", "obs_nll", "reward_mae", "kl"} <= set(after.keys())
    assert all(after[k].dim() == 0 for k in after.keys()) and not after["obs_nll"].requires_grad


@pytest.mark.parametrize(("obs_space", "act_space", "overshooting"),
                         [(VECTOR, BOX, 3), (VECTOR, DISCRETE, 0), (IMAGE, BOX, 0)])
def test_every_parameter_gets_a_gradient(obs_space: gym.Space, act_space: gym.Space, overshooting: int) -> None:
    model = PlanetAgent(micro(overshooting=overshooting), obs_space, act_space)
    out = model.loss(make_batch(obs_space, act_space, b=2, t=5))
    assert ("loss_overshooting" in out.keys()) == (overshooting > 0)
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    groups = model.optim_groups()
    assert set(groups) == {"model"} and len(groups["model"]["params"]) == len(list(model.parameters()))
    assert groups["model"]["lr"] == model.config.lr


def test_golden_loss_values_with_seeded_weights() -> None:
    torch.manual_seed(123)
    model = PlanetWorldModel(micro(overshooting=2, free_nats=0.0), VECTOR, BOX)
    torch.manual_seed(7)  # posterior samples of the loss come from the global RNG during training
    out = model.loss(make_batch(VECTOR, BOX, b=2, t=6))
    got = {k: round(float(out[k].detach()), 4) for k in ("loss_obs", "loss_reward", "loss_kl", "loss_cont",
                                                  "loss_overshooting", "kl")}
    golden = {"loss_obs": 0.4615, "loss_reward": 0.7231, "loss_kl": 0.3366, "loss_cont": 0.5976,
              "loss_overshooting": 0.1575, "kl": 0.3366}
    assert got == pytest.approx(golden, abs=2e-4)


def test_overshooting_kl_skips_distance_one_and_masks_episode_boundaries() -> None:
    model = PlanetWorldModel(micro(), VECTOR, BOX)
    batch = make_batch(VECTOR, BOX, b=2, t=6)
    post, _ = model.observe(batch)
    action = model.actions.encode(batch["action"])
    total, raw = overshooting_kl(model.rssm, post, action, batch["is_first"], distance=3, free_nats=0.0)
    assert total.dim() == 0 and total.requires_grad and float(raw.detach()) >= 0
    # every start step crosses the boundary at t=3 within 3 steps except j=0 (d=2) and j=3 (d=2, d=3)
    all_first = batch["is_first"].clone()
    all_first[:] = True
    total_masked, _ = overshooting_kl(model.rssm, post, action, all_first, distance=3, free_nats=0.0)
    assert float(total_masked.detach()) == 0.0


def test_decode_and_heads_shapes() -> None:
    model = PlanetWorldModel(micro(predict_termination=False), IMAGE, DISCRETE)
    state = model.rssm.initial(2)
    feat = model.rssm.features(state)
    img = model.decode(feat)
    assert img.shape == (2, 64, 64, 3) and img.dtype == torch.uint8
    assert model.reward(feat).shape == (2,) and model.cont_prob(feat) is None
    nxt, reward, cont = model.plan_step(state, torch.nn.functional.one_hot(torch.tensor([0, 2]), 3).float())
    assert set(nxt.keys()) == {"deter", "stoch"} and reward.shape == (2,) and cont is None


@pytest.mark.parametrize(
    ("obs_space", "act_space", "match"),
    [
        (gym.spaces.Box(0, 255, (32, 32, 3), np.uint8), DISCRETE, r"PlaNet cannot model observation space.*64x64x3"),
        (gym.spaces.Discrete(4), DISCRETE, r"PlaNet cannot model observation space Discrete\(4\)"),
        (VECTOR, gym.spaces.MultiDiscrete([2, 3]), r"PlaNet cannot act in action space MultiDiscrete"),
    ],
)
def test_unsupported_spaces_raise_typed_errors(obs_space: gym.Space, act_space: gym.Space, match: str) -> None:
    with pytest.raises(UnsupportedSpaceError, match=match):
        PlanetAgent(micro(), obs_space, act_space)
