"""Evaluate a policy in the real env with ``wmenv.run_benchmark`` from Python.

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
from pathlib import Path
from typing import Any

import torch

import wmenv


def tiny_world_model(run_dir: Path, env_id: str = "CartPole-v1") -> Path:
    """A tiny Dreamer world model of ``env_id`` trained now with ``wmenv.train`` (a minute on a CPU):
    2000 random real steps, then 300 updates. Reused if ``run_dir`` already holds one."""
    if (run_dir / "checkpoint.pt").is_file():
        return run_dir
    from wmenv.train import Schedule, train

    print(f"no --checkpoint: training a tiny world model in {run_dir} ...", flush=True)
    return train(
        "dreamer-wm",
        env_id,
        steps=300,
        preset="debug",  # tiny with deter 64, MLPs 64: seconds on a CPU
        schedule=Schedule(seed_steps=2000),
        trainer={
            "batch_size": 8,
            "seq_len": 16,
            "lr": 1e-3,
            "log_every": 25,
            "checkpoint_every": 0,
            "tensorboard": False,
        },
        run_dir=run_dir,
        progress=False,
    )


def quick_policy(run_dir: Path, path: Path, steps: int) -> Path:
    """A short SB3 PPO run on latent observations in the batched imagination env."""
    from stable_baselines3 import PPO

    run = wmenv.open_run(run_dir)
    venv = run.make_env("sb3", num_envs=32, max_episode_steps=64, observation_mode="latent", seed=0)
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
    if args.checkpoint is not None:
        run = wmenv.open_run(args.checkpoint).path  # fails here on a missing or foreign checkpoint
    else:
        run = tiny_world_model(out / "world_model", args.env)
    policy = Path(args.policy) if args.policy else quick_policy(run, out / "policy.zip", args.ppo_steps)

    summary = {}
    for agent, kwargs in (
        ("sb3", {"checkpoint": policy, "agent_kwargs": {"world_model": str(run / "checkpoint.pt")}}),
        ("random", {}),
    ):
        results = wmenv.run_benchmark(
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
