"""Atari 100k module: reference aggregates, protocol, and a one-game smoke run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wmenv.benchmarks import atari_100k as A


def test_protocol_constants() -> None:
    assert len(A.PROTOCOL["games"]) == 26
    assert A.PROTOCOL["env_frames"] == A.PROTOCOL["agent_steps"] * A.PROTOCOL["frameskip"] == 400_000
    assert A.ENV_KWARGS["repeat_action_probability"] == 0.0 and A.ENV_KWARGS["noop_max"] == 30
    assert A.env_id("ms_pacman") == "ALE/MsPacman-v5"


def test_reference_prints_published_aggregates(capsys: pytest.CaptureFixture[str]) -> None:
    assert A.main(["--reference"]) == 0  # default: the scores shipped in wmenv/benchmarks/data/atari100k
    out = capsys.readouterr().out
    assert "IRIS           1.046   0.289   0.501" in out
    assert "DIAMOND        1.459   0.373   0.641" in out
    assert A.main(["--reference", str(A.DEFAULT_REFERENCE_DIR)]) == 0
    assert capsys.readouterr().out == out


def test_reference_and_mode_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: Any) -> None:
    assert A.main(["--reference", str(tmp_path / "missing")]) == 2
    assert A.main(["--reference", str(tmp_path)]) == 2  # no score files
    assert "no score files" in capsys.readouterr().err
    assert A.main([]) == 0 and "Protocol" in capsys.readouterr().out
    assert A.main(["--benchmark", "--out-dir", str(tmp_path)]) == 2  # no registered agent has train()
    assert "--agents" in capsys.readouterr().err
    assert A.main(["--benchmark", "--agents", "random", "--games", "Pongg", "--out-dir", str(tmp_path)]) == 2
    assert "did you mean 'Pong'" in capsys.readouterr().err


def test_smoke_run_random_on_pong(tmp_path: Path, registry: Any) -> None:
    argv = [
        "--benchmark",
        "--agents",
        "random,sb3",
        "--games",
        "Pong",
        "--seeds",
        "1",
        "--steps",
        "0",
        "--episodes",
        "1",
        "--device",
        "cpu",
        "--out-dir",
        str(tmp_path),
        "--no-progress",
    ]
    assert A.main(argv) == 0
    summary = json.loads((tmp_path / A.SUMMARY_JSON).read_text())
    assert summary["agents"]["sb3"]["status"] == "skipped"
    assert summary["agents"]["random"]["aggregate"]["num_tasks"] == 1
    scores = json.loads((tmp_path / "random" / A.SCORES_JSON).read_text())
    assert list(scores) == ["Pong"] and -21 <= scores["Pong"][0] <= 21
    proto = json.loads((tmp_path / "random" / "Pong" / "benchmark_results.json").read_text())["protocol"]
    assert (proto["frameskip"], proto["repeat_action_probability"], proto["noop_max"]) == (4, 0.0, 30)
    assert proto["max_episode_frames"] == 108_000 and proto["backend"] == "ale"
    assert A.main(argv) == 2  # existing results
    assert (
        A.reference_aggregates(tmp_path / "random")["scores"]["num_runs"] == 1
    )  # scores.json is --reference-able
