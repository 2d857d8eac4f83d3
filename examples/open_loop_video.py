"""An open-loop rollout video: the real env and the world model, driven by the same actions.

``wmenv.benchmarks.imagine.imagine_rollout`` burns the model in on the real env's first ``--context``
observations, then feeds both the same actions and never corrects the model again (open loop), so
its error grows with the horizon. ``wmenv.video`` writes the comparison: frames side by side for
pixel models, line plots for vector models. For CartPole the imagined states are also drawn by
CartPole's own renderer, which makes the drift easy to see. (The CLI does the same:
``wmenv imagine --checkpoint RUN --out rollout.gif``.)

Usage::

    python examples/open_loop_video.py --checkpoint runs/cartpole --out rollout.gif
    python examples/open_loop_video.py                 # trains a tiny CartPole world model first
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import wmenv
from wmenv.benchmarks.imagine import imagine_rollout
from wmenv.video import comparison_frames, side_by_side, write_video


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


def render_cartpole(states: np.ndarray) -> np.ndarray:
    """CartPole frames ``(T, H, W, 3)`` of states ``(T, 4)``, real or imagined, by the env's renderer."""
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    frames = []
    for state in states:
        env.unwrapped.state = np.asarray(state, dtype=np.float64)
        frames.append(env.render())
    env.close()
    return np.stack(frames)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="run dir (default: train a tiny CartPole model)")
    parser.add_argument("--out", default="results/open_loop/rollout.gif", help=".gif or .mp4")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--context", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    out = Path(args.out)
    if args.checkpoint is not None:
        run = wmenv.open_run(args.checkpoint).path  # fails here on a missing or foreign checkpoint
    else:
        run = tiny_world_model(out.parent / "world_model")
    roll = imagine_rollout(
        run, steps=args.steps, context=args.context, seed=args.seed, observation_mode="decoded"
    )
    real, imagined = roll["real"], roll["imagined"]

    error = np.abs(real.astype(np.float64) - imagined.astype(np.float64)).reshape(len(real), -1).mean(1)
    for t in sorted({1, len(error) // 4, len(error) // 2, len(error) - 1}):
        print(f"open-loop step {t:>3}: mean |real - imagined| = {error[t]:.4f}")

    written = [write_video(comparison_frames(real, imagined), out, fps=10)]
    if roll["env_id"].startswith("CartPole") and real.ndim == 2:  # states: draw them as CartPole frames
        frames = side_by_side(
            render_cartpole(real), render_cartpole(imagined), ("real", "imagined (open loop)")
        )
        written.append(write_video(frames, out.with_name(f"{out.stem}_rendered{out.suffix}"), fps=10))
    print("wrote", ", ".join(str(p) for p in written))
    return {"videos": [str(p) for p in written], "error": error.tolist(), "policy": roll["policy"]}


if __name__ == "__main__":
    main()
