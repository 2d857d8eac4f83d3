"""``wmenv demo`` end to end on a tiny budget: every artifact written, budget respected, bad configs named."""

from __future__ import annotations

import json

import pytest

from wmenv.cli import main
from wmenv.demo import run_demo
from wmenv.demo.config import demo_config_for

TINY = dict(
    real_step_budget=700, seed_steps=400, collect_steps=300, rounds=2, wm_updates_first=20, wm_updates=10,
    batch_size=4, seq_len=16, policy_steps=256, num_envs=4, horizon=24, eval_episodes=2,
    algo_kwargs={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
)


def test_demo_runs_the_whole_loop_within_its_budget(tmp_path):
    config = demo_config_for("CartPole-v1").with_overrides(TINY)
    summary = run_demo(config, seed=0, out_root=tmp_path, progress=False)
    (run,) = tmp_path.iterdir()
    assert summary["real_env_steps_used"] <= 700
    assert len(summary["rounds"]) >= 1 and summary["eval_episodes"] == 2
    assert summary["real_env_return_mean"] > 0
    assert json.loads((run / "summary.json").read_text())["seed"] == 0
    for name in ("checkpoint.pt", "policy.zip", "report.md", "returns.png", "world_model_losses.png"):
        assert (run / name).is_file(), name
    assert list((run / "benchmark").glob("benchmark_results.*"))


def test_demo_with_too_few_seed_steps_for_one_episode_is_a_usage_error(tmp_path, capsys):
    # Pendulum episodes last 200 steps; 100 seed steps finish none, so nothing would reach the replay
    code = main(["demo", "--env", "Pendulum-v1", "--out", str(tmp_path), "--no-progress",
                 "seed_steps=100", "real_step_budget=300"])
    assert code == 2
    assert "did not finish one episode of Pendulum-v1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no half-made run directory left behind


def test_demo_rejects_bad_overrides():
    from wmenv.core.errors import ConfigError

    with pytest.raises(ConfigError, match="seed_steps"):
        demo_config_for("CartPole-v1").with_overrides({"seed_steps": 10_000})


def test_rounds_are_judged_by_the_episodes_their_policy_played_from_the_start():
    from wmenv.demo import _pick_round

    rounds = [
        {"round": 0, "real_return": 200.0, "own_return": 200.0},
        # its 363 was an episode begun under round 0's policy: only the 146 it played itself counts
        {"round": 1, "real_return": 218.0, "own_return": 146.0},
        {"round": 2, "real_return": None, "own_return": None},
    ]
    assert _pick_round(rounds) == 0
    rounds.append({"round": 3, "real_return": 150.0, "own_return": 200.0})
    assert _pick_round(rounds) == 3  # later rounds win ties


def test_collector_reports_episodes_in_progress():
    from wmenv.train import Collector, make_replay

    collector = Collector("CartPole-v1", make_replay(1000, None, seed=0), seed=0, progress=False,
                          env_kwargs={"max_episode_steps": 5})
    try:
        assert not collector.episodes_in_progress.any()
        collector.collect(3)
        assert collector.episodes_in_progress.all()
        collector.collect(2)  # the episode's 5th and last step: the next collect starts a new one
        assert not collector.episodes_in_progress.any()
        collector.collect(1)
        assert collector.episodes_in_progress.all()
    finally:
        collector.close()
