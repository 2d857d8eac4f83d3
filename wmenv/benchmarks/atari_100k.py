"""Atari 100k: the 26-game sample-efficiency benchmark, run over registered agents.

Protocol (Kaiser et al. 2020, as used by IRIS, DIAMOND, DreamerV3 and most Atari 100k papers):

- 100k agent steps of real interaction per game and run (= 400k frames with frameskip 4);
- frameskip 4, sticky actions OFF (``repeat_action_probability=0``), up to 30 no-op starts,
  episodes truncated at 108,000 frames, minimal action set, no life-loss terminals at evaluation;
- after training, 100 evaluation episodes per run (unless ``--episodes``), several runs (seeds);
- scores are human-normalised, ``(score - random) / (human - random)``, and aggregated with rliable
  statistics: mean and median of per-game means, IQM over all runs x games, optimality gap,
  95% stratified bootstrap CIs.

Usage::

    python -m wmenv.benchmarks.atari_100k                       # print this protocol
    python -m wmenv.benchmarks.atari_100k --reference           # IRIS / DIAMOND published aggregates
    python -m wmenv.benchmarks.atari_100k --reference DIR       # aggregates of DIR/<NAME>.json
    python -m wmenv.benchmarks.atari_100k --benchmark --agents random --games Pong,Breakout \\
        --seeds 2 --steps 0 --episodes 1                        # CPU smoke run in minutes
    python -m wmenv.benchmarks.atari_100k --benchmark           # full: trainable agents, 26 games, 5 seeds

Each agent gets ``<out-dir>/<agent>/<Game>/benchmark_results.*`` (one run per seed),
``<out-dir>/<agent>/scores.json`` (``{game: [score per seed]}``, the format of IRIS.json /
DIAMOND.json, so ``--reference <out-dir>/<agent>`` works on it) and ``<out-dir>/atari100k_summary.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from wmenv.benchmarks.adapters import list_agents, resolve_agent_name
from wmenv.benchmarks.metrics import (
    ATARI_100K_GAMES,
    aggregate,
    canonical_game,
    human_normalized_matrix,
    superhuman_count,
)
from wmenv.benchmarks.reporting import Table, atomic_write_text, write_json
from wmenv.benchmarks.runner import parse_seeds
from wmenv.core.errors import ConfigError, RunDirError, WMEnvError

__all__ = ["ENV_KWARGS", "PROTOCOL", "aggregate_scores", "main", "reference_aggregates", "run_atari_100k"]

PROTOCOL: dict[str, Any] = {
    "agent_steps": 100_000,
    "env_frames": 400_000,
    "frameskip": 4,
    "repeat_action_probability": 0.0,
    "noop_max": 30,
    "max_episode_frames": 108_000,
    "eval_episodes": 100,
    "seeds": 5,
    "games": list(ATARI_100K_GAMES),
}
ENV_KWARGS: dict[str, Any] = {
    "protocol": "atari100k",
    "frameskip": 4,
    "repeat_action_probability": 0.0,
    "noop_max": 30,
    "max_episode_frames": 108_000,
}
"""Arguments of ``wmenv.envs.make.make_env`` that realise :data:`PROTOCOL` (explicit on purpose)."""

SUMMARY_JSON, SUMMARY_MD, SCORES_JSON = "atari100k_summary.json", "atari100k_summary.md", "scores.json"


def packaged_reference_dir() -> Path:
    """Directory of the IRIS / DIAMOND / HUMAN / RANDOM score files shipped as package data."""
    return Path(str(resources.files("wmenv.benchmarks") / "data" / "atari100k"))


DEFAULT_REFERENCE_DIR = packaged_reference_dir()
"""``--reference`` without a DIR reads here (``wmenv/benchmarks/data/atari100k``, see its README.md)."""
_STATS = ("mean", "median", "iqm", "optimality_gap")


def env_id(game: str) -> str:
    """``"Pong"`` -> ``"ALE/Pong-v5"``."""
    return f"ALE/{canonical_game(game)}-v5"


def aggregate_scores(raw: dict[str, Sequence[float]], reps: int = 2000) -> dict[str, Any]:
    """Human-normalised rliable aggregates of ``{game: [raw score per run]}``."""
    matrix, games = human_normalized_matrix(raw)
    agg = aggregate(matrix, reps=reps)
    return {**agg, "superhuman_count": superhuman_count(matrix), "games": games}


def summary_table(rows: dict[str, dict[str, Any]]) -> Table:
    """One row per agent / reference: the four aggregates with CIs, superhuman count, games, runs."""
    table = Table(
        [
            "agent",
            *[c for s in _STATS for c in (s, f"{s}_ci_low", f"{s}_ci_high")],
            "superhuman",
            "games",
            "runs",
        ]
    )
    for name, agg in rows.items():
        cells = [c for s in _STATS for c in (agg[s], *agg[f"{s}_ci"])]
        table.add(name, *cells, agg["superhuman_count"], agg["num_tasks"], agg["num_runs"])
    return table


def reference_aggregates(directory: str | Path) -> dict[str, dict[str, Any]]:
    """Aggregates of every ``<NAME>.json`` score file in ``directory`` (HUMAN/RANDOM excluded)."""
    path = Path(directory)
    files = sorted(p for p in path.glob("*.json") if p.stem.upper() not in ("HUMAN", "RANDOM"))
    if not files:
        raise ConfigError(f"no score files (<NAME>.json with {{game: [scores]}}) in {path}")
    return {p.stem: aggregate_scores(json.loads(p.read_text())) for p in files}


def _select_agents(names: Sequence[str] | None) -> list[str]:
    from wmenv.benchmarks.runner import agent_traits

    if names:
        return list(dict.fromkeys(resolve_agent_name(n) for n in names))
    trainable = [n for n in list_agents() if agent_traits(n, env_id=env_id("Pong"))[0]]
    if not trainable:
        raise ConfigError(
            f"no registered agent has a train() method (registered: {list_agents()}); pass --agents, e.g. "
            "--agents random --steps 0 for an untrained baseline"
        )
    return trainable


def run_atari_100k(
    agents: Sequence[str] | None = None,
    games: Sequence[str] = ATARI_100K_GAMES,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    steps: int = 100_000,
    episodes: int = 100,
    out_dir: str | Path = "results/atari100k",
    device: str = "cpu",
    preset: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Trains (``steps`` > 0 and the agent has ``train``) and evaluates agents on Atari 100k games.

    Agents without ``train`` are evaluated untrained (noted), or skipped if they need a checkpoint.

    Returns:
        The summary: ``{"protocol", "agents": {name: {"status", "note", "scores", "aggregate"}}}``.
    """
    from wmenv.benchmarks.runner import agent_traits, run_benchmark

    names = _select_agents(agents)
    game_names = [canonical_game(g) for g in games]
    out = Path(out_dir)
    found = sorted({*out.rglob("benchmark_results.json"), *out.glob(SUMMARY_JSON)}) if out.exists() else []
    if found and not overwrite:
        raise RunDirError(
            f"{out} already holds results ({found[0]}, ...); pass --overwrite or another --out-dir"
        )
    summary: dict[str, Any] = {
        "protocol": {
            **PROTOCOL,
            "agent_steps": steps,
            "eval_episodes": episodes,
            "seeds": list(seeds),
            "games": game_names,
        },
        "agents": {},
    }
    for name in names:
        trainable, needs_ckpt = agent_traits(name, env_id=env_id(game_names[0]), device=device)
        train = steps > 0 and trainable
        entry: dict[str, Any] = {"status": "ok", "trained": train, "note": ""}
        if steps > 0 and not train:
            entry["note"] = "no train() method: evaluated untrained"
        if not train and needs_ckpt:
            entry.update(status="skipped", note="needs training or a checkpoint; it has no train() method")
            summary["agents"][name] = entry
            continue
        raw: dict[str, list[float]] = {}
        for game in game_names:
            res = run_benchmark(
                name,
                env_id(game),
                seeds,
                episodes,
                out / name / game,
                device=device,
                overwrite=overwrite,
                preset=preset,
                env_kwargs=ENV_KWARGS,
                train_steps=steps if train else None,
                progress=progress,
            )
            raw[game] = res["aggregate"]["per_seed_means"]
        write_json(out / name / SCORES_JSON, raw)
        entry.update(scores=raw, aggregate=aggregate_scores(raw))
        summary["agents"][name] = entry
    write_json(out / SUMMARY_JSON, summary)
    done = {n: e["aggregate"] for n, e in summary["agents"].items() if e["status"] == "ok"}
    md = ["# Atari 100k (human-normalised, 95% stratified bootstrap CIs)", ""]
    md += [summary_table(done).to_markdown()] if done else ["(no agent evaluated)", ""]
    md += [f"- {n}: {e['status']} {e['note']}" for n, e in summary["agents"].items() if e["note"]]
    atomic_write_text(out / SUMMARY_MD, "\n".join(md) + "\n")
    return summary


