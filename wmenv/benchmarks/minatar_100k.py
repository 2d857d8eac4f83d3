"""MinAtar 100k: a five-game sample-efficiency suite on MinAtar, run over registered agents.

Protocol (:data:`PROTOCOL`):

- the five MinAtar games (``MinAtar/<Game>-v1``: Asterix, Breakout, Freeway, Seaquest,
  SpaceInvaders; minimal action sets, 10x10 uint8 frames, see ``wmenv.envs.backends.minatar``);
- MinAtar's defaults: sticky actions with probability 0.1, difficulty ramping on; episodes
  truncated at 10,000 agent steps (MinAtar itself sets no limit);
- 100k real agent steps of learning per game and run (one agent step is one game frame: MinAtar
  has no frame skipping); 100 evaluation episodes per run after training, 5 runs (seeds);
- scores are normalised between a uniformly random policy (0) and model-free PPO trained on the
  real env for 1M steps (1), ``(score - random) / (ppo_1m - random)``, with the reference values
  of ``wmenv/benchmarks/data/minatar100k`` (measured with this harness, see its README.md), and
  aggregated with rliable statistics: mean and median of per-game means, IQM over all runs x
  games, optimality gap, 95% stratified bootstrap CIs (:mod:`wmenv.benchmarks.metrics`).

Usage::

    wmenv benchmark --suite minatar-100k -a ppo-real               # the full protocol
    wmenv benchmark --suite minatar-100k -a random --steps 0 --seeds 1 --episodes 5 -g breakout,freeway
    python -m wmenv.benchmarks.minatar_100k                         # print this protocol
    python -m wmenv.benchmarks.minatar_100k --reference             # aggregates of the shipped rows
    python -m wmenv.benchmarks.minatar_100k --benchmark --agents ppo-real --seeds 3

Each agent gets ``<out-dir>/<agent>/<Game>/benchmark_results.*`` (the files of ``wmenv benchmark``,
one run per seed), ``<out-dir>/<agent>/scores.json`` (``{game: [score per seed]}``, the format of the
reference files, so ``--reference <out-dir>/<agent>`` works on it) and
``<out-dir>/minatar100k_summary.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from wmenv.benchmarks.adapters import list_agents, resolve_agent_name
from wmenv.benchmarks.metrics import aggregate
from wmenv.benchmarks.model_free import register_model_free_agents
from wmenv.benchmarks.reporting import Table, atomic_write_text, write_json
from wmenv.benchmarks.runner import parse_seeds
from wmenv.core.errors import ConfigError, RunDirError, UnknownNameError, WMEnvError
from wmenv.envs.backends.minatar import (
    DEFAULT_MAX_EPISODE_STEPS,
    DEFAULT_STICKY_ACTION_PROB,
    GAMES,
    resolve_minatar_id,
)

__all__ = [
    "ENV_KWARGS",
    "GAMES",
    "PROTOCOL",
    "SUITE",
    "aggregate_scores",
    "canonical_game",
    "env_id",
    "load_reference",
    "main",
    "normalized",
    "normalized_matrix",
    "reference_aggregates",
    "run_minatar_100k",
]

SUITE = "minatar-100k"
MINATAR_GAMES: tuple[str, ...] = tuple(sorted(GAMES))
PROTOCOL: dict[str, Any] = {
    "suite": SUITE,
    "games": list(MINATAR_GAMES),
    "env_id": "MinAtar/<Game>-v1",
    "agent_steps": 100_000,
    "frameskip": 1,
    "sticky_action_prob": DEFAULT_STICKY_ACTION_PROB,
    "difficulty_ramping": True,
    "max_episode_steps": DEFAULT_MAX_EPISODE_STEPS,
    "eval_episodes": 100,
    "seeds": 5,
    "normalisation": "(score - RANDOM) / (PPO_REAL_1M - RANDOM), per-game means of the reference files",
}
ENV_KWARGS: dict[str, Any] = {
    "sticky_action_prob": DEFAULT_STICKY_ACTION_PROB,
    "difficulty_ramping": True,
    "max_episode_steps": DEFAULT_MAX_EPISODE_STEPS,
}
"""Arguments of ``make_env`` that realise :data:`PROTOCOL` (explicit on purpose)."""

LOW_REFERENCE, HIGH_REFERENCE = "RANDOM", "PPO_REAL_1M"
SUMMARY_JSON, SUMMARY_MD, SCORES_JSON = "minatar100k_summary.json", "minatar100k_summary.md", "scores.json"
_STATS = ("mean", "median", "iqm", "optimality_gap")


def packaged_reference_dir() -> Path:
    """Directory of the reference score files shipped as package data."""
    return Path(str(resources.files("wmenv.benchmarks") / "data" / "minatar100k"))


DEFAULT_REFERENCE_DIR = packaged_reference_dir()


def canonical_game(name: str) -> str:
    """``"breakout"``, ``"MinAtar/Breakout-v1"``, ``"minatar-space_invaders"`` ... -> ``"Breakout"`` ...

    Raises:
        UnknownNameError: Not one of the five games (with close matches).
    """
    text = str(name).strip()
    resolved = resolve_minatar_id(text) or resolve_minatar_id(f"minatar-{text}")
    if resolved is None:
        raise UnknownNameError("MinAtar game", text, MINATAR_GAMES)
    return resolved.split("/", 1)[1].rsplit("-v", 1)[0]


def env_id(game: str) -> str:
    """``"breakout"`` -> ``"MinAtar/Breakout-v1"``."""
    return f"MinAtar/{canonical_game(game)}-v1"


def load_reference(name: str, directory: str | Path | None = None) -> dict[str, list[float]]:
    """``{game: [score per run]}`` of ``<directory>/<name>.json`` (default: the packaged data).

    Raises:
        ConfigError: Missing file, or not a mapping of game names to lists of finite numbers.
    """
    path = Path(directory or DEFAULT_REFERENCE_DIR) / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
        scores = {canonical_game(g): [float(x) for x in v] for g, v in raw.items()}
    except (OSError, ValueError, TypeError, AttributeError, UnknownNameError) as err:
        raise ConfigError(f"cannot read reference scores {path}: {type(err).__name__}: {err}") from err
    if not all(v and np.all(np.isfinite(v)) for v in scores.values()):
        raise ConfigError(f"{path}: every game needs a non-empty list of finite scores")
    return scores


def _bounds(reference_dir: str | Path | None) -> tuple[dict[str, float], dict[str, float]]:
    low = {g: float(np.mean(v)) for g, v in load_reference(LOW_REFERENCE, reference_dir).items()}
    high = {g: float(np.mean(v)) for g, v in load_reference(HIGH_REFERENCE, reference_dir).items()}
    return low, high


def normalized(
    scores: float | Sequence[float] | np.ndarray,
    game: str,
    low: Mapping[str, float] | None = None,
    high: Mapping[str, float] | None = None,
) -> float | np.ndarray:
    """``(score - random) / (ppo_1m - random)`` for one game.

    Args:
        scores: Raw score(s) of ``game``.
        game: Any accepted game name (``"Breakout"``, ``"MinAtar/Breakout-v1"``, ...).
        low: Per-game 0 point (default: the packaged ``RANDOM.json`` means).
        high: Per-game 1 point (default: the packaged ``PPO_REAL_1M.json`` means).

    Raises:
        ConfigError: No reference for ``game``, or equal low and high references.
    """
    key = canonical_game(game)
    if low is None or high is None:
        packaged_low, packaged_high = _bounds(None)
        low, high = low or packaged_low, high or packaged_high
    if key not in low or key not in high:
        raise ConfigError(f"no {LOW_REFERENCE} / {HIGH_REFERENCE} reference score for {key}")
    lo, hi = float(low[key]), float(high[key])
    if hi == lo:
        raise ConfigError(f"{key}: the two reference scores are equal ({lo}); cannot normalise")
    out = (np.asarray(scores, dtype=np.float64) - lo) / (hi - lo)
    return float(out) if out.ndim == 0 else out


def normalized_matrix(
    raw: Mapping[str, Sequence[float]], reference_dir: str | Path | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """``{game: [score per run]}`` -> normalised ``(runs, games)`` matrix over the games with references.

    Returns:
        ``(matrix, games, unnormalised)``: games sorted by name; ``unnormalised`` lists the games
        left out because a reference file has no score for them.

    Raises:
        ConfigError: Games with different numbers of runs, or no game with references.
    """
    low, high = _bounds(reference_dir)
    scores = {canonical_game(g): list(v) for g, v in raw.items()}
    games = sorted(g for g in scores if g in low and g in high)
    missing = sorted(g for g in scores if g not in games)
    lengths = {g: len(scores[g]) for g in games}
    if not games:
        raise ConfigError(f"no reference scores for any of {sorted(scores)}")
    if len(set(lengths.values())) != 1:
        raise ConfigError(f"every game needs the same number of runs, got {lengths}")
    cols = [np.asarray(normalized(scores[g], g, low, high), dtype=np.float64) for g in games]
    return np.stack(cols, axis=1), games, missing


def aggregate_scores(
    raw: Mapping[str, Sequence[float]], reference_dir: str | Path | None = None, reps: int = 2000
) -> dict[str, Any]:
    """Normalised rliable aggregates (mean, median, IQM, optimality gap, 95% CIs) of ``{game: [scores]}``."""
    matrix, games, missing = normalized_matrix(raw, reference_dir)
    agg = aggregate(matrix, reps=reps)
    per_game = dict(zip(games, (float(x) for x in matrix.mean(axis=0))))
    return {**agg, "games": games, "unnormalised_games": missing, "per_game_normalized": per_game}


def reference_aggregates(directory: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Aggregates of every ``<NAME>.json`` in ``directory`` (default: the packaged rows) but ``RANDOM``."""
    path = Path(directory or DEFAULT_REFERENCE_DIR)
    files = sorted(p for p in path.glob("*.json") if p.stem.upper() != LOW_REFERENCE)
    if not files:
        raise ConfigError(f"no score files (<NAME>.json with {{game: [scores]}}) in {path}")
    return {p.stem: aggregate_scores(load_reference(p.stem, path)) for p in files}


