"""The staged loop end to end on a synthetic 10x10x4 binary-frame game, then the run through wmenv.open_run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import wmenv
from tests.models.diamond.falling_env import ENV_ID
from wmenv.core.errors import ConfigError
from wmenv.train import train
from wmenv.train.session import run_stage

FAST = {
    "schedule.seed_steps": 120, "schedule.epochs": 1, "schedule.collect_steps": 30,
    "schedule.first_world_model_steps": 8, "schedule.world_model_steps": 4,
    "schedule.first_actor_critic_steps": 4, "schedule.actor_critic_steps": 2, "actor_critic.horizon": 2,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("diamond") / "run"
    return train("diamond", ENV_ID, stage="all", preset="tiny", overrides=FAST, run_dir=path, progress=False, seed=0)


def test_staged_run_writes_a_run_that_opens_on_every_face(run_dir):
    run = wmenv.open_run(run_dir)
    assert run.info.model == "diamond" and run.info.env_id == ENV_ID and run.horizon() == 40
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["extra"]["user_state"]
    assert state["done"] == [f"{s}@{e}" for e in (0, 1) for s in ("collect", "world_model", "actor_critic")]
    assert state["env_steps"] >= 150
    env = run.make_env("sb3", num_envs=4, seed=0)
    obs = env.reset()
    assert obs.shape == (4, 10, 10, 4) and obs.dtype == np.uint8
    for _ in range(6):
        obs, reward, done, infos = env.step(np.array([env.action_space.sample() for _ in range(4)]))
        assert obs.shape == (4, 10, 10, 4) and set(np.unique(obs).tolist()) <= {0, 1}
        assert reward.shape == (4,) and set(np.unique(reward).tolist()) <= {-1.0, 0.0, 1.0}
    env.close()
    actions = run.policy(seed=0)(obs)
    assert actions.shape == (4,) and set(actions.tolist()) <= {0, 1, 2}
    assert json.loads((run_dir / "run.json").read_text())["model"] == "diamond"


def test_stages_one_at_a_time_resume_from_the_checkpoint(tmp_path):
    path = tmp_path / "run"
    kw = {"preset": "tiny", "overrides": {**FAST, "schedule.epochs": 0}, "progress": False}
    with pytest.raises(ConfigError, match="next stage"):
        run_stage("dit", "world_model", ENV_ID, run_dir=path, **kw)  # nothing collected yet
    out = run_stage("dit", "collect", ENV_ID, run_dir=path, **kw)
    assert out["trained_stages"] == ["collect@0"] and out["env_steps"] >= 120
    with pytest.raises(ConfigError, match="next stage"):
        run_stage("dit", "actor_critic", None, resume=path, progress=False)
    assert run_stage("dit", "world_model", None, resume=path, progress=False)["trained_stages"][-1] == "world_model@0"
    out = run_stage("dit", "all", None, resume=path, progress=False)
    assert out["trained_stages"] == ["collect@0", "world_model@0", "actor_critic@0"]
    with pytest.raises(ConfigError, match="fix the architecture"):
        run_stage("dit", "all", None, resume=path, progress=False, overrides={"dit.depth": 3})
    with pytest.raises(ConfigError, match="not 'diamond'"):
        run_stage("diamond", "all", None, resume=path, progress=False)
    out = run_stage("dit", "all", None, resume=path, progress=False, overrides={"schedule.epochs": 1})
    assert out["trained_stages"][-3:] == ["collect@1", "world_model@1", "actor_critic@1"]
    assert wmenv.open_run(path).config.schedule.epochs == 1


@pytest.mark.slow
def test_tiny_preset_on_minatar_breakout(tmp_path):
    """The whole tiny schedule on MinAtar Breakout (when the minatar backend is installed)."""
    try:
        wmenv.make_env("MinAtar/Breakout-v1").close()
    except Exception as err:  # noqa: BLE001 - backend missing: nothing to test here
        pytest.skip(f"MinAtar/Breakout-v1 unavailable: {err}")
    path = train("diamond", "MinAtar/Breakout-v1", stage="all", preset="tiny", run_dir=tmp_path / "run",
                 progress=False)
    env = wmenv.open_run(path).make_env("sb3", num_envs=4)
    obs = env.reset()
    for _ in range(5):
        obs, _, _, _ = env.step(np.array([env.action_space.sample() for _ in range(4)]))
    assert obs.shape == (4, 10, 10, 4)


def test_benchmark_agent_evaluates_a_run_and_trains_with_the_staged_loop(run_dir, tmp_path):
    from wmenv.benchmarks.adapters import get_agent
    from wmenv.core.errors import CheckpointError
    from wmenv.models.diamond import DiamondBenchmarkAgent, DiamondConfig
    from wmenv.models.diamond.benchmark import schedule_overrides

    agent = get_agent("diamond", env_id=ENV_ID)
    assert isinstance(agent, DiamondBenchmarkAgent) and agent.name == "diamond" and agent.requires_checkpoint
    with pytest.raises(CheckpointError):
        agent.evaluate(1)
    agent.load_checkpoint(run_dir)
    result = agent.evaluate(2, seed=0)
    assert len(result["episode_returns"]) == 2 and all(n <= 40 for n in result["episode_lengths"])
    assert schedule_overrides(DiamondConfig.minatar(), 100_000, None) == {"schedule.seed_steps": 5000,
                                                                         "schedule.epochs": 950}
    assert agent.default_preset() == "minatar"
    agent.close()
    dit = get_agent("dit", env_id=ENV_ID, preset="tiny")
    assert type(dit).name == "dit"
    with pytest.raises(CheckpointError):
        dit.load_checkpoint(tmp_path / "nothing")


def test_benchmark_agent_train_runs_the_staged_loop(tmp_path):
    from wmenv.benchmarks.adapters import get_agent

    agent = get_agent("ddpm", env_id=ENV_ID, preset="tiny")
    agent.train(steps=150, seed=1, log_dir=str(tmp_path / "train_seed1"))
    state = torch.load(tmp_path / "train_seed1" / "checkpoint.pt", weights_only=True)["extra"]["user_state"]
    assert state["done"] == ["collect@0", "world_model@0", "actor_critic@0"] and state["env_steps"] >= 150
    assert len(agent.evaluate(1, seed=0)["episode_returns"]) == 1
    agent.close()
