"""``wmenv evaluate-model``: world-model fidelity on held-out real data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wmenv.benchmarks.fidelity import evaluate_model
from wmenv.core.errors import ConfigError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``wmenv evaluate-model`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "evaluate-model",
        help="world-model fidelity on held-out real data (open-loop error vs horizon, imagination gap)",
        description="Collect fresh real trajectories, burn the model in on K real steps, predict H steps "
        "open loop from the real actions and report observation MSE (PSNR for pixels), reward MAE and "
        "termination precision/recall per horizon, with side-by-side videos; with --policy also the "
        "imagination gap (the policy's return in the model vs in the real env).",
    )
    p.add_argument("--checkpoint", required=True, metavar="RUN_OR_CKPT", help="run dir or checkpoint.pt")
    p.add_argument("--out-dir", default="results/fidelity", help="output directory (default results/fidelity)")
    p.add_argument("--env", default=None, help="real env id (default: the checkpoint's)")
    p.add_argument("--horizon", type=int, default=15, help="open-loop steps H (default 15)")
    p.add_argument("--context", type=int, default=8, help="burn-in steps K (default 8)")
    p.add_argument("--heldout-steps", type=int, default=2000, help="real env steps to collect (default 2000)")
    p.add_argument("--seed", type=int, default=None, help="held-out seed (default: training seed + 10000)")
    p.add_argument("--heldout-policy", choices=("random", "model"), default="random")
    p.add_argument("--max-windows", type=int, default=256)
    p.add_argument("--videos", type=int, default=1, help="side-by-side videos to write (MP4 + GIF each)")
    p.add_argument("--policy", default=None, metavar="PATH.zip", help="SB3 policy for the imagination gap")
    p.add_argument("--gap-episodes", type=int, default=5)
    p.add_argument("--fps", type=float, default=10)
    p.add_argument("--overwrite", action="store_true", help="replace fidelity files in --out-dir")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.policy is not None and not Path(args.policy).is_file():
        raise ConfigError(f"--policy {args.policy}: no such file (expected an SB3 policy .zip)")
    if args.heldout_steps < 1 or args.max_windows < 1 or args.videos < 0 or args.gap_episodes < 1:
        raise ConfigError("--heldout-steps, --max-windows and --gap-episodes must be >= 1, --videos >= 0")
    res = evaluate_model(
        args.checkpoint, args.out_dir, env_id=args.env, horizon=args.horizon, context=args.context,
        heldout_steps=args.heldout_steps, seed=args.seed, heldout_policy=args.heldout_policy,
        max_windows=args.max_windows, videos=args.videos, policy=args.policy,
        gap_episodes=args.gap_episodes, overwrite=args.overwrite, fps=args.fps,
    )
    mse = res["open_loop"]["mse"]
    shown = ", ".join(f"h={h}: {mse[h - 1]:.4g}" for h in sorted({1, min(5, len(mse)), len(mse)})
                      if mse[h - 1] is not None)
    print(f"{res['model_name']} on {res['env_id']}: open-loop MSE {shown} "
          f"({res['open_loop']['windows']} windows)")
    if "imagination_gap" in res:
        g = res["imagination_gap"]
        print(f"imagination gap: {g['imagined_mean']:.2f} imagined vs {g['real_mean']:.2f} real "
              f"({g['observation_mode']} observations, {g['episodes']} episodes)")
    print(f"results: {Path(res['files']['json']).parent}")
    return 0
