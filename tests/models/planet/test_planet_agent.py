"""PlaNet in the real env: MPC policy, collection, checkpoints, `wmenv train`, `wmenv benchmark`."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.models.planet.conftest import BOX, VECTOR, micro
from wmenv.core.errors import CheckpointError, ConfigError
from wmenv.models.planet import CEMConfig, PlanetAgent, PlanetConfig
from wmenv.registry import create_config, create_model
from wmenv.train import collect, load_model, save_checkpoint


def test_presets_and_overrides() -> None:
    paper = PlanetConfig.paper()
    assert (paper.rssm.deter, paper.rssm.stoch, paper.free_nats) == (200, 30, 3.0)
    assert (paper.planner.horizon, paper.planner.candidates, paper.planner.iterations, paper.planner.top_k) == (
        12, 1000, 8, 100)
    small = PlanetConfig.small()
    assert small.planner == CEMConfig() and small.collect_planner.candidates == 500 and small.obs_scale == 100
    cfg = create_config("planet", "tiny", {"rssm.deter": "24", "planner.candidates": 50, "overshooting": 4})
    assert cfg.rssm.deter == 24 and cfg.planner.candidates == 50 and cfg.overshooting == 4
    with pytest.raises(ConfigError, match=r"overshooting: expected 0 \(off\) or a distance >= 2"):
        create_config("planet", "tiny", {"overshooting": 1})
    with pytest.raises(ConfigError, match=r"planner.top_k=100 exceeds planner.candidates=10"):
        create_config("planet", "paper", {"planner.candidates": 10})
    with pytest.raises(ConfigError, match=r"rssm.deter: expected an int >= 1"):
        PlanetConfig.tiny().override({"rssm.deter": 0})


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_policy_plans_in_the_real_env_with_partial_resets(env_id: str) -> None:
    env = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync")
    agent = create_model("planet", env=gym.make(env_id), config=micro()).eval()
    policy = agent.make_policy(explore=False, seed=0)
    obs, _ = env.reset(seed=0)
    policy.reset(np.array([True, True]))
    for t in range(4):
        action = policy(obs)
        assert action in env.action_space
        if t == 1:
            policy.reset(np.array([False, True]))  # member 1 starts a new episode
        obs, *_ = env.step(action)
    assert policy.state.batch_size == torch.Size([2]) and policy.last_plan["plan"].shape[:2] == (2, 3)
    # collection plans with config.collect_planner, evaluation with config.planner
    assert agent.make_policy(explore=True).planner.config == agent.config.collect_planner
    assert policy.planner.config == agent.config.planner
    # evaluation (explore=False) is deterministic given the seed
    again = agent.make_policy(explore=False, seed=0)
    first = agent.make_policy(explore=False, seed=0)
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(first(obs), again(obs))
    env.close()


def test_collect_with_the_planner_writes_rows() -> None:
    agent = create_model("planet", env=gym.make("Pendulum-v1"), config=micro()).eval()
    replay, stats = collect("Pendulum-v1", 30, policy=agent.make_policy(explore=True, seed=0), progress=False)
    assert stats.steps >= 30 and len(replay) >= 31


def test_checkpoint_roundtrip(tmp_path: Path) -> None:
    agent = PlanetAgent(micro(overshooting=2), VECTOR, BOX)
    path = save_checkpoint(tmp_path / "planet.pt", model_name="planet", family="planet", config=agent.config,
                           model=agent, step=3, observation_space=VECTOR, action_space=BOX)
    loaded, meta = load_model(path, expected_family="planet")
    assert isinstance(loaded, PlanetAgent) and meta["config_obj"] == agent.config and meta["step"] == 3
    for (k, a), (k2, b) in zip(agent.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    obs = np.zeros((1, 3), np.float32)
    a1 = agent.eval().make_policy(explore=False, seed=1)(obs)
    a2 = loaded.make_policy(explore=False, seed=1)(obs)
    np.testing.assert_array_equal(a1, a2)
    with pytest.raises(CheckpointError, match="is of family 'planet', expected 'dreamer'"):
        load_model(path, expected_family="dreamer")


def test_wmenv_train_collects_with_the_planner(tmp_path: Path) -> None:
    from wmenv.cli.train import main

    run = tmp_path / "run"
    code = main(["train", "planet", "--env", "Pendulum-v1", "--preset", "tiny", "--steps", "4", "--seed-steps",
                 "40", "--collect-every", "2", "--collect-steps", "10", "--batch-size", "2", "--seq-len", "8",
                 "--run-dir", str(run), "--no-progress", "rssm.deter=16", "planner.candidates=16",
                 "planner.top_k=4"])
    assert code == 0
    model, meta = load_model(run / "checkpoint.pt")
    assert meta["step"] == 4 and meta["extra"]["user_state"]["env_steps"] >= 50
    assert model.config.planner == CEMConfig(horizon=4, candidates=16, iterations=2, top_k=4)


def test_wmenv_benchmark_evaluates_a_planet_checkpoint(tmp_path: Path) -> None:
    from wmenv.cli.benchmark import main as bench

    agent = create_model("planet", env=gym.make("Pendulum-v1"), config=micro())
    ckpt = save_checkpoint(tmp_path / "planet.pt", model_name="planet", family="planet", config=agent.config,
                           model=agent, observation_space=gym.make("Pendulum-v1").observation_space,
                           action_space=gym.make("Pendulum-v1").action_space)
    code = bench(["-a", "planet", "-g", "Pendulum-v1", "-c", str(ckpt), "--seeds", "1", "-n", "1",
                  "--out-dir", str(tmp_path / "bench")])
    assert code == 0
    assert (tmp_path / "bench" / "benchmark_results.json").is_file()
