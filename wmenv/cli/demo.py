"""``wmenv demo``: the whole loop on a laptop CPU (see :mod:`wmenv.demo`)."""

from __future__ import annotations

import argparse
from typing import Any

import wmenv.demo as demo

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from wmenv.config import parse_overrides
    from wmenv.demo import demo_config_for, run_demo

    config = demo_config_for(args.env, pixels=args.pixels)
    if args.overrides:
        config = config.with_overrides(parse_overrides(args.overrides))
    run_demo(config, seed=args.seed, out_root=args.out, device=args.device, progress=not args.no_progress)
    return 0


def register(subparsers: Any) -> None:
    """Add ``wmenv demo`` to the CLI."""
    p = subparsers.add_parser(
        "demo", help="the whole loop on CPU: real data -> world model -> PPO in imagination -> real eval",
        description=demo.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", default="CartPole-v1", help="real env id (CartPole-v1, Pendulum-v1, cartpole-swingup)")
    p.add_argument("--pixels", action="store_true", help="pixel observations (dm_control tasks)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything")
    p.add_argument("--out", default="runs", help="root directory of run directories")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="demo config overrides key=value (e.g. rounds=3 horizon=64)")
    p.set_defaults(func=_run)
