"""run_benchmark / run_multi_agent: result files, formats, training, no silent overwrite."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wmenv.benchmarks.adapters import RandomAgent
from wmenv.benchmarks.reporting import latex_escape
from wmenv.benchmarks.runner import EPISODE_SEED_STRIDE, AgentOutputError, run_benchmark, run_multi_agent
from wmenv.core.errors import CheckpointError, ConfigError, RunDirError, UnknownEnvError

FAST = {"progress": False, "bootstrap_reps": 200}


def check_latex(text: str) -> None:
    """begin/end tabular balanced; every row has as many cells as the column spec."""
    assert text.count("\\begin{tabular}") == text.count("\\end{tabular}") >= 1
    for block in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", text, flags=re.S):
        ncols = len(block[0])
        rows = [r for r in block[1].split("\n") if r.strip() and r.strip() != "\\hline"]
        assert rows
        for row in rows:
            assert row.endswith(r" \\")
            assert len(re.split(r"(?<!\\)&", row)) == ncols, row
    assert re.search(r"(?<!\\)_", text) is None  # underscores escaped


def test_single_agent_writes_all_formats(tmp_path: Path) -> None:
    res = run_benchmark("random", "CartPole-v1", [0, 1, 2], 3, tmp_path, device="cpu", **FAST)
    files = {p.name for p in tmp_path.iterdir()}
    assert files == {f"benchmark_results.{e}" for e in ("json", "csv", "md", "tex")} | {
        "per_seed_returns.png"
    }
    data = json.loads((tmp_path / "benchmark_results.json").read_text())
    assert data["agent"] == "random" and [r["seed"] for r in data["per_seed"]] == [0, 1, 2]
    means = [np.mean(r["episode_returns"]) for r in data["per_seed"]]
    assert data["aggregate"]["per_seed_means"] == pytest.approx(means)
    assert data["aggregate"]["mean"] == pytest.approx(np.mean(means))
    assert data["aggregate"]["median"] == pytest.approx(np.median(means))
    lo, hi = data["aggregate"]["iqm_ci"]
    assert lo <= data["aggregate"]["iqm"] <= hi
    assert [r["episode_seed_base"] for r in data["per_seed"]] == [
        0,
        EPISODE_SEED_STRIDE,
        2 * EPISODE_SEED_STRIDE,
    ]
    proto = data["protocol"]
    for key in (
        "env_id",
        "backend",
        "frameskip",
        "repeat_action_probability",
        "noop_max",
        "max_episode_frames",
        "max_episode_steps",
        "episodes",
        "seeds",
        "wmenv_version",
        "device",
        "checkpoint",
        "agent",
    ):
        assert key in proto, key
    assert proto["max_episode_steps"] == 500 and proto["seeds"] == [0, 1, 2] and proto["episodes"] == 3
    assert res["files"]["json"] == str(tmp_path / "benchmark_results.json")

    with open(tmp_path / "benchmark_results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["seed", "episodes", "mean_return", "std", "min", "max"]
    assert [int(r["seed"]) for r in rows] == [0, 1, 2] and all(r["episodes"] == "3" for r in rows)
    assert [float(r["mean_return"]) for r in rows] == pytest.approx(means)
    for r, run in zip(rows, data["per_seed"]):
        assert float(r["min"]) == min(run["episode_returns"]) and float(r["max"]) == max(
            run["episode_returns"]
        )

    check_latex((tmp_path / "benchmark_results.tex").read_text())
    md = (tmp_path / "benchmark_results.md").read_text()
    assert "| seed | episodes | mean_return | std | min | max |" in md and "| iqm |" in md
    assert (tmp_path / "per_seed_returns.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_are_reproducible(tmp_path: Path) -> None:
    a = run_benchmark("random", "CartPole-v1", [3], 2, tmp_path / "a", **FAST)
    b = run_benchmark("random", "CartPole-v1", [3], 2, tmp_path / "b", **FAST)
    assert a["per_seed"] == b["per_seed"]


def test_never_overwrites_silently(tmp_path: Path) -> None:
    run_benchmark("random", "CartPole-v1", [0], 1, tmp_path, **FAST)
    before = (tmp_path / "benchmark_results.json").read_text()
    with pytest.raises(RunDirError, match="--overwrite"):
        run_benchmark("random", "CartPole-v1", [1], 1, tmp_path, **FAST)
    assert (tmp_path / "benchmark_results.json").read_text() == before
    run_benchmark("random", "CartPole-v1", [1], 1, tmp_path, overwrite=True, **FAST)
    assert json.loads((tmp_path / "benchmark_results.json").read_text())["protocol"]["seeds"] == [1]


def test_input_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="distinct"):
        run_benchmark("random", "CartPole-v1", [0, 0], 1, tmp_path, **FAST)
    with pytest.raises(ConfigError, match="episodes"):
        run_benchmark("random", "CartPole-v1", [0], 0, tmp_path, **FAST)
    with pytest.raises(CheckpointError, match="does not exist"):
        run_benchmark("random", "CartPole-v1", [0], 1, tmp_path, checkpoint=tmp_path / "nope.pt", **FAST)
    with pytest.raises(CheckpointError, match="needs a checkpoint"):
        run_benchmark("sb3", "CartPole-v1", [0], 1, tmp_path, **FAST)
    with pytest.raises(ConfigError, match="no train"):
        run_benchmark("random", "CartPole-v1", [0], 1, tmp_path, train_epochs=1, **FAST)
    with pytest.raises(UnknownEnvError):
        run_benchmark("random", "NoSuchEnv-v0", [0], 1, tmp_path, **FAST)
    assert not (tmp_path / "benchmark_results.json").exists()


def test_training_builds_a_fresh_agent_per_seed(tmp_path: Path, trainable: Any) -> None:
    res = run_benchmark(
        "trainable", "CartPole-v1", [4, 7], 1, tmp_path, train_epochs=2, preset="tiny", **FAST
    )
    assert [(c["epochs"], c["seed"]) for c in trainable.calls] == [(2, 4), (2, 7)]
    assert res["protocol"]["trained_here"] and res["protocol"]["preset"] == "tiny"


def test_malformed_agent_output_is_an_error(tmp_path: Path, registry: Any) -> None:
    class Broken(RandomAgent):
        def evaluate(self, num_episodes: int, render: bool = False, seed: int | None = None) -> dict:
            return {"episode_returns": [1.0]}

    registry.register_agent("broken", Broken)
    with pytest.raises(AgentOutputError, match="episode_lengths"):
        run_benchmark("broken", "CartPole-v1", [0], 2, tmp_path, **FAST)


def test_multi_agent_combined_outputs(tmp_path: Path, trainable: Any, ppo_cartpole: Path) -> None:
    combined = run_multi_agent(
        ["random", "sb3", "trainable"], "CartPole-v1", [0, 1], 2, tmp_path, train_epochs=1, **FAST
    )
    agents = combined["agents"]
    assert agents["random"]["status"] == "ok" and "untrained" in agents["random"]["note"]
    assert agents["sb3"]["status"] == "skipped" and "checkpoint" in agents["sb3"]["note"]
    assert agents["trainable"]["status"] == "ok" and agents["trainable"]["trained"]
    assert (tmp_path / "random" / "benchmark_results.json").is_file()
    assert not (tmp_path / "sb3").exists()
    saved = json.loads((tmp_path / "combined_benchmark_results.json").read_text())
    assert (
        saved["agents"]["random"]["aggregate"]["per_seed_means"]
        == agents["random"]["aggregate"]["per_seed_means"]
    )
    with open(tmp_path / "combined_benchmark_results.csv", newline="") as fh:
        rows = {r["agent"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"random", "sb3", "trainable"} and rows["sb3"]["mean"] == ""
    assert float(rows["random"]["mean"]) == pytest.approx(agents["random"]["aggregate"]["mean"])
    with pytest.raises(RunDirError):
        run_multi_agent(["random"], "CartPole-v1", [0], 1, tmp_path, **FAST)

    again = run_multi_agent(
        ["sb3"], "CartPole-v1", [0], 1, tmp_path / "ck", checkpoints={"sb3": ppo_cartpole}, **FAST
    )
    assert again["agents"]["sb3"]["status"] == "ok" and again["agents"]["sb3"]["checkpoint"] == str(
        ppo_cartpole
    )


def test_latex_escape() -> None:
    assert latex_escape("a_b & 50% #1 $x$ {y} ~^\\") == (
        r"a\_b \& 50\% \#1 \$x\$ \{y\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )
