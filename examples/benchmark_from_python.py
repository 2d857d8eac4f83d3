"""Evaluate a policy in the real env with ``wmenv.benchmarks.runner.run_benchmark`` from Python.

The runner plays registered agents (here ``sb3`` and the ``random`` baseline) over seeds x
episodes in the REAL env, with reproducible episode seeds, and writes JSON / CSV / Markdown /
LaTeX / PNG reports with bootstrap confidence intervals. A policy trained on a world model's latent
features is shown the real env through that model: ``agent_kwargs={"world_model": run_dir}``.

Usage::

    python examples/benchmark_from_python.py --checkpoint runs/cartpole \
        --policy results/sb3_ppo_latent/policy.zip
    python examples/benchmark_from_python.py          # tiny world model + a short PPO in imagination first
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for integrations.common

import torch  # noqa: E402

from integrations.common import ensure_checkpoint, load_recipe_imagination  # noqa: E402
from wmenv.benchmarks.runner import run_benchmark  # noqa: E402


def quick_policy(run: Path, path: Path, steps: int) -> Path:
    """A short SB3 PPO run on latent observations in the batched imagination env."""
    from stable_baselines3 import PPO

    from wmenv.envs import WorldModelSB3VecEnv

    imagination = load_recipe_imagination(run, "latent")
    venv = WorldModelSB3VecEnv(
        imagination.world_model, imagination.start_states, 32, max_episode_steps=64, seed=0
    )
    agent = PPO("MlpPolicy", venv, n_steps=64, batch_size=512, learning_rate=1e-3, seed=0, device="cpu")
    agent.learn(steps)
    agent.save(path)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", default=None, help="world-model run dir the policy's latents come from"
    )
    parser.add_argument(
        "--policy", default=None, help="SB3 .zip trained on latents (default: train one briefly)"
    )
    parser.add_argument("--ppo-steps", type=int, default=8192)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--out", default="results/benchmark_from_python")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    out = Path(args.out)
    run = ensure_checkpoint(args.checkpoint, out, env_id=args.env)
    policy = Path(args.policy) if args.policy else quick_policy(run, out / "policy.zip", args.ppo_steps)

    summary = {}
    for agent, kwargs in (
        ("sb3", {"checkpoint": policy, "agent_kwargs": {"world_model": str(run / "checkpoint.pt")}}),
        ("random", {}),
    ):
        results = run_benchmark(
            agent, args.env, args.seeds, args.episodes, out / agent, overwrite=True, progress=False, **kwargs
        )
        agg = results["aggregate"]
        summary[agent] = {"iqm": agg.get("iqm"), "mean": agg.get("mean"), "files": results["files"]}
        print(
            f"{agent:>7}: per-seed mean returns {[round(m, 1) for m in agg['per_seed_means']]} "
            f"(all episodes {agg['all_episodes']['mean']:.1f} ± {agg['all_episodes']['std']:.1f})"
        )
    print("reports in", out)
    return summary


if __name__ == "__main__":
    main()
