"""Every recipe runs end to end at a tiny budget: trains in imagination, is judged in the real env,
writes results.json + returns.csv + returns.png. One full path per library runs by default."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(module: str, argv: list[str]) -> dict[str, Any]:
    """Run ``integrations.<module>.main(argv)`` in this process (no interpreter start-up per test)."""
    return importlib.import_module(f"integrations.{module}").main(argv)


def tiny(checkpoint: Path, out: Path, *extra: str) -> list[str]:
    """Tiny-budget flags: one real episode per evaluation, 16-step imagined episodes."""
    return [
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        "--eval-episodes",
        "1",
        "--horizon",
        "16",
        *extra,
    ]


def check_outputs(results: dict[str, Any], out: Path, evaluations: int = 2) -> None:
    for name in ("results.json", "returns.csv", "returns.png"):
        assert (out / name).stat().st_size > 0, name
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["recipe"] == results["recipe"]
    assert len(on_disk["evaluations"]) >= evaluations
    assert math.isfinite(on_disk["final"]["real_return"]) and on_disk["final"]["real_return"] > 0
    assert on_disk["settings"]["env_id"] == "CartPole-v1"
    header = (out / "returns.csv").read_text().splitlines()[0]
    assert header == "step,imagined_return,real_return,real_return_std,seconds"


def test_sb3_ppo_latent_recipe(tiny_checkpoint, tmp_path):
    out = tmp_path / "sb3"
    results = run(
        "sb3.ppo_latent",
        tiny(
            tiny_checkpoint,
            out,
            "--total-steps",
            "1024",
            "--num-envs",
            "16",
            "--n-steps",
            "32",
            "--eval-every",
            "512",
        ),
    )
    check_outputs(results, out)
    assert results["settings"]["observation_mode"] == "latent"
    assert (out / "policy.zip").is_file()
    assert results["final"]["imagined_return"] > 0  # VecMonitor saw imagined episodes end


def test_torchrl_ppo_recipe_with_collector(tiny_checkpoint, tmp_path):
    out = tmp_path / "torchrl"
    results = run(
        "torchrl.ppo_torchrl",
        tiny(
            tiny_checkpoint,
            out,
            "--total-steps",
            "1024",
            "--num-envs",
            "16",
            "--frames-per-batch",
            "512",
            "--minibatch",
            "256",
            "--epochs",
            "2",
            "--eval-every",
            "512",
        ),
    )
    check_outputs(results, out)
    assert results["collector"] == "Collector"


def test_cleanrl_recipe_sync_vector_env(tiny_checkpoint, tmp_path):
    out = tmp_path / "cleanrl"
    results = run(
        "cleanrl.ppo_wmenv",
        tiny(
            tiny_checkpoint,
            out,
            "--total-timesteps",
            "512",
            "--num-envs",
            "4",
            "--num-steps",
            "64",
            "--eval-every",
            "256",
        ),
    )
    check_outputs(results, out)
    assert "SyncVectorEnv" in results["recipe"]
    assert (out / "agent.pt").is_file()


def test_cleanrl_recipe_batched_make_vec(tiny_checkpoint, tmp_path):
    out = tmp_path / "cleanrl_batched"
    results = run(
        "cleanrl.ppo_wmenv",
        tiny(
            tiny_checkpoint,
            out,
            "--batched",
            "--total-timesteps",
            "1024",
            "--num-envs",
            "16",
            "--num-steps",
            "32",
            "--eval-every",
            "512",
        ),
    )
    check_outputs(results, out)
    assert "make_vec" in results["recipe"]


def test_sb3_throughput_script(tiny_checkpoint, tmp_path):
    result = run(
        "sb3.throughput",
        [
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(tmp_path),
            "--num-envs",
            "8",
            "--n-steps",
            "8",
            "--total-steps",
            "64",
        ],
    )
    assert json.loads((tmp_path / "throughput.json").read_text())["ppo_speedup"] == result["ppo_speedup"]
    for kind in ("batched", "dummy"):
        assert result[kind]["ppo_seconds"] > 0 and result[kind]["env_steps_per_second"] > 0


def test_sb3_ppo_dict_recipe(tiny_checkpoint, tmp_path):
    out = tmp_path / "dict"
    results = run(
        "sb3.ppo_dict",
        tiny(
            tiny_checkpoint,
            out,
            "--total-steps",
            "512",
            "--num-envs",
            "8",
            "--n-steps",
            "32",
            "--eval-every",
            "256",
        ),
    )
    check_outputs(results, out)
    assert results["settings"]["observation_mode"] == "decoded"


@pytest.mark.slow
def test_torchrl_ppo_recipe_with_multisync_collector(tiny_checkpoint, tmp_path):
    out = tmp_path / "torchrl_multi"
    results = run(
        "torchrl.ppo_torchrl",
        tiny(
            tiny_checkpoint,
            out,
            "--workers",
            "2",
            "--total-steps",
            "512",
            "--num-envs",
            "8",
            "--frames-per-batch",
            "256",
            "--minibatch",
            "128",
            "--epochs",
            "1",
            "--eval-every",
            "256",
        ),
    )
    check_outputs(results, out)
    assert results["collector"] == "MultiSyncCollector"


@pytest.mark.slow
def test_sb3_ppo_pixels_recipe_trains_its_own_pixel_world_model(tmp_path):
    """No checkpoint: a tiny dm_control cartpole-swingup pixel world model is trained first."""
    out = tmp_path / "pixels"
    env_kwargs = '{"pixels": true, "image_size": 64, "action_repeat": 8, "task_kwargs": {"time_limit": 2}}'
    results = run(
        "sb3.ppo_pixels",
        [
            "--out",
            str(out),
            "--eval-episodes",
            "1",
            "--total-steps",
            "256",
            "--num-envs",
            "4",
            "--n-steps",
            "64",
            "--eval-every",
            "256",
            "--wm-updates",
            "5",
            "--wm-seed-steps",
            "60",
            "--env-kwargs",
            env_kwargs,
        ],
    )
    for name in ("results.json", "returns.csv", "returns.png", "policy.zip", "world_model/checkpoint.pt"):
        assert (out / name).is_file(), name
    assert results["settings"]["env_id"] == "cartpole-swingup"
    assert results["settings"]["env_kwargs"]["pixels"] is True


def test_recipe_without_checkpoint_trains_a_tiny_world_model_first(tmp_path):
    out = tmp_path / "fresh"
    results = run(
        "sb3.ppo_latent",
        [
            "--out",
            str(out),
            "--eval-episodes",
            "1",
            "--total-steps",
            "256",
            "--num-envs",
            "8",
            "--n-steps",
            "32",
            "--wm-updates",
            "5",
            "--wm-seed-steps",
            "200",
        ],
    )
    assert (out / "world_model" / "checkpoint.pt").is_file()
    assert results["settings"]["checkpoint"] == str(out / "world_model")


def test_recipes_do_not_edit_sys_path():
    for path in sorted((REPO / "integrations").rglob("*.py")):
        assert "sys.path" not in path.read_text(), path


def test_a_recipe_runs_as_a_module_from_the_repo_root():
    """As the recipes' docstrings say: ``python -m integrations.<lib>.<recipe>`` from the repo root."""
    done = subprocess.run(
        [sys.executable, "-m", "integrations.sb3.ppo_latent", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "--checkpoint" in done.stdout and "--eval-episodes" in done.stdout
