"""IRIS end to end: the staged loop on a synthetic pixel game, resume, open_run faces, the joint loop, MinAtar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wmenv
from tests.models.iris.pixel_env import ENV_ID
from wmenv.core.errors import ConfigError
from wmenv.models.iris import StageOrderError
from wmenv.models.iris.train import main, run_stages
from wmenv.train import Schedule, train

FAST = {"schedule.seed_steps": "120", "schedule.collect_steps": "30"}


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A tiny staged run of two epochs on the synthetic game: ``(run_dir, result)``."""
    run_dir = tmp_path_factory.mktemp("iris") / "run"
    torch.manual_seed(0)
    return run_dir, run_stages("all", run_dir, env_id=ENV_ID, preset="tiny", overrides=FAST, progress=False)


def test_staged_run_trains_every_stage_every_epoch(staged):
    run_dir, out = staged
    assert out["trained_stages"] == ["tokenizer", "world_model", "actor_critic"]
    assert out["env_steps"] >= 150 and set(out["returns"]) == {"0", "1"}
    assert out["updates"] == 2 * (8 + 8 + 4)
    run = wmenv.open_run(run_dir)
    assert run.model().mode == "joint" and run.horizon() == 100
    assert run.info.model == "iris" and run.info.env_id == ENV_ID


def test_open_run_sb3_face_steps(staged):
    env = wmenv.open_run(staged[0]).make_env("sb3", num_envs=4)
    obs = env.reset()
    assert obs.shape == (4, 10, 10, 4) and obs.dtype == np.uint8
    for _ in range(12):  # crosses window refreshes
        obs, reward, done, info = env.step(np.array([env.action_space.sample() for _ in range(4)]))
        assert obs.shape == (4, 10, 10, 4) and reward.shape == (4,) and bool(np.isin(obs, (0, 1)).all())


def test_latent_face_and_policy_in_the_real_env(staged):
    run = wmenv.open_run(staged[0])
    latent = run.make_env("vector", num_envs=2, observation_mode="latent")
    assert latent.reset(seed=0)[0].shape == (2, 4 * 8)
    policy, real = run.policy(), run.real_env()
    frame, _ = real.reset(seed=0)
    assert real.action_space.contains(int(policy(frame[None])[0]))


def test_finished_run_resumes_as_a_no_op_and_refuses_changes(staged):
    run_dir, out = staged
    again = run_stages("all", run_dir, progress=False)
    assert again["updates"] == out["updates"] and again["env_steps"] == out["env_steps"]
    with pytest.raises(ConfigError, match="fix the architecture"):
        run_stages("all", run_dir, overrides={"world_model.layers": "2"}, progress=False)
    with pytest.raises(ConfigError, match="not 'CartPole-v1'"):
        run_stages("all", run_dir, env_id="CartPole-v1", progress=False)


def test_stage_by_stage_resumes_and_extends(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(StageOrderError, match="tokenizer"):
        run_stages("world_model", run_dir, env_id=ENV_ID, preset="tiny", progress=False)
    out = run_stages("tokenizer", run_dir, env_id=ENV_ID, preset="tiny", overrides=FAST, progress=False)
    assert out["trained_stages"] == ["tokenizer"] and out["updates"] == 8 and out["env_steps"] >= 150
    with pytest.raises(StageOrderError, match="needs a trained 'world_model' first"):
        run_stages("actor_critic", run_dir, progress=False)
    out = run_stages("world_model", run_dir, overrides={"schedule.world_model_steps": "3"}, progress=False)
    assert out["trained_stages"] == ["tokenizer", "world_model"] and out["updates"] == 11
    assert main(["--run-dir", str(tmp_path / "new"), "--stage", "actor_critic", "--env", ENV_ID]) == 2


def test_joint_training_through_the_generic_loop(tmp_path):
    run_dir = train("iris", ENV_ID, steps=4, preset="tiny", run_dir=tmp_path / "joint", progress=False,
                    schedule=Schedule(seed_steps=120, collect_every=2, collect_steps=20))
    run = wmenv.open_run(run_dir)
    assert run.model().trained_stages == ("tokenizer", "world_model", "actor_critic")
    obs, _ = run.make_env("gymnasium").reset(seed=1)
    assert obs.shape == (10, 10, 4)


def test_minatar_breakout(tmp_path):
    torch.manual_seed(0)
    out = run_stages("all", tmp_path / "breakout", env_id="MinAtar/Breakout-v1", preset="tiny",
                     overrides={**FAST, "schedule.epochs": "1"}, progress=False)
    assert out["trained_stages"] == ["tokenizer", "world_model", "actor_critic"]
    env = wmenv.open_run(tmp_path / "breakout").make_env("sb3", num_envs=4, max_episode_steps=20)
    obs = env.reset()
    assert obs.shape == (4, 10, 10, 4)
    obs, *_ = env.step(np.zeros(4, dtype=np.int64))
    assert obs.shape == (4, 10, 10, 4)
