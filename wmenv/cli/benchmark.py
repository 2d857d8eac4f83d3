"""``wmenv benchmark``: evaluate agents in the real env over seeds x episodes.

Wire into the main CLI with :func:`add_benchmark_parser`; standalone: ``python -m wmenv.cli.benchmark``.
Exit codes: 0 success, 1 some agent failed during a multi-agent run, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wmenv.benchmarks.adapters import list_agents, resolve_agent_name
from wmenv.benchmarks.model_free import register_model_free_agents
from wmenv.benchmarks.runner import default_device, parse_seeds
from wmenv.core.errors import CheckpointError, ConfigError, WMEnvError

__all__ = ["add_benchmark_parser", "main", "parse_checkpoint_map", "parse_seeds", "run_benchmark_cli"]

SUITES = ("minatar-100k",)
DEFAULT_SEEDS, DEFAULT_EPISODES = [0, 1, 2], 10

DESCRIPTION = """\
Evaluate one or several registered agents in the REAL environment over seeds x episodes and write
benchmark_results.{json,csv,md,tex} and per_seed_returns.png (one agent: into --out-dir; several:
into --out-dir/<agent>/ plus combined_benchmark_results.{json,csv} at --out-dir).

Existing results are never overwritten silently: if --out-dir (or one of its agent subdirectories)
already holds benchmark results the command stops with exit code 2; pass --overwrite to replace them
or choose another --out-dir.

Seed s evaluates episodes with reset seeds s*10000 + i. Without training every seed evaluates the
same checkpoint; with --train-epochs or --steps each seed trains a fresh agent first.

--suite minatar-100k runs a whole suite instead of one --game: every game of the suite (or the
comma list given to --game), the suite's training budget (--steps overrides it, 0: no training),
evaluation episodes and seeds unless given; the files above go to --out-dir/<agent>/<Game>/, plus
--out-dir/<agent>/scores.json and --out-dir/minatar100k_summary.{json,md} (normalised aggregates)."""

EPILOG = """\
examples:
  wmenv benchmark -a random -g CartPole-v1 --seeds 3 -n 10
  wmenv benchmark -a sb3 -g CartPole-v1 -c ppo_cartpole.zip --seeds 0,1,2 -n 20
  wmenv benchmark --all-agents -g Pong-v5 --checkpoint-map sb3=ppo_pong.zip --train-epochs 5
  wmenv benchmark -a ppo-real -g minatar-breakout --steps 100000 --seeds 3
  wmenv benchmark --suite minatar-100k -a ppo-real
  wmenv benchmark --suite minatar-100k -a random -g breakout,freeway --seeds 1 --episodes 5
