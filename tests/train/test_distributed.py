"""DistributedDataParallel at world size 2 on CPU (gloo) follows the one-process loss curve."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wmenv.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["train", "test_mlp", "--env", "CartPole-v1", "--steps", "20", "--seed-steps", "300", "--batch-size", "8",
        "--seq-len", "8", "--log-every", "5", "--checkpoint-every", "10", "--no-progress", "trainer.tensorboard=false"]


def _losses(run: Path) -> list[float]:
    with open(run / "metrics.csv") as f:
        return [float(r[2]) for r in csv.reader(f) if len(r) == 3 and r[1] == "loss"]


def _run(cmd: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]


@pytest.mark.timeout(600)
def test_world_size_two_matches_one_process(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, "-m", "tests.train.run_train_cli", *ARGS, "--run-dir", str(one)])
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "tests.train.run_train_cli", *ARGS, "--run-dir", str(two)])
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == 4
    assert b == pytest.approx(a, rel=1e-4, abs=1e-6)  # same global batches, gradients averaged by DDP
    assert not (two / "replay_scratch-rank1" / "metrics.csv").exists()
    assert sorted(p.name for p in two.glob("checkpoint.pt")) == ["checkpoint.pt"]  # rank 0 alone writes
    ckpt_one, ckpt_two = load_checkpoint(one / "checkpoint.pt"), load_checkpoint(two / "checkpoint.pt")
    assert ckpt_two["step"] == 20
    for k, v in ckpt_one["model"].items():
        assert (v - ckpt_two["model"][k]).abs().max() < 1e-4, k
    # resumes at another world size: one process continues the two-process run
    _run([sys.executable, "-m", "tests.train.run_train_cli", "train", "--resume", str(two), "--steps", "25",
          "--no-progress"])
    assert load_checkpoint(two / "checkpoint.pt")["step"] == 25
