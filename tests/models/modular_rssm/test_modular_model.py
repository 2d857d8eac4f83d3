"""Modular RSSM: config validation, gradients, golden values, checkpoints, policy, CLI and benchmark."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.models.modular_rssm.conftest import BOX, DISCRETE, IMAGE, VECTOR, make_batch, micro
from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.models.modular_rssm import (
    KLConfig,
    ModularRSSMConfig,
    ModularRSSMWorldModel,
    resolve_components,
    to_world_model,
)
from wmenv.registry import create_config, create_model, get_model_spec
from wmenv.train import load_model, save_checkpoint


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"backbone": "transformer", "deter": 16, "transformer.heads": 3},
         r"backbone='transformer': transformer.heads=3 must divide the token width deter=16; set transformer.heads "
         r"to one of \[1, 2, 4, 8, 16\]"),
        ({"vit.width": 10, "vit.heads": 4}, r"vit.heads: expected a divisor of vit.width=10"),
        ({"vit.patch": 12}, r"vit.patch: expected a divisor of the image size 64"),
        ({"backbone": "mamba"}, r"override backbone='mamba': expected one of \['gru', 'lstm', 'transformer'\]"),
        ({"classes": 1}, r"classes: expected 0 \(Gaussian\) or an int >= 2"),
    ],
)
def test_invalid_configs_raise_config_errors(overrides: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_config("modular-rssm", "tiny", overrides)


def test_heads_are_only_checked_for_the_transformer_backbone() -> None:
    cfg = create_config("modular-rssm", "tiny", {"deter": 15, "transformer.heads": 2})  # gru: fine
    assert cfg.backbone == "gru"
    with pytest.raises(ConfigError, match="transformer.heads=2 must divide"):
        cfg.replace(backbone="transformer")


@pytest.mark.parametrize(
    ("overrides", "space", "match"),
    [
        ({"encoder": "vit"}, VECTOR, r"encoder='vit' does not fit vector observations .* needs a pixel grid; set "
                                      r"encoder to one of \['mlp'\]"),
        ({"encoder": "conv"}, VECTOR, r"encoder='conv' does not fit vector observations"),
        ({"decoder": "conv"}, VECTOR, r"decoder='conv' does not fit vector observations .* set decoder='mlp'"),
        ({"encoder": "mlp"}, IMAGE, r"encoder='mlp' does not fit 64x64x3 image observations .* \['conv', 'vit'\]"),
        ({"decoder": "mlp"}, IMAGE, r"decoder='mlp' does not fit 64x64x3 image .* set decoder='conv'"),
        ({}, gym.spaces.Box(0, 255, (32, 32, 3), np.uint8), r"the Modular RSSM cannot model observation space"),
    ],
)
def test_components_that_do_not_fit_the_space_raise(overrides: dict, space: gym.Space, match: str) -> None:
    with pytest.raises(UnsupportedSpaceError, match=match):
        create_model("modular-rssm", observation_space=space, action_space=DISCRETE, preset="tiny", **overrides)


def test_auto_components_follow_the_space() -> None:
    cfg = ModularRSSMConfig.tiny()
    assert resolve_components(cfg, VECTOR) == ("mlp", "mlp")
    assert resolve_components(cfg, IMAGE) == ("conv", "conv")
    assert resolve_components(cfg.replace(encoder="vit"), IMAGE) == ("vit", "conv")


@pytest.mark.parametrize(
    ("backbone", "classes", "obs_space", "act_space", "encoder"),
    [("gru", 4, VECTOR, DISCRETE, "auto"), ("lstm", 0, VECTOR, BOX, "auto"),
     ("transformer", 4, VECTOR, BOX, "auto"), ("transformer", 0, IMAGE, DISCRETE, "vit")],
)
def test_every_parameter_gets_a_gradient(backbone: str, classes: int, obs_space: gym.Space, act_space: gym.Space,
                                         encoder: str) -> None:
    model = ModularRSSMWorldModel(micro(backbone=backbone, classes=classes, encoder=encoder), obs_space, act_space)
    out = model.loss(make_batch(obs_space, act_space, b=2, t=5))
    assert {"loss_obs", "loss_reward", "loss_cont", "loss_kl", "obs_nll", "reward_mae", "cont_acc", "kl"} == set(
        out.keys())
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert len(model.optim_groups()["model"]["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("backbone", "golden"),
    [
        ("gru", {"loss_obs": 0.6777, "loss_reward": 1.2322, "loss_cont": 0.6855, "loss_kl": 0.1855, "kl": 0.3091}),
        ("lstm", {"loss_obs": 0.5416, "loss_reward": 1.0421, "loss_cont": 0.7909, "loss_kl": 0.2491, "kl": 0.4152}),
        ("transformer",
         {"loss_obs": 0.8648, "loss_reward": 0.6314, "loss_cont": 0.7235, "loss_kl": 0.2473, "kl": 0.4122}),
    ],
)
def test_golden_loss_values_with_seeded_weights(backbone: str, golden: dict[str, float]) -> None:
    torch.manual_seed(123)
    model = ModularRSSMWorldModel(micro(backbone=backbone, kl=KLConfig(free_bits=0.0)), VECTOR, DISCRETE)
    torch.manual_seed(7)
    out = model.loss(make_batch(VECTOR, DISCRETE, b=2, t=4))
    assert {k: round(float(out[k].detach()), 4) for k in golden} == pytest.approx(golden, abs=2e-4)


def test_checkpoint_roundtrip_keeps_weights_and_imagination(tmp_path: Path) -> None:
    model = ModularRSSMWorldModel(micro(backbone="transformer", encoder="vit"), IMAGE, BOX)
    path = save_checkpoint(tmp_path / "m.pt", model_name="modular-rssm", family="modular-rssm", config=model.config,
                           model=model, observation_space=IMAGE, action_space=BOX)
    loaded, meta = load_model(path, expected_family="modular-rssm")
    assert meta["config_obj"] == model.config and loaded.encoder_kind == "vit"
    context = make_batch(IMAGE, BOX, b=2, t=3)
    outs = []
    for m in (model.eval(), loaded.eval()):
        wm = to_world_model(m, observation_mode="decoded")
        state = wm.initial_state(context, generator=torch.Generator().manual_seed(0))["state"]
        outs.append(wm.step(state, torch.zeros(2, 2), generator=torch.Generator().manual_seed(1))["observation"])
    assert torch.equal(outs[0], outs[1])


def test_policy_plans_in_a_real_env() -> None:
    env = gym.make("CartPole-v1")
    model = create_model("modular-rssm", env=env, config=micro(backbone="lstm")).eval()
    policy = model.make_policy(explore=False, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        action = policy(obs[None])
        assert action.shape == (1,) and env.action_space.contains(int(action[0]))
        obs, *_ = env.step(int(action[0]))
    assert set(policy.state.keys()) == {"deter", "stoch", "carry"}
    assert get_model_spec("modular-rssm").to_world_model is to_world_model


def test_wmenv_train_and_benchmark(tmp_path: Path) -> None:
    from wmenv.cli.benchmark import main as bench
    from wmenv.cli.train import main as train_cli

    run = tmp_path / "run"
    code = train_cli(["train", "modular-rssm", "--env", "CartPole-v1", "--steps", "3", "--seed-steps", "60",
                      "--batch-size", "2", "--seq-len", "6", "--run-dir", str(run), "--no-progress",
                      "backbone=transformer", "planner.candidates=8", "planner.top_k=2"])
    assert code == 0
    model, meta = load_model(run / "checkpoint.pt")
    assert meta["step"] == 3 and model.config.backbone == "transformer"
    code = bench(["-a", "modular-rssm", "-g", "CartPole-v1", "-c", str(run), "--seeds", "1", "-n", "1",
                  "--out-dir", str(tmp_path / "bench")])
    assert code == 0 and (tmp_path / "bench" / "benchmark_results.json").is_file()
