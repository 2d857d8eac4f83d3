"""``wmenv perf``: imagined steps per second of each face next to the raw batched model step;
``--compare torchrl|naive`` against TorchRL's own model-based env or a hand-written Gymnasium env;
``--train`` world-model updates per second of every family (and Dreamer next to TorchRL's)."""

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

DEFAULT_SIZES = "1,16,256,1024"


def _int_list(text: str, option: str, example: str) -> list[int]:
    try:
        values = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes batch sizes separated by commas (e.g. {example}), got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{option} takes batch sizes >= 1 separated by commas, got {text!r}")
    return values


def _names(text: str | None) -> list[str]:
    return [s.strip() for s in str(text or "").split(",") if s.strip()]


def _write_json(path: str, payload: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")


def run(args: argparse.Namespace) -> int:
    """Handler of ``wmenv perf``."""
    sizes = _int_list(args.sizes if args.sizes is not None else DEFAULT_SIZES, "--sizes", "1,16,256")
    if args.train and args.compare:
        raise ConfigError("--train and --compare are separate measurements; run them one at a time")
    if args.train and args.sizes is not None:
        raise ConfigError("--sizes sets env batch sizes; --train measures updates (use --batch-size / --seq-len)")
    repeats = args.repeats if args.repeats is not None else (3 if args.train else 9)
    if repeats < 1 or args.steps < 0:
        raise ConfigError(f"--repeats must be >= 1 and --steps >= 0, got {repeats} and {args.steps}")
    if args.batch_size < 1 or args.seq_len < 1:
        raise ConfigError(f"--batch-size and --seq-len must be >= 1, got {args.batch_size} and {args.seq_len}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:  # the thread count is the process's: restored for whoever called main()
        return _run(args, sizes, repeats)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace, sizes: list[int], repeats: int) -> int:
    try:
        device = torch.device(args.device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:
        print(f"wmenv perf: error: device {args.device!r} is not usable here: {err}", file=sys.stderr)
        return 2
    if args.train:
        return _run_train(args, repeats, device)
    from wmenv.benchmarks import perf_compare as pc

    model, start_states = perf_model(args.model, device)
    results: dict[int, dict[str, float]] = {}
    fn, fmt, notes = {
        None: (measure, format_table, ()),
        "torchrl": (pc.measure_torchrl, pc.format_torchrl_table, pc.TORCHRL_NOTES),
        "naive": (pc.measure_naive, pc.format_naive_table, pc.NAIVE_NOTES),
    }[args.compare]
    for n in sizes:
        steps = args.steps if args.steps else max(60, min(1000, 80_000 // n))
        results[n] = fn(n, steps, model, start_states, repeats=repeats)
        print(f"N={n} ({steps} steps x {repeats} rounds): " + ", ".join(f"{k}={v:,.2f}" for k, v in results[n].items()),
              flush=True)
    print()
    print(fmt(results))
    if args.compare:
        print("\n(imagined steps/s, best of interleaved rounds; ours/theirs > 1: ours is faster)")
        for note in notes:
            print(f"- {note}")
    else:
        print("\n(in parentheses: ratio to the raw batched model step; raw and faces take turns in every round)")
    machine = pc.machine_info()
    print(f"\n{machine['usable_cores']} usable cores, torch {machine['torch']} with {machine['torch_threads']} threads")
    if args.json:
        _write_json(args.json, {
            "mode": f"compare-{args.compare}" if args.compare else "faces",
            "model": args.model,
            "torch_threads": torch.get_num_threads(),
            "device": str(device),
            "repeats": repeats,
            "machine": machine,
            "notes": list(notes),
            "results": {str(n): r for n, r in results.items()},
        })
    return 0


def _run_train(args: argparse.Namespace, repeats: int, device: torch.device) -> int:
    from wmenv.benchmarks.perf_compare import format_train_tables, machine_info, measure_training
    from wmenv.registry import get_model_spec

    models = _names(args.models) or None
    for name in models or []:
        get_model_spec(name)  # unknown names: a clear usage error before anything runs
    presets = tuple(_names(args.presets))
    if not presets:
        raise ConfigError(f"--presets takes preset names separated by commas (e.g. tiny,small), got {args.presets!r}")
    result = measure_training(
        models, presets, batch_size=args.batch_size, seq_len=args.seq_len, updates=args.steps or 3,
        repeats=repeats, torchrl_dreamer=not args.no_torchrl_dreamer, device=str(device),
    )
    print(format_train_tables(result))
    print(f"\n(best of {repeats} interleaved rounds of {args.steps or 3} updates each)")
    machine = machine_info()
    print(f"{machine['usable_cores']} usable cores, torch {machine['torch']} with {machine['torch_threads']} threads")
    if args.json:
        _write_json(args.json, {"mode": "train", "device": str(device), "repeats": repeats,
                                "updates_per_round": args.steps or 3, "presets": list(presets),
                                "machine": machine, **result})
    return 0


def register(subparsers: Any) -> None:
    """Add ``wmenv perf`` to the CLI."""
    p = subparsers.add_parser(
        "perf", help="imagined steps/s of each env face vs the raw batched model step (or vs TorchRL / naive envs)",
        description=perf.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sizes", default=None, help=f"batch sizes N, comma separated (default {DEFAULT_SIZES})")
    p.add_argument("--steps", type=int, default=0,
                   help="steps per measurement (default: scaled with N); with --train, updates per round (default 3)")
    p.add_argument("--repeats", type=int, default=None,
                   help="rounds; each figure is the best round (default 9; 3 with --train)")
    p.add_argument("--device", default="cpu", help="torch device of the model and the faces (cpu, cuda, ...)")
    p.add_argument("--model", choices=["mlp", "linear"], default="mlp", help="model measured")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's own; 1 avoids OpenMP spinning on a busy machine)")
    p.add_argument("--compare", choices=["torchrl", "naive"], default=None,
                   help="torchrl: our TorchRL face vs torchrl.envs.model_based.WorldModelEnv (step loop, rollout, "
                        "collector); naive: a hand-written gymnasium.Env over reset_fn/transition_fn (and a "
                        "SyncVectorEnv of them) vs WorldModelEnv / WorldModelVectorEnv")
    p.add_argument("--train", action="store_true",
                   help="world-model updates/s of each family's presets (Trainer.update on a random replay batch), "
                        "and Dreamer next to TorchRL's Dreamer modules of the same sizes")
    p.add_argument("--models", default=None, help="--train: model names, comma separated (default: one per family)")
    p.add_argument("--presets", default="tiny,small", help="--train: presets, comma separated")
    p.add_argument("--batch-size", type=int, default=16, help="--train: sequences per batch")
    p.add_argument("--seq-len", type=int, default=64, help="--train: steps per sequence")
    p.add_argument("--no-torchrl-dreamer", action="store_true", help="--train: skip the TorchRL Dreamer side-by-side")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=run)
