"""RegistryAgent: one benchmark agent per registered model that can act (lazily registered)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wmenv.benchmarks import adapters
from wmenv.benchmarks.families import RegistryAgent, acting_models
from wmenv.cli import main
from wmenv.core.errors import CheckpointError, ConfigError
from wmenv.registry import get_model_spec


def tiny_agent(**kwargs: object) -> RegistryAgent:
    return RegistryAgent("dreamer", "CartPole-v1", preset="tiny", updates_per_epoch=2, env_steps_per_epoch=30,
                         seed_steps=120, **kwargs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> RegistryAgent:
    """A tiny Dreamer trained through RegistryAgent.train: 120 seed steps, 2 epochs of 2 updates."""
    torch.set_num_threads(1)
    agent = tiny_agent()
    agent.train(epochs=2, seed=0, log_dir=str(tmp_path_factory.mktemp("families") / "run"))
    yield agent
    agent.close()


def test_acting_models_are_registered_lazily() -> None:
    assert get_model_spec("dreamer").can_act and not get_model_spec("dreamer-wm").can_act
    expected = {"dreamer", "dreamerv1", "dreamerv2", "dreamerv3"}
    assert expected <= set(acting_models()) and "dreamer-wm" not in acting_models()
    names = adapters.list_agents()
    assert expected <= set(names) and "dreamer-wm" not in names
    assert adapters.resolve_agent_name("dreamer-v2") == "dreamerv2"
    agent = adapters.get_agent("dreamerv1", env_id="CartPole-v1")
    assert isinstance(agent, RegistryAgent) and agent.name == "dreamerv1" and agent.family == "dreamer"


def test_train_then_evaluate(trained: RegistryAgent) -> None:
    assert trained.run_dir is not None and (trained.run_dir / "checkpoint.pt").is_file()
    assert trained.meta["step"] == 4 and trained.meta["model_name"] == "dreamer"
    assert trained.meta["extra"]["user_state"]["env_steps"] == 150  # 120 seed + one 30-step phase
    res = trained.evaluate(2, seed=5)
    assert len(res["episode_returns"]) == 2 and all(r >= 1 for r in res["episode_returns"])
    assert trained.evaluate(2, seed=5) == res  # greedy policy, seeded resets


def test_schedule_budgets() -> None:
    agent = tiny_agent()
    assert agent._schedule(None, 3) == (6, 120, 2, 30)
    assert agent._schedule(200, None) == (8, 120, 2, 27)  # 80 steps in 3 phases of <= 30
    assert agent._schedule(100, None) == (2, 100, 2, 0)
    with pytest.raises(ConfigError, match="exactly one of steps= or epochs="):
        agent._schedule(10, 1)


def test_benchmark_cli_with_dreamer_checkpoint(trained: RegistryAgent, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    argv = ["benchmark", "-a", "dreamer", "-g", "CartPole-v1", "-c", str(trained.run_dir / "checkpoint.pt"),
            "--seeds", "2", "-n", "2", "--device", "cpu", "--no-progress", "--out-dir", str(out)]
    assert main(argv) == 0
    for name in ("benchmark_results.json", "benchmark_results.csv", "benchmark_results.md", "per_seed_returns.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "benchmark_results.json").read_text())
    assert res["agent"] == "dreamer" and len(res["aggregate"]["per_seed_means"]) == 2


def test_checkpoint_of_another_family_is_refused(
    trained: RegistryAgent, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = torch.load(trained.run_dir / "checkpoint.pt", weights_only=True)
    data["family"] = "world-models"
    foreign = tmp_path / "foreign.pt"
    torch.save(data, foreign)
    with pytest.raises(CheckpointError, match="of family 'world-models', expected 'dreamer'"):
        tiny_agent().load_checkpoint(foreign)
    argv = ["benchmark", "-a", "dreamerv3", "-g", "CartPole-v1", "-c", str(foreign), "--seeds", "1", "-n", "1",
            "--no-progress", "--out-dir", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "expected 'dreamer'" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="has no weights"):
        tiny_agent().evaluate(1)


def test_sb3_agent_sees_the_real_env_through_the_model(trained: RegistryAgent) -> None:
    from stable_baselines3 import PPO

    from wmenv.runs import make_imagination_env

    ckpt = trained.run_dir / "checkpoint.pt"
    env = make_imagination_env(ckpt, observation_mode="latent", max_episode_steps=20)
    policy = PPO("MlpPolicy", env, n_steps=32, batch_size=32, device="cpu", seed=0)
    path = trained.run_dir / "ppo_latent.zip"
    policy.save(path)
    agent = adapters.get_agent("sb3", env_id="CartPole-v1", world_model=str(ckpt))
    agent.load_checkpoint(path)
    assert len(agent.evaluate(1, seed=0)["episode_returns"]) == 1