exit codes: 0 ok, 1 an agent failed in a multi-agent run, 2 usage error."""


def parse_checkpoint_map(text: str) -> tuple[str, str]:
    """``"AGENT=PATH"`` -> ``(agent, path)``.

    Raises:
        argparse.ArgumentTypeError: Missing ``=`` or an empty side.
    """
    agent, sep, path = text.partition("=")
    if not sep or not agent.strip() or not path.strip():
        raise argparse.ArgumentTypeError(
            f"invalid checkpoint map {text!r}: expected AGENT=PATH, e.g. sb3=model.zip"
        )
    return agent.strip(), path.strip()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--agent", "-a", metavar="NAME", help="registered agent to evaluate (random, sb3, ...)")
    who.add_argument("--all-agents", action="store_true", help="evaluate every registered agent")
    parser.add_argument(
        "--game",
        "-g",
        "--env",
        dest="game",
        metavar="ID",
        help="real env id, e.g. CartPole-v1, ALE/Pong-v5 or Pong-v5 (required unless --suite; with "
        "--suite: a comma list of the suite's games, default all)",
    )
    parser.add_argument(
        "--suite", choices=SUITES, default=None, help="run a benchmark suite (see above) instead of one --game"
    )
    parser.add_argument("--checkpoint", "-c", metavar="PATH", help="checkpoint of --agent (must exist)")
    parser.add_argument(
        "--checkpoint-map",
        metavar="AGENT=PATH",
        action="append",
        type=parse_checkpoint_map,
        default=[],
        help="checkpoint per agent (repeatable); without --agent/--all-agents "
        "the mapped agents are evaluated",
    )
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=None,
        metavar="SEEDS",
        help="N (seeds 0..N-1) or a comma list 0,1,2 (default: 3; with --suite the suite's)",
    )
    parser.add_argument(
        "--episodes",
        "-n",
        type=_positive_int,
        default=None,
        metavar="N",
        help="episodes per seed (default: 10; with --suite the suite's)",
    )
    parser.add_argument(
        "--out-dir",
        "--out_dir",
        dest="out_dir",
        default="results/bench",
        metavar="DIR",
        help="output directory (default: results/bench; must not hold results unless --overwrite)",
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available else cpu)")
    parser.add_argument("--preset", default=None, help="model preset passed to the agent factory (e.g. tiny)")
    parser.add_argument(
        "--train-epochs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train each agent per seed for N epochs first (agents with a train() method; "
        "with --all-agents, agents without one are evaluated untrained, or skipped if "
        "they need a checkpoint; mapped agents are evaluated from their checkpoint)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="N",
        help="train each agent per seed for N real env steps first (agents with a train() method); "
        "with --suite it overrides the suite's budget (0: no training)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out-dir")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    parser.set_defaults(func=run_benchmark_cli)
    return parser


def add_benchmark_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``benchmark`` sub-command to an ``argparse`` subparsers object and returns it."""
    parser = subparsers.add_parser(
        "benchmark",
        help="evaluate agents in the real env over seeds x episodes",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return _configure(parser)


def _plan(args: argparse.Namespace) -> tuple[list[str], dict[str, str], bool]:
    """Selected agents, their checkpoints and whether this is a multi-agent run."""
    cmap: dict[str, str] = {}
    for agent, path in args.checkpoint_map:
        name = resolve_agent_name(agent)
        if name in cmap:
            raise ConfigError(f"--checkpoint-map gives agent {name!r} twice")
        cmap[name] = path
    if args.all_agents:
        if args.checkpoint:
            raise ConfigError("--checkpoint needs --agent; with --all-agents use --checkpoint-map AGENT=PATH")
        return list_agents(), cmap, True
    if args.agent:
        name = resolve_agent_name(args.agent)
        if args.checkpoint and name in cmap:
            raise ConfigError(f"agent {name!r} has both --checkpoint and --checkpoint-map; give one")
        if args.checkpoint:
            cmap = {name: args.checkpoint}
        return [name], {name: cmap[name]} if name in cmap else {}, False
    if cmap:
        return list(cmap), cmap, len(cmap) > 1
    raise ConfigError(
        f"no agent selected: give --agent NAME, --all-agents or --checkpoint-map. Registered: {list_agents()}"
    )


def run_benchmark_cli(args: argparse.Namespace) -> int:
    """Runs ``wmenv benchmark`` from parsed arguments.

    Returns:
        0 on success, 1 if an agent failed in a multi-agent run, 2 on usage errors (message on stderr).
    """
    from wmenv.benchmarks.runner import run_benchmark, run_multi_agent

    if getattr(args, "suite", None) is not None:
        return _run_suite(args)
    try:
        if not args.game:
            raise ConfigError("give the real env with --game ID (e.g. CartPole-v1), or a --suite")
        if args.steps is not None and (args.steps < 1 or args.train_epochs is not None):
            raise ConfigError("--steps needs an integer >= 1 and cannot be combined with --train-epochs")
        agents, cmap, multi = _plan(args)
        for name, path in cmap.items():
            if not Path(path).exists():
                raise CheckpointError(f"checkpoint {path!r} of agent {name!r} does not exist")
        common = dict(
            env_id=args.game,
            seeds=DEFAULT_SEEDS if args.seeds is None else args.seeds,
            episodes=DEFAULT_EPISODES if args.episodes is None else args.episodes,
            out_dir=args.out_dir,
            device=args.device or default_device(),
            overwrite=args.overwrite,
            preset=args.preset,
            train_epochs=args.train_epochs,
            train_steps=args.steps,
            progress=args.progress,
        )
        if multi:
            combined = run_multi_agent(agents, checkpoints=cmap, **common)
        else:
            result = run_benchmark(agents[0], checkpoint=cmap.get(agents[0]), **common)
    except WMEnvError as err:
        if not isinstance(err, ValueError | KeyError):
            raise
        print(f"wmenv benchmark: error: {err}", file=sys.stderr)
        return 2
    if not multi:
        agg = result["aggregate"]
        print(_summary_line(agents[0], agg))
        print(f"results: {Path(result['files']['json']).parent}")
        return 0
    failed = False
    for name, entry in combined["agents"].items():
        if entry["status"] == "ok":
            print(
                _summary_line(name, entry["aggregate"]) + (f" ({entry['note']})" if entry.get("note") else "")
            )
        else:
            failed |= entry["status"] == "failed"
            print(f"{name}: {entry['status']}: {entry.get('note', '')}", file=sys.stderr)
    print(f"results: {Path(combined['files']['json']).parent}")
    return 1 if failed else 0


def _run_suite(args: argparse.Namespace) -> int:
    """``--suite minatar-100k``: every game of the suite for ``-a AGENT`` (exit codes as above)."""
    from wmenv.benchmarks import minatar_100k as suite

    register_model_free_agents()
    try:
        if not args.agent or args.checkpoint or args.checkpoint_map or args.train_epochs is not None:
            raise ConfigError(
                "--suite runs one -a AGENT, trained per seed for --steps real steps (or untrained with "
                "--steps 0); --all-agents, --checkpoint, --checkpoint-map and --train-epochs do not apply"
            )
        games = [g for g in args.game.split(",") if g.strip()] if args.game else list(suite.MINATAR_GAMES)
        steps = suite.PROTOCOL["agent_steps"] if args.steps is None else args.steps
        summary = suite.run_minatar_100k(
            [args.agent],
            games,
            seeds=list(range(suite.PROTOCOL["seeds"])) if args.seeds is None else args.seeds,
            steps=steps,
            episodes=suite.PROTOCOL["eval_episodes"] if args.episodes is None else args.episodes,
            out_dir=args.out_dir,
            device=args.device or default_device(),
            preset=args.preset,
            overwrite=args.overwrite,
            progress=args.progress,
        )
    except WMEnvError as err:
        if not isinstance(err, ValueError | KeyError):
            raise
        print(f"wmenv benchmark: error: {err}", file=sys.stderr)
        return 2
    name, entry = next(iter(summary["agents"].items()))
    if entry["status"] != "ok":
        print(f"{name}: {entry['status']}: {entry['note']}", file=sys.stderr)
        return 2
    print("\n".join(suite.format_raw_scores(name, entry["scores"])))
    if entry["aggregate"] is not None:
        print("\n".join(suite.format_aggregates({name: entry["aggregate"]})))
    if entry["note"]:
        print(f"note: {entry['note'].strip()}", file=sys.stderr)
    print(f"results: {args.out_dir}")
    return 0


def _summary_line(name: str, agg: dict[str, Any]) -> str:
    lo, hi = agg["iqm_ci"]
    return (
        f"{name}: mean {agg['mean']:.3f}  median {agg['median']:.3f}  IQM {agg['iqm']:.3f} "
        f"[{lo:.3f}, {hi:.3f}] over {agg['num_runs']} seed(s)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The standalone parser (same options as ``wmenv benchmark``)."""
    parser = argparse.ArgumentParser(
        prog="python -m wmenv.cli.benchmark",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return _configure(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point; returns the exit code (argparse usage errors give 2)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return run_benchmark_cli(args)


if __name__ == "__main__":
    sys.exit(main())
