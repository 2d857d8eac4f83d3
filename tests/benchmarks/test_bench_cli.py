"""`wmenv benchmark` options, exit codes and the standalone module."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wmenv.cli.benchmark import (
    add_benchmark_parser,
    main,
    parse_checkpoint_map,
    parse_seeds,
    run_benchmark_cli,
)


def run(tmp_path: Path, *argv: str, out: str = "out") -> int:
    return main(
        [
            "-g",
            "CartPole-v1",
            "-n",
            "2",
            "--seeds",
            "2",
            "--device",
            "cpu",
            "--no-progress",
            "--out-dir",
            str(tmp_path / out),
            *argv,
        ]
    )


def results(tmp_path: Path, sub: str = "out") -> dict[str, Any]:
    return json.loads((tmp_path / sub / "benchmark_results.json").read_text())


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("3", [0, 1, 2]), ("1", [0]), ("0,1,2", [0, 1, 2]), ("5,2", [5, 2]), ("7,", [7]), (" 4 ", [0, 1, 2, 3])],
)
def test_parse_seeds(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "0", "-2", "1,,2", "1,x", "1,1", "1,-1", "1.5", ","])
def test_parse_seeds_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid seeds"):
        parse_seeds(text)


def test_parse_checkpoint_map() -> None:
    assert parse_checkpoint_map("sb3=runs/a=b.zip") == ("sb3", "runs/a=b.zip")
    for bad in ("sb3", "=x.zip", "sb3=", " = "):
        with pytest.raises(argparse.ArgumentTypeError, match="AGENT=PATH"):
            parse_checkpoint_map(bad)


def test_single_agent_run_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "-a", "random", "--preset", "tiny") == 0
    data = results(tmp_path)
    assert data["protocol"]["seeds"] == [0, 1] and data["protocol"]["episodes"] == 2
    assert data["protocol"]["preset"] == "tiny" and data["protocol"]["device"] == "cpu"
    assert "random: mean" in capsys.readouterr().out


def test_long_options_legacy_out_dir_and_default_device(tmp_path: Path) -> None:
    code = main(
        [
            "--agent",
            "random",
            "--game",
            "CartPole-v1",
            "--episodes",
            "1",
            "--seeds",
            "0,3",
            "--out_dir",
            str(tmp_path / "legacy"),
            "--no-progress",
        ]
    )
    assert code == 0
    proto = results(tmp_path, "legacy")["protocol"]
    assert proto["seeds"] == [0, 3] and proto["device"] in ("cpu", "cuda")


def test_checkpoint_options(tmp_path: Path, ppo_cartpole: Path) -> None:
    assert run(tmp_path, "-a", "sb3", "-c", str(ppo_cartpole), out="c") == 0
    assert results(tmp_path, "c")["protocol"]["checkpoint"] == str(ppo_cartpole)
    assert run(tmp_path, "-a", "sb3", "--checkpoint-map", f"sb3={ppo_cartpole}", out="m") == 0
    assert run(tmp_path, "--checkpoint-map", f"sb3={ppo_cartpole}", out="only-map") == 0  # mapped agent only
    assert results(tmp_path, "only-map")["agent"] == "sb3"


def test_all_agents_with_map_and_train_epochs(
    tmp_path: Path, trainable: Any, ppo_cartpole: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "--all-agents", "--train-epochs", "1") == 0
    combined = json.loads((tmp_path / "out" / "combined_benchmark_results.json").read_text())
    status = {k: (v["status"], v["trained"]) for k, v in combined["agents"].items()}
    assert status == {"random": ("ok", False), "sb3": ("skipped", False), "trainable": ("ok", True)}
    assert "sb3: skipped" in capsys.readouterr().err
    assert [c["seed"] for c in trainable.calls] == [0, 1]
    assert run(tmp_path, "--all-agents", "--checkpoint-map", f"sb3={ppo_cartpole}", out="all") == 0
    combined = json.loads((tmp_path / "all" / "combined_benchmark_results.json").read_text())
    assert {v["status"] for v in combined["agents"].values()} == {"ok"}
    assert (tmp_path / "all" / "combined_benchmark_results.csv").is_file()


def test_train_epochs_single_agent(tmp_path: Path, trainable: Any) -> None:
    assert run(tmp_path, "-a", "trainable", "--train-epochs", "3") == 0
    assert [c["epochs"] for c in trainable.calls] == [3, 3]
    assert results(tmp_path)["protocol"]["train_epochs"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-a", "nope"], "unknown agent 'nope'.*Known agents: .*random"),
        (["-a", "random", "-c", "missing.pt"], "does not exist"),
        (["-a", "sb3", "--checkpoint-map", "sb3=missing.zip"], "does not exist"),
        (["--checkpoint-map", "ghost=x.zip"], "unknown agent 'ghost'"),
        (["--checkpoint-map", "sb3"], "AGENT=PATH"),
        (["-a", "random", "--seeds", "x"], "invalid seeds"),
        (["-a", "random", "--seeds", "0,0"], "invalid seeds"),
        (["-a", "random", "-n", "0"], "integer >= 1"),
        (["-a", "random", "--train-epochs", "1"], "no train"),
        (["-a", "sb3"], "needs a checkpoint"),
        (["--all-agents", "-c", "x.zip"], "--checkpoint needs --agent"),
        (["-a", "random", "--all-agents"], "not allowed with"),
        ([], "no agent selected"),
        (["-a", "random", "-g", "CartPol-v1"], "did you mean 'CartPole-v1'"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(tmp_path, *argv) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out" / "benchmark_results.json").exists()


def test_existing_results_exit_2_unless_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: Any
) -> None:
    assert run(tmp_path, "-a", "random") == 0
    first = (tmp_path / "out" / "benchmark_results.json").read_text()
    assert run(tmp_path, "-a", "random", "--seeds", "1") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "benchmark_results.json").read_text() == first
    assert run(tmp_path, "--all-agents") == 2  # a multi-agent run into the same dir is refused too
    assert run(tmp_path, "-a", "random", "--seeds", "1", "--overwrite") == 0
    assert results(tmp_path)["protocol"]["seeds"] == [0]


def test_help_documents_overwrite_behaviour(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "never overwritten silently" in text and "--overwrite" in text and "--out_dir" in text


def test_add_benchmark_parser_wires_a_subcommand(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="wmenv")
    add_benchmark_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "benchmark",
            "-a",
            "random",
            "-g",
            "CartPole-v1",
            "--seeds",
            "1",
            "-n",
            "1",
            "--out-dir",
            str(tmp_path),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert args.func is run_benchmark_cli and args.func(args) == 0


def test_module_runs_standalone(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wmenv.cli.benchmark",
            "-a",
            "nope",
            "-g",
            "CartPole-v1",
            "--out-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unknown agent 'nope'" in proc.stderr
