"""The IRIS module: registration, config, loss contract in every mode, stage order, checkpoints, action spaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import wmenv
from tests.models.iris.conftest import BINARY, BOX, DISCRETE, catch_rows, tiny_model, windows
from wmenv.core.contracts import ActingModel, TrainableModel
from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.models.iris import IRIS, IRISConfig, StageOrderError
from wmenv.registry import create_model, get_model_spec, list_models
from wmenv.testing import random_replay_batch, train_on_batch


def test_registered_with_stages_policy_and_presets():
    assert "iris" in list_models()
    spec = get_model_spec("IRIS")
    assert (spec.name, spec.family, spec.observations) == ("iris", "iris", ("image",))
    assert spec.stages == ("collect", "tokenizer", "world_model", "actor_critic") and spec.run_stages is not None
    assert spec.can_act and spec.can_imagine and spec.policy is wmenv.registry.make_policy
    assert {"tiny", "minatar", "atari100k"} <= set(spec.presets)
    assert spec.trainer_overrides("tiny")["seq_len"] == IRISConfig.tiny().world_model.context_steps


def test_presets_follow_the_paper_and_minatar_sizes():
    paper = IRISConfig.atari100k()
    assert (paper.tokenizer.tokens_per_frame, paper.tokenizer.vocab_size, paper.world_model.embed,
            paper.world_model.layers, paper.world_model.context_steps) == (16, 512, 256, 10, 20)
    assert paper.max_tokens == 340 and paper.actor_critic.horizon == 20
    mini = IRISConfig.minatar()
    assert 4 <= mini.tokenizer.tokens_per_frame <= 16 and mini.tokenizer.vocab_size <= 256
    s = mini.schedule
    assert s.seed_steps + s.collect_steps * min(s.collect_epochs, s.epochs) == 100_000
    model = IRIS(mini, BINARY, DISCRETE)  # builds for 10x10 frames
    assert model.tokenizer.side == 16 and model.tokenizer.tokens == 16


@pytest.mark.parametrize(
    "override",
    [{"tokenizer.tokens_per_frame": "5"}, {"tokenizer.vocab_size": "1"}, {"world_model.heads": "3"},
     {"world_model.burn_in": "5"}, {"world_model.context_steps": "1"}, {"actor_critic.gamma": "1.5"},
     {"actor_critic.channels": "()"}, {"schedule.world_model_start": "0", "schedule.tokenizer_start": "1"},
     {"tokenizer.recon_loss": "huber"}, {"tokenizer.ema_decay": "1.0"}],
)
def test_config_rejects_bad_values(override):
    with pytest.raises(ConfigError):
        wmenv.create_config("iris", "tiny", override)


def test_config_overrides():
    config = wmenv.create_config("iris", "tiny", {"tokenizer.vocab_size": "32", "actor_critic.channels": "4,4,4"})
    assert config.tokenizer.vocab_size == 32 and config.actor_critic.channels == (4, 4, 4)


def test_unsupported_action_space():
    with pytest.raises(UnsupportedSpaceError):
        create_model("iris", observation_space=BINARY, action_space=gym.spaces.MultiDiscrete([2, 2]), preset="tiny")


def test_contracts_and_loss_in_every_mode():
    model = tiny_model()
    assert isinstance(model, TrainableModel) and isinstance(model, ActingModel)
    batch = windows(catch_rows(2), 4)[:4]
    keys = {
        "tokenizer": {"loss_recon", "loss_commit"},
        "world_model": {"loss_obs_tokens", "loss_reward", "loss_end"},
        "actor_critic": {"loss_policy", "loss_entropy", "loss_value"},
    }
    out = model.loss(batch)  # joint: everything
    assert model.mode == "joint"
    assert {k for k in out.keys() if k.startswith("loss_")} == set().union(*keys.values())
    assert all(torch.isfinite(v).all() for v in out.values(True, True))
    assert ("world_model", "token_acc") in out.keys(True, True)
    model.after_update(0)
    assert model.trained_stages == ("tokenizer", "world_model", "actor_critic")
    for mode, expected in keys.items():
        model.set_mode(mode)
        assert {k for k in model.loss(batch).keys() if k.startswith("loss_")} == expected
    assert set(model.optim_groups()) == {"tokenizer", "world_model", "actor_critic"}


def test_stage_order():
    model = tiny_model()
    with pytest.raises(StageOrderError, match="needs a trained 'tokenizer' first"):
        model.set_mode("world_model")
    model.set_mode("tokenizer")
    model.after_update(0)
    model.set_mode("world_model")
    with pytest.raises(StageOrderError, match="needs a trained 'world_model' first"):
        model.set_mode("actor_critic")
    with pytest.raises(ConfigError, match="unknown mode"):
        model.set_mode("policy")


def test_world_model_loss_masks_later_episodes_and_learns():
    model = tiny_model()
    batch = random_replay_batch(BINARY, DISCRETE, b=3, t=4)  # is_first at steps 0 and 2
    batch["observation"] = (batch["observation"] > 128).to(torch.uint8)
    model.set_mode("tokenizer")
    model.after_update(0)
    model.set_mode("world_model")
    model.eval()
    base = model.loss(batch)
    changed = batch.clone()
    changed["reward"][:, 2:] += 5.0  # targets of the second episode: masked
    changed["terminated"][:, 2:] = True
    changed["observation"][:, 2:] = 1 - changed["observation"][:, 2:]
    for key in ("loss_obs_tokens", "loss_reward", "loss_end"):
        assert torch.allclose(model.loss(changed)[key], base[key]), key
    moved = batch.clone()
    moved["reward"][:, 1] = -1.0  # a target of the first episode
    assert not torch.allclose(model.loss(moved)["loss_reward"], base["loss_reward"])
    model.train()
    real = windows(catch_rows(3), 4)
    losses = train_on_batch(model, real, 60)
    assert losses[-1] < 0.5 * losses[0]


def test_state_dict_round_trip_keeps_mode_and_stages():
    model = tiny_model()
    batch = windows(catch_rows(2), 4)[:4]
    model.set_mode("tokenizer")
    model.train()
    model.loss(batch)  # moves the codebook (EMA buffers)
    model.after_update(0)
    clone = tiny_model(seed=5)
    clone.load_state_dict(model.state_dict())
    assert clone.mode == "tokenizer" and clone.trained_stages == ("tokenizer",)
    assert torch.equal(clone.tokenizer.quantizer.codebook, model.tokenizer.quantizer.codebook)
    model.eval(), clone.eval()
    assert torch.equal(clone.tokenizer.tokenize(batch["observation"]), model.tokenizer.tokenize(batch["observation"]))


def test_continuous_actions():
    model = tiny_model(act_space=BOX)
    batch = random_replay_batch(BINARY, BOX, b=2, t=4)
    out = model.loss(batch)
    assert torch.isfinite(out["loss_policy"]) and torch.isfinite(out["loss_obs_tokens"])
    policy = model.eval().make_policy(explore=True, seed=0)
    actions = policy(np.zeros((3, 10, 10, 4), np.uint8))
    assert actions.shape == (3, 2) and actions.dtype == np.float32
    assert bool((actions >= BOX.low).all() and (actions <= BOX.high).all())


def test_policy_is_recurrent_and_seeded():
    model = tiny_model().eval()
    with torch.no_grad():  # a policy that depends on its input
        model.actor_critic.policy_head.weight.normal_(0, 1.0)
    obs = catch_rows(1)["observation"][:8].numpy()
    runs = []
    for _ in range(2):
        policy = model.make_policy(explore=True, seed=3)
        runs.append(np.stack([policy(obs[i : i + 2]) for i in range(0, 8, 2)]))
    assert np.array_equal(runs[0], runs[1]) and runs[0].dtype == np.int64
    greedy = model.make_policy(explore=False)
    first = greedy(obs[:2])
    greedy(obs[2:4])
    greedy.reset(np.array([True, False]))
    assert greedy.hidden[0][0].abs().sum() == 0 and greedy.hidden[0][1].abs().sum() > 0
    greedy.reset()
    assert np.array_equal(greedy(obs[:2]), first)