def _print_aggregates(rows: dict[str, dict[str, Any]]) -> None:
    print(f"{'':12s} {'mean':>7s} {'median':>7s} {'IQM':>7s} {'opt.gap':>7s} {'>=human':>7s}  IQM 95% CI")
    for name, a in rows.items():
        lo, hi = a["iqm_ci"]
        stats = " ".join(f"{a[k]:7.3f}" for k in _STATS)
        size = f"({a['num_runs']} runs x {a['num_tasks']} games)"
        print(f"{name:12s} {stats} {a['superhuman_count']:7d}  [{lo:.3f}, {hi:.3f}]  {size}")


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python -m wmenv.benchmarks.atari_100k``."""
    parser = argparse.ArgumentParser(
        prog="python -m wmenv.benchmarks.atari_100k",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--benchmark", action="store_true", help="run the protocol over --agents")
    mode.add_argument(
        "--reference",
        nargs="?",
        const=str(DEFAULT_REFERENCE_DIR),
        metavar="DIR",
        help="print aggregates of the <NAME>.json score files in DIR (default: the IRIS / DIAMOND "
        "scores shipped with wmenv)",
    )
    parser.add_argument(
        "--agents",
        type=lambda s: [a for a in s.split(",") if a],
        default=None,
        help="comma list of agents (default: every registered agent with train())",
    )
    parser.add_argument("--games", default="all", help="comma list of games, or 'all' for the 26 (default)")
    parser.add_argument("--seeds", type=parse_seeds, default=list(range(5)), help="N or 0,1,2 (default: 5)")
    parser.add_argument("--steps", type=int, default=100_000, help="agent steps of training (0: no training)")
    parser.add_argument(
        "--episodes", type=int, default=100, help="evaluation episodes per seed (default 100)"
    )
    parser.add_argument("--out-dir", "--out_dir", dest="out_dir", default="results/atari100k")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available else cpu)")
    parser.add_argument("--preset", default=None, help="model preset passed to each agent factory")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out-dir")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns 0 on success and 2 on usage errors."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.reference is not None:
            if not Path(args.reference).is_dir():
                raise ConfigError(
                    f"reference directory {args.reference} does not exist; pass --reference DIR"
                )
            _print_aggregates(reference_aggregates(args.reference))
            print(f"scores: {Path(args.reference).resolve()}")
            return 0
        if not args.benchmark:
            print(__doc__)
            return 0
        if args.steps < 0 or args.episodes < 1:
            raise ConfigError(f"need --steps >= 0 and --episodes >= 1, got {args.steps} and {args.episodes}")
        games = ATARI_100K_GAMES if args.games == "all" else [g for g in args.games.split(",") if g]
        if args.device is None:
            from wmenv.benchmarks.runner import default_device

            args.device = default_device()
        summary = run_atari_100k(
            args.agents,
            games,
            args.seeds,
            args.steps,
            args.episodes,
            args.out_dir,
            args.device,
            args.preset,
            args.overwrite,
            args.progress,
        )
    except WMEnvError as err:
        if not isinstance(err, ValueError | KeyError):
            raise
        print(f"atari_100k: error: {err}", file=sys.stderr)
        return 2
    _print_aggregates({n: e["aggregate"] for n, e in summary["agents"].items() if e["status"] == "ok"})
    for name, entry in summary["agents"].items():
        if entry["note"]:
            print(f"{name}: {entry['status']}: {entry['note']}", file=sys.stderr)
    print(f"results: {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
