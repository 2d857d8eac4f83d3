"""An open-loop rollout video: the real env and the world model, driven by the same actions.

``wmenv.imagine.imagine_rollout`` burns the model in on the real env's first ``--context``
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
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for integrations.common

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from integrations.common import ensure_checkpoint  # noqa: E402
from wmenv.imagine import imagine_rollout  # noqa: E402
from wmenv.video import comparison_frames, side_by_side, write_video  # noqa: E402


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
    run = ensure_checkpoint(args.checkpoint, out.parent)
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
