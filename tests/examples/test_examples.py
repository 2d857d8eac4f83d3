"""Every example runs at a tiny budget and produces what it says it does."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by path (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"wmenv_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_examples_import_only_the_installed_package():
    for path in sorted(EXAMPLES.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & {"integrations", "examples", "tests", "sys"}, (path.name, node.lineno)


def test_callables_env_passes_check_env_and_trains_ppo():
    out = example("callables_env").main(["--ppo-steps", "512"])
    assert np.isfinite(out["random_return"]) and np.isfinite(out["ppo_return"])


def test_callables_env_is_seeded():
    env = example("callables_env").make_env()
    first = [env.reset(seed=3)[0] for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])


def test_own_model_protocol_passes_every_face_checker():
    out = example("own_model_protocol").main(["--steps", "1500", "--updates", "200"])
    assert out["imagined_length"] > 1 and out["real_length"] > 1


def test_batched_throughput_grows_with_the_batch():
    rates = example("batched_throughput").main(["--sizes", "1", "64", "--steps", "5"])
    assert set(rates) == {1, 64}
    assert rates[64] > 4 * rates[1]  # one forward pass for 64 envs, not 64 passes


def test_open_loop_video_writes_both_videos(tiny_checkpoint, tmp_path):
    out = example("open_loop_video").main(
        [
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(tmp_path / "rollout.gif"),
            "--steps",
            "6",
            "--context",
            "4",
        ]
    )
    assert [p.endswith(s) for p, s in zip(out["videos"], ("rollout.gif", "rollout_rendered.gif"))] == [
        True,
        True,
    ]
    assert all((tmp_path / p.rsplit("/", 1)[-1]).stat().st_size > 0 for p in out["videos"])
    assert out["error"][0] >= 0


def test_benchmark_from_python_writes_reports_for_both_agents(tiny_checkpoint, tmp_path):
    summary = example("benchmark_from_python").main(
        [
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(tmp_path),
            "--ppo-steps",
            "256",
            "--seeds",
            "0",
            "--episodes",
            "1",
        ]
    )
    assert set(summary) == {"sb3", "random"}
    for agent in summary:
        results = json.loads((tmp_path / agent / "benchmark_results.json").read_text())
        assert results["agent"] == agent and len(results["per_seed"]) == 1
