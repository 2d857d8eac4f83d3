"""``wmenv imagine``: a video of the real env next to the world model, driven by the same actions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["register", "run_imagine"]


def register(subparsers: Any) -> None:
    """Add ``wmenv imagine`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "imagine",
        help="video of the real env next to the world model, driven by the same actions",
        description="Run the real env and a trained world model side by side with the same actions "
        "(the checkpoint's policy if it has one, else random), the model started from the real env's "
        "first K observations, and write a video (.gif or .mp4).",
    )
    p.add_argument("--checkpoint", required=True, metavar="RUN_OR_CKPT", help="run dir or checkpoint.pt")
    p.add_argument("--out", required=True, help="output video, rollout.gif or rollout.mp4")
    p.add_argument("--env", default=None, help="real env id (default: the one stored in the checkpoint)")
    p.add_argument("--steps", type=int, default=50, help="steps after the burn-in (default 50)")
    p.add_argument("--context", type=int, default=8, help="real burn-in observations K (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--observation-mode", default="decoded", choices=("decoded",),
                   help="what the model emits; decoded = the real observation space")
    p.add_argument("--fps", type=float, default=15)
    p.set_defaults(func=run_imagine)


def run_imagine(args: argparse.Namespace) -> int:
    """Handler of ``wmenv imagine``; errors are typed (the main CLI turns them into exit code 2)."""
    from wmenv.benchmarks.imagine import imagine_rollout
    from wmenv.runs import resolve_checkpoint
    from wmenv.video import check_video_path, comparison_frames, write_video

    out = check_video_path(args.out)  # before any slow work
    resolve_checkpoint(args.checkpoint)
    roll = imagine_rollout(args.checkpoint, args.env, steps=args.steps, context=args.context, seed=args.seed,
                           observation_mode=args.observation_mode)
    write_video(comparison_frames(roll["real"], roll["imagined"]), out, fps=args.fps)
    err = float(np.mean((roll["real"].astype(np.float64) - roll["imagined"].astype(np.float64)) ** 2))
    print(f"imagined {len(roll['actions'])} steps of {roll['env_id']} with {roll['model_name']} "
          f"({roll['policy']} actions, context {args.context}); observation MSE {err:.4g} -> {Path(out)}")
    return 0
