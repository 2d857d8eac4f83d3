"""``wmenv collect`` / ``wmenv train``: runs, typed errors (exit 2), and resume after SIGKILL."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wmenv.cli.train import main
from wmenv.core.errors import CheckpointError
from wmenv.registry import ModelSpec, register_model
from wmenv.train import load_checkpoint, load_replay, replay_as_tensordict

from .testfamily import MLPConfig, build

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ["-m", "tests.train.run_train_cli"]  # run from the repository root (no sys.path edits)
FAST = ["--no-progress", "--seed-steps", "200", "trainer.tensorboard=false"]


def test_collect_then_train_from_saved_replay(tmp_path, capsys):
    out = tmp_path / "data"
    assert (
        main(
            [
                "collect",
                "--env",
                "CartPole-v1",
                "--steps",
                "300",
                "--num-envs",
                "2",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    replay = load_replay(out)
    assert len(replay) >= 300 and not list(tmp_path.glob(".data.scratch"))
    assert main(["collect", "--env", "CartPole-v1", "--steps", "10", "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    run = tmp_path / "run"
    argv = [
        "train",
        "test_mlp",
        "--env",
        "CartPole-v1",
        "--replay",
        str(out),
        "--run-dir",
        str(run),
        "hidden=8",
        "--steps",
        "12",
        "trainer.lr=0.01",
        "--seed-steps",
        "0",
        "--no-progress",
    ]
    assert main(argv) == 0  # options and key=value overrides may be intermixed
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 12 and ckpt["config"]["hidden"] == 8
    assert ckpt["extra"]["trainer_config"]["lr"] == 0.01
    assert (run / "metrics.png").is_file()


def test_default_run_dir_and_collection_with_model_policy(tmp_path):
    argv = [
        "train",
        "test_mlp",
        "--env",
        "CartPole-v1",
        "--steps",
        "20",
        "--collect-every",
        "10",
        "--collect-steps",
        "40",
        "--runs-root",
        str(tmp_path),
        *FAST,
    ]
    assert main(argv) == 0
    (run,) = tmp_path.iterdir()
    assert run.name.endswith("_test_mlp_CartPole-v1")
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["extra"]["user_state"]["env_steps"] >= 240
    rows = replay_as_tensordict(load_replay(run / ckpt["extra"]["replay_snapshot"]))
    assert (rows["action"][-20:] == 0).all()  # the model's policy() (always 0) collected the last phase
    assert main(argv) == 0 and len(list(tmp_path.iterdir())) == 2  # a second run never reuses the dir


def test_env_kwargs_reach_every_env_of_the_run_and_survive_resume(tmp_path):
    import torch

    threads = torch.get_num_threads()
    run = tmp_path / "run"
    argv = ["train", "test_mlp", "--env", "CartPole-v1", "--env-kwarg", "max_episode_steps=7", "--steps", "10",
            "--collect-every", "5", "--collect-steps", "30", "--run-dir", str(run), "--threads", "1", *FAST]
    try:
        assert main(argv) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["extra"]["run"]["env_kwargs"] == {"max_episode_steps": 7}
    rows = replay_as_tensordict(load_replay(run / ckpt["extra"]["replay_snapshot"]))
    lengths = torch.unique_consecutive(rows["episode"], return_counts=True)[1]
    assert lengths.max() <= 8  # 7 steps + the stored final observation, in seed AND policy phases
    assert main(["train", "--resume", str(run), "--steps", "15", "--no-progress"]) == 0
    rows = replay_as_tensordict(load_replay(run / load_checkpoint(run / "checkpoint.pt")["extra"]["replay_snapshot"]))
    assert torch.unique_consecutive(rows["episode"], return_counts=True)[1].max() <= 8


def test_parse_env_kwargs():
    from wmenv.config import parse_env_kwargs
    from wmenv.core.errors import ConfigError

    assert parse_env_kwargs(["pixels=True", "size=64", "scale=0.5", "mode=rgb_array", "x=none", "hw=(64, 64)"]) == {
        "pixels": True, "size": 64, "scale": 0.5, "mode": "rgb_array", "x": None, "hw": (64, 64)}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_env_kwargs(["pixels"])


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["train", "nomodel", "--env", "CartPole-v1"], "unknown model 'nomodel'"),
        (["train", "test_mlp", "--env", "CartPole-v1", "--preset", "huge"], "unknown preset 'huge'"),
        (["train", "test_mlp", "--env", "CartPole-v1", "bogus=1"], "unknown config key 'bogus'"),
        (["train", "test_mlp", "--env", "CartPole-v1", "hidden=abc"], "expected an int"),
        (["train", "test_mlp", "--env", "CartPole-v1", "trainer.nope=1"], "unknown config key 'nope'"),
        (["train", "test_mlp", "--env", "CartPole-v1", "hidden"], "not of the form key=value"),
        (["train", "test_mlp"], "needs a model and --env"),
        (["train", "--resume", "/nonexistent/run"], "no such run directory"),
        (["train", "test_mlp", "--env", "CartPole-v1", "--env-kwarg", "oops"], "not of the form KEY=VALUE"),
        (["train", "test_mlp", "--env", "CartPole-v1", "--threads", "0"], "--threads must be >= 1"),
        (["collect", "--env", "CartPole-v1", "--steps", "5", "--out", "d", "--env-kwarg", "=1"], "KEY=VALUE"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv, match):
    os.chdir(tmp_path)
    assert main(argv) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_existing_run_dir_and_foreign_resume_are_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    assert main(["train", "test_mlp", "--env", "CartPole-v1", "--run-dir", str(run)]) == 2
    assert "already exists" in capsys.readouterr().err and (run / "keep.txt").read_text() == "x"
    assert main(["train", "--resume", str(run)]) == 2
    assert "no checkpoint.pt" in capsys.readouterr().err
    good = tmp_path / "good"
    assert (
        main(["train", "test_mlp", "--env", "CartPole-v1", "--steps", "5", "--run-dir", str(good), *FAST])
        == 0
    )
    register_model(
        ModelSpec(name="test_mlp_other", config_cls=MLPConfig, build=build, family="test2"), overwrite=True
    )
    before = (good / "checkpoint.pt").read_bytes()
    assert main(["train", "test_mlp_other", "--resume", str(good)]) == 2
    assert "is a run of model 'test_mlp', not 'test_mlp_other'" in capsys.readouterr().err
    assert (good / "checkpoint.pt").read_bytes() == before
    (good / "checkpoint.pt").write_bytes(before[:100])
    with pytest.raises(CheckpointError):
        load_checkpoint(good / "checkpoint.pt")
    assert main(["train", "--resume", str(good)]) == 2


def test_wmenv_cli_wiring():
    from wmenv.cli import main as wmenv_main

    assert wmenv_main(["train", "nomodel", "--env", "CartPole-v1"]) == 2


def _step(path: Path) -> int:
    try:
        return int(load_checkpoint(path)["step"])
    except CheckpointError:
        return -1


def test_sigkill_then_resume_continues_from_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        *SCRIPT,
        "train",
        "test_mlp",
        "--env",
        "CartPole-v1",
        "--run-dir",
        str(run),
        "--steps",
        "100000",
        "--checkpoint-every",
        "20",
        "--collect-every",
        "30",
        "--collect-steps",
        "60",
        *FAST,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while _step(run / "checkpoint.pt") < 100:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training never reached step 100"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpt = load_checkpoint(run / "checkpoint.pt")
    step, snapshot = int(ckpt["step"]), ckpt["extra"]["replay_snapshot"]
    saved = replay_as_tensordict(load_replay(run / snapshot)).clone()
    assert step >= 100 and step % 20 == 0
    # no data loss: the checkpoint's replay holds every transition collected up to it
    assert int((~saved["is_first"]).sum()) == ckpt["extra"]["user_state"]["env_steps"] > 0

    res = subprocess.run(
        [
            sys.executable,
            *SCRIPT,
            "train",
            "--resume",
            str(run),
            "--steps",
            str(step + 30),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    assert f"resumed {run} at step {step} with {saved.batch_size[0]} replay rows" in res.stdout
    final = load_checkpoint(run / "checkpoint.pt")
    assert final["step"] == step + 30
    rows = replay_as_tensordict(load_replay(run / final["extra"]["replay_snapshot"]))
    assert (rows[: saved.batch_size[0]] == saved).all()  # the replay continued from the saved contents
    assert len(rows) > len(saved)  # and the resumed run collected more
    assert int((~rows["is_first"]).sum()) == final["extra"]["user_state"]["env_steps"]
    with open(run / "metrics.csv") as f:
        loss_steps = [int(r[0]) for r in csv.reader(f) if len(r) == 3 and r[1] == "loss"]
    assert len(loss_steps) == len(set(loss_steps)) and max(loss_steps) == step + 30