def summary_table(rows: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per agent: the four aggregates with CIs, games and runs."""
    table = Table(["agent", *[c for s in _STATS for c in (s, f"{s}_ci_low", f"{s}_ci_high")], "games", "runs"])
    for name, agg in rows.items():
        cells = [c for s in _STATS for c in (agg[s], *agg[f"{s}_ci"])]
        table.add(name, *cells, agg["num_tasks"], agg["num_runs"])
    return table


def _check_out_dir(out: Path, overwrite: bool) -> None:
    found = sorted({*out.rglob("benchmark_results.json"), *out.glob(SUMMARY_JSON)}) if out.exists() else []
    if found and not overwrite:
        raise RunDirError(f"{out} already holds results ({found[0]}, ...); pass --overwrite or another --out-dir")


def run_minatar_100k(
    agents: Sequence[str],
    games: Sequence[str] = MINATAR_GAMES,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    steps: int = 100_000,
    episodes: int = 100,
    out_dir: str | Path = "results/minatar100k",
    device: str = "cpu",
    preset: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    reference_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Trains (``steps`` > 0 and the agent has ``train``) and evaluates agents on the MinAtar games.

    Agents without ``train`` are evaluated untrained (noted), or skipped if they need a checkpoint.

    Returns:
        The summary: ``{"protocol", "agents": {name: {"status", "trained", "note", "scores",
        "aggregate"}}}``, also written to ``<out_dir>/minatar100k_summary.json``.

    Raises:
        RunDirError: ``out_dir`` holds results and ``overwrite`` is false.
        ConfigError / UnknownNameError: Bad budgets, games or agents.
    """
    from wmenv.benchmarks.runner import agent_traits, run_benchmark

    register_model_free_agents()
    if not agents:
        raise ConfigError(f"name the agents to run (registered: {list_agents()})")
    if steps < 0:
        raise ConfigError(f"steps must be >= 0, got {steps}")
    names = list(dict.fromkeys(resolve_agent_name(a) for a in agents))
    game_names = list(dict.fromkeys(canonical_game(g) for g in games))
    if not game_names:
        raise ConfigError(f"no games selected; choose from {list(MINATAR_GAMES)}")
    out = Path(out_dir)
    _check_out_dir(out, overwrite)
    summary: dict[str, Any] = {
        "protocol": {
            **PROTOCOL,
            "agent_steps": steps,
            "eval_episodes": episodes,
            "seeds": list(seeds),
            "games": game_names,
            "env_kwargs": dict(ENV_KWARGS),
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
            entry.update(status="skipped", note="needs training (--steps > 0) or a checkpoint")
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
        entry["scores"] = raw
        try:
            entry["aggregate"] = aggregate_scores(raw, reference_dir)
        except ConfigError as err:  # e.g. measuring the reference rows themselves
            entry.update(aggregate=None, note=f"{entry['note']} not normalised: {err}".strip())
        else:
            if entry["aggregate"]["unnormalised_games"]:
                entry["note"] += f" no reference for {entry['aggregate']['unnormalised_games']}: left out"
        summary["agents"][name] = entry
    write_json(out / SUMMARY_JSON, summary)
    done = {n: e["aggregate"] for n, e in summary["agents"].items() if e.get("aggregate")}
    md = ["# MinAtar 100k (normalised: 0 = random, 1 = PPO on the real env at 1M steps; 95% CIs)", ""]
    md += [summary_table(done).to_markdown()] if done else ["(no normalised scores)", ""]
    md += ["Raw scores (mean return per seed):", ""]
    md += [f"- {n} {g}: {v}" for n, e in summary["agents"].items() for g, v in e.get("scores", {}).items()]
    md += [""]
    md += [f"- {n}: {e['status']} {e['note'].strip()}" for n, e in summary["agents"].items() if e["note"]]
    atomic_write_text(out / SUMMARY_MD, "\n".join(md) + "\n")
    return summary


def format_aggregates(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Printable lines: mean, median, IQM, optimality gap and the IQM CI of each row."""
    lines = [f"{'':14s} {'mean':>7s} {'median':>7s} {'IQM':>7s} {'opt.gap':>7s}  IQM 95% CI"]
    for name, a in rows.items():
        lo, hi = a["iqm_ci"]
        stats = " ".join(f"{a[k]:7.3f}" for k in _STATS)
        lines.append(f"{name:14s} {stats}  [{lo:.3f}, {hi:.3f}]  ({a['num_runs']} runs x {a['num_tasks']} games)")
    return lines


def format_raw_scores(name: str, scores: Mapping[str, Sequence[float]]) -> list[str]:
    """Printable lines: the mean return over seeds of each game, and the per-seed values."""
    return [
        f"{name} {game:14s} {float(np.mean(v)):9.3f}  (per seed: {', '.join(f'{x:.3f}' for x in v)})"
        for game, v in scores.items()
    ]


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python -m wmenv.benchmarks.minatar_100k``."""
    parser = argparse.ArgumentParser(
        prog="python -m wmenv.benchmarks.minatar_100k",
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
        help="print aggregates of the <NAME>.json score files in DIR (default: the rows shipped with wmenv)",
    )
    parser.add_argument("--agents", type=lambda s: [a for a in s.split(",") if a], default=["ppo-real"])
    parser.add_argument("--games", default="all", help="comma list of games, or 'all' for the five (default)")
    parser.add_argument("--seeds", type=parse_seeds, default=list(range(5)), help="N or 0,1,2 (default: 5)")
    parser.add_argument("--steps", type=int, default=100_000, help="real agent steps of training (0: none)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per seed (default 100)")
    parser.add_argument("--out-dir", "--out_dir", dest="out_dir", default="results/minatar100k")
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
                raise ConfigError(f"reference directory {args.reference} does not exist; pass --reference DIR")
            print("\n".join(format_aggregates(reference_aggregates(args.reference))))
            print(f"scores: {Path(args.reference).resolve()}")
            return 0
        if not args.benchmark:
            print(__doc__)
            return 0
        if args.episodes < 1:
            raise ConfigError(f"need --episodes >= 1, got {args.episodes}")
        games = MINATAR_GAMES if args.games == "all" else [g for g in args.games.split(",") if g]
        if args.device is None:
            from wmenv.benchmarks.runner import default_device

            args.device = default_device()
        summary = run_minatar_100k(
            args.agents, games, args.seeds, args.steps, args.episodes, args.out_dir, args.device,
            args.preset, args.overwrite, args.progress,
        )
    except WMEnvError as err:
        if not isinstance(err, ValueError | KeyError):
            raise
        print(f"minatar_100k: error: {err}", file=sys.stderr)
        return 2
    for name, entry in summary["agents"].items():
        print("\n".join(format_raw_scores(name, entry.get("scores", {}))))
    ok = {n: e["aggregate"] for n, e in summary["agents"].items() if e.get("aggregate")}
    print("\n".join(format_aggregates(ok)))
    for name, entry in summary["agents"].items():
        if entry["note"]:
            print(f"{name}: {entry['status']}: {entry['note'].strip()}", file=sys.stderr)
    print(f"results: {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
