"""MinAtar 100k suite: protocol, normalisation, reference rows, ppo-real budgets, the suite end to end.

Nothing here asserts a learning result: the runs are a few hundred steps long.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wmenv.benchmarks import minatar_100k as M
from wmenv.benchmarks.model_free import MINATAR_PPO, PPORealAgent, rollout_plan
from wmenv.cli.benchmark import main as benchmark_main
from wmenv.core.errors import ConfigError, UnknownNameError

REPORT_FILES = ("benchmark_results.json", "benchmark_results.csv", "benchmark_results.md",
                "benchmark_results.tex", "per_seed_returns.png")


def test_protocol_constants() -> None:
    assert M.PROTOCOL["games"] == ["Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders"]
    assert M.PROTOCOL["agent_steps"] == 100_000 and M.PROTOCOL["frameskip"] == 1
    assert (M.PROTOCOL["eval_episodes"], M.PROTOCOL["seeds"]) == (100, 5)
    assert M.ENV_KWARGS == {"sticky_action_prob": 0.1, "difficulty_ramping": True, "max_episode_steps": 10_000}
    assert M.env_id("space_invaders") == "MinAtar/SpaceInvaders-v1"
    for name in ("breakout", "Breakout", "MinAtar/Breakout-v1", "minatar-breakout"):
        assert M.canonical_game(name) == "Breakout"
    with pytest.raises(UnknownNameError, match="did you mean 'Breakout'"):
        M.canonical_game("Breakot")


def test_rollout_plan() -> None:
    assert rollout_plan(100_000, None, 8, 125) == (125, 100)  # the suite budget: exactly 100 rollouts
    assert rollout_plan(1_000_000, None, 8, 125) == (125, 1000)
    assert rollout_plan(150_999, None, 8, 125) == (125, 150)  # rounded down, never above the budget
    assert rollout_plan(500, None, 8, 125) == (62, 1)  # below one rollout: shorter rollouts
    assert rollout_plan(None, 3, 8, 125) == (125, 3)
    for steps, epochs in ((None, None), (10, 1), (7, None), (None, 0)):
        with pytest.raises(ConfigError):
            rollout_plan(steps, epochs, 8, 125)
    assert MINATAR_PPO["n_envs"] * MINATAR_PPO["n_steps"] == 1000


@pytest.fixture
def refs(tmp_path: Path) -> Path:
    """Reference files with round numbers: Breakout from 2 (random) to 12, Freeway from 0 to 50."""
    (tmp_path / "RANDOM.json").write_text(json.dumps({"Breakout": [1.0, 3.0], "Freeway": [0.0]}))
    (tmp_path / "PPO_REAL_1M.json").write_text(json.dumps({"breakout": [12.0], "MinAtar/Freeway-v1": [50.0]}))
    return tmp_path


def test_normalisation_math(refs: Path) -> None:
    low = {"Breakout": 2.0, "Freeway": 0.0}
    high = {"Breakout": 12.0, "Freeway": 50.0}
    assert M.normalized(7.0, "breakout", low, high) == 0.5
    np.testing.assert_allclose(M.normalized([2.0, 17.0], "Breakout", low, high), [0.0, 1.5])
    raw = {"Breakout": [2.0, 12.0], "Freeway": [25.0, 0.0], "Seaquest": [1.0, 1.0]}
    matrix, games, missing = M.normalized_matrix(raw, refs)
    assert games == ["Breakout", "Freeway"] and missing == ["Seaquest"]
    np.testing.assert_allclose(matrix, [[0.0, 0.5], [1.0, 0.0]])
    agg = M.aggregate_scores(raw, refs, reps=200)
    # per-game means 0.5 and 0.25; pooled [0, 0.5, 1, 0] -> IQM drops one value at each end
    assert agg["mean"] == pytest.approx(0.375) and agg["median"] == pytest.approx(0.375)
    assert agg["iqm"] == pytest.approx(0.25)
    assert agg["optimality_gap"] == pytest.approx(1 - 0.375)
    assert agg["per_game_normalized"] == {"Breakout": 0.5, "Freeway": 0.25}
    assert agg["unnormalised_games"] == ["Seaquest"] and agg["num_runs"] == 2 and agg["num_tasks"] == 2
    lo, hi = agg["iqm_ci"]
    assert lo <= agg["iqm"] <= hi


def test_normalisation_errors(refs: Path) -> None:
    with pytest.raises(ConfigError, match="no RANDOM / PPO_REAL_1M reference score for Seaquest"):
        M.normalized(1.0, "Seaquest", {"Breakout": 0.0}, {"Breakout": 1.0})
    with pytest.raises(ConfigError, match="equal"):
        M.normalized(1.0, "Breakout", {"Breakout": 1.0}, {"Breakout": 1.0})
    with pytest.raises(ConfigError, match="same number of runs"):
        M.normalized_matrix({"Breakout": [1.0], "Freeway": [1.0, 2.0]}, refs)
    with pytest.raises(ConfigError, match="no reference scores"):
        M.normalized_matrix({"Asterix": [1.0]}, refs)
    (refs / "RANDOM.json").write_text(json.dumps({"Breakout": []}))
    with pytest.raises(ConfigError, match="non-empty list of finite scores"):
        M.load_reference("RANDOM", refs)
    with pytest.raises(ConfigError, match="cannot read reference scores"):
        M.load_reference("MISSING", refs)


def test_packaged_reference_rows(capsys: pytest.CaptureFixture[str]) -> None:
    random = M.load_reference("RANDOM")
    assert sorted(random) == M.PROTOCOL["games"]
    high = M.load_reference("PPO_REAL_1M")
    assert set(high) <= set(random) and high
    for game, scores in high.items():  # the normaliser itself scores 1 on every game it covers
        assert M.normalized(np.mean(scores), game) == pytest.approx(1.0)
        assert M.normalized(np.mean(random[game]), game) == pytest.approx(0.0)
    assert (M.DEFAULT_REFERENCE_DIR / "README.md").is_file()
    assert M.main(["--reference"]) == 0
    assert "PPO_REAL_1M" in capsys.readouterr().out  # the rows that are measured (README there)


def run_suite(out: Path, *argv: str) -> int:
    return benchmark_main(["--suite", "minatar-100k", "--device", "cpu", "--no-progress", "--out-dir", str(out),
                           *argv])


def test_suite_end_to_end_random_and_ppo_real(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "suite"
    common = ("-g", "breakout,freeway", "--seeds", "1", "--episodes", "1", "--steps", "500")
    assert run_suite(out, "-a", "random", *common) == 0
    assert run_suite(out, "-a", "ppo-real", *common, "--overwrite") == 0
    text = capsys.readouterr()
    assert "ppo-real" in text.out and "evaluated untrained" in text.err
    for agent in ("random", "ppo-real"):
        for game in ("Breakout", "Freeway"):
            for name in REPORT_FILES:
                assert (out / agent / game / name).is_file(), (agent, game, name)
        scores = json.loads((out / agent / "scores.json").read_text())
        assert sorted(scores) == ["Breakout", "Freeway"] and all(len(v) == 1 for v in scores.values())
    result = json.loads((out / "ppo-real" / "Breakout" / "benchmark_results.json").read_text())
    protocol = result["protocol"]
    assert protocol["env_id"] == "MinAtar/Breakout-v1" and protocol["backend"] == "minatar"
    assert protocol["train_steps"] == 500 and protocol["trained_here"] is True
    assert protocol["sticky_action_prob"] == 0.1 and protocol["max_episode_steps"] == 10_000
    trained = json.loads((out / "ppo-real" / "Breakout" / "train_seed0" / "ppo_config.json").read_text())
    assert trained["real_steps"] == 496 <= 500 and trained["hyperparameters"]["policy"] == "cnn-minatar"
    summary = json.loads((out / M.SUMMARY_JSON).read_text())
    assert summary["protocol"]["agent_steps"] == 500 and summary["protocol"]["games"] == ["Breakout", "Freeway"]
    entry = summary["agents"]["ppo-real"]
    assert entry["status"] == "ok" and entry["trained"] is True
    assert entry["aggregate"]["games"] == ["Breakout", "Freeway"]
    assert "MinAtar 100k" in (out / M.SUMMARY_MD).read_text()
    assert run_suite(out, "-a", "random", *common) == 2  # results there: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err

    # the trained policy reloads from its directory and plays the same seeded episodes
    agent = PPORealAgent("MinAtar/Breakout-v1", env_kwargs=M.ENV_KWARGS)
    agent.load_checkpoint(out / "ppo-real" / "Breakout" / "train_seed0")
    again = agent.evaluate(1, seed=0)
    assert again["episode_returns"] == result["per_seed"][0]["episode_returns"]
    agent.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--suite runs one -a AGENT"),
        (["-a", "random", "--train-epochs", "1"], "--train-epochs do not apply"),
        (["-a", "random", "-g", "pong"], "unknown MinAtar game 'pong'"),
        (["-a", "nope"], "unknown agent 'nope'"),
        (["-a", "random", "--steps", "-1"], "steps must be >= 0"),
    ],
)
def test_suite_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run_suite(tmp_path / "out", *argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_plain_benchmark_needs_a_game_and_takes_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmark_main(["-a", "random", "--out-dir", str(tmp_path)]) == 2
    assert "--game" in capsys.readouterr().err
    argv = ["-a", "random", "-g", "CartPole-v1", "--steps", "10", "--train-epochs", "1", "--out-dir", str(tmp_path)]
    assert benchmark_main(argv) == 2
    assert "cannot be combined with --train-epochs" in capsys.readouterr().err
