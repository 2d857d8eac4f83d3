"""SB3 PPO wall time for the same imagined steps: batched ``WorldModelSB3VecEnv`` vs ``DummyVecEnv``.

``DummyVecEnv([WorldModelEnv] * N)`` is how SB3 vectorizes any Gymnasium env: ``N`` envs stepped
one after the other, each a world-model forward pass with a batch of one. ``WorldModelSB3VecEnv``
steps all ``N`` in one forward pass. Both share one model and the same start states; PPO's own
updates (identical work in both) are part of the measured time, and env stepping alone (random
actions) is measured too.

Usage::

    python -m integrations.sb3.throughput --checkpoint runs/cartpole --num-envs 64   # from the repo root

Writes ``--out/throughput.json`` and prints a table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

from integrations.common import prepare, recipe_parser, settings
from wmenv import WorldModelEnv, WorldModelSB3VecEnv


def make_vec(kind: str, model: Any, start: Any, num_envs: int, horizon: int, seed: int) -> VecEnv:
    """``"batched"``: one ``WorldModelSB3VecEnv``; ``"dummy"``: ``DummyVecEnv`` of ``WorldModelEnv`` s,
    all over the same world model ``model`` and start states ``start``."""
    if kind == "batched":
        return WorldModelSB3VecEnv(model, start, num_envs, max_episode_steps=horizon, seed=seed)
    return DummyVecEnv(
        [
            (lambda i=i: WorldModelEnv(model, start, max_episode_steps=horizon, seed=seed + i))
            for i in range(num_envs)
        ]
    )


def env_steps_per_second(venv: VecEnv, steps: int) -> float:
    """Imagined steps/s with uniformly random actions (no policy, no learning)."""
    venv.reset()
    actions = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(actions)
    return steps * venv.num_envs / (time.perf_counter() - start)


def ppo_seconds(venv: VecEnv, total: int, n_steps: int, seed: int) -> float:
    """Wall time of ``PPO.learn(total)`` (MlpPolicy) on ``venv``."""
    batch_size = min(512, n_steps * venv.num_envs)
    model = PPO(
        "MlpPolicy",
        VecMonitor(venv),
        n_steps=n_steps,
        batch_size=batch_size,
        n_epochs=4,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure both ways; returns (and writes) the numbers."""
    parser = recipe_parser(
        "SB3 PPO throughput: batched VecEnv vs DummyVecEnv",
        total_steps=8192,
        num_envs=64,
        horizon=64,
        eval_every=0,
        out="results/sb3_throughput",
    )
    parser.add_argument("--n-steps", type=int, default=32, help="PPO rollout length per env")
    parser.add_argument("--observation-mode", default="latent", choices=("latent", "decoded"))
    args = parser.parse_args(argv)
    run = prepare(args)  # wmenv.open_run(--checkpoint), or a tiny world model trained first
    model = run.world_model(observation_mode=args.observation_mode)
    start = run.start_states(world_model=model)
    total = max(args.total_steps, args.n_steps * args.num_envs)

    rows: dict[str, dict[str, float]] = {}
    for kind in ("batched", "dummy"):
        venv = make_vec(kind, model, start, args.num_envs, args.horizon, args.seed)
        rows[kind] = {
            "env_steps_per_second": round(env_steps_per_second(venv, max(4, args.n_steps)), 1),
            "ppo_seconds": round(ppo_seconds(venv, total, args.n_steps, args.seed), 2),
        }
        venv.close()
        print(
            f"{kind:>8}: {rows[kind]['env_steps_per_second']:>10.0f} env steps/s | PPO {total} imagined "
            f"steps in {rows[kind]['ppo_seconds']:.1f} s",
            flush=True,
        )
    result = {
        "settings": {**settings(run, vars(args), args.observation_mode, args.env), "imagined_steps": total},
        **rows,
        "ppo_speedup": round(rows["dummy"]["ppo_seconds"] / rows["batched"]["ppo_seconds"], 2),
        "env_speedup": round(
            rows["batched"]["env_steps_per_second"] / rows["dummy"]["env_steps_per_second"], 2
        ),
    }
    print(
        f"speed-up of the batched face: PPO x{result['ppo_speedup']}, env stepping x{result['env_speedup']}"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
