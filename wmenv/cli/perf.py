"""``wmenv perf``: imagined steps per second of each face next to the raw batched model step."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from wmenv.benchmarks import perf
from wmenv.benchmarks.perf import format_table, measure, perf_model
from wmenv.core.errors import ConfigError

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Handler of ``wmenv perf``."""
    try:
        sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--sizes takes batch sizes separated by commas (e.g. 1,16,256), got {args.sizes!r}") from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--sizes takes batch sizes >= 1 separated by commas, got {args.sizes!r}")
    if args.repeats < 1 or args.steps < 0:
        raise ConfigError(f"--repeats must be >= 1 and --steps >= 0, got {args.repeats} and {args.steps}")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    try:
        device = torch.device(args.device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:
        print(f"wmenv perf: error: device {args.device!r} is not usable here: {err}", file=sys.stderr)
        return 2
    model, start_states = perf_model(args.model, device)
    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        steps = args.steps if args.steps else max(60, min(1000, 80_000 // n))
        results[n] = measure(n, steps, model, start_states, repeats=args.repeats)
        print(f"N={n}: " + ", ".join(f"{k}={v:,.2f}" for k, v in results[n].items()), flush=True)
    print()
    print(format_table(results))
    print("\n(in parentheses: ratio to the raw batched model step; raw and faces take turns in every round)")
    if args.json:
        payload = {
            "model": args.model,
            "torch_threads": torch.get_num_threads(),
            "device": str(device),
            "results": {str(n): r for n, r in results.items()},
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``wmenv perf`` to the CLI."""
    p = subparsers.add_parser(
        "perf", help="imagined steps/s of each env face vs the raw batched model step",
        description=perf.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sizes", default="1,16,256,1024", help="batch sizes N, comma separated")
    p.add_argument("--steps", type=int, default=0, help="steps per measurement (default: scaled with N)")
    p.add_argument("--repeats", type=int, default=9, help="rounds; each figure is the best round")
    p.add_argument("--device", default="cpu", help="torch device of the model and the faces (cpu, cuda, ...)")
    p.add_argument("--model", choices=["mlp", "linear"], default="mlp", help="model measured")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=run)


