"""Aggregate statistics for benchmark scores (pure NumPy).

Scores are arranged as a ``score_matrix`` of shape ``(runs, tasks)``: one row per independent run
(seed), one column per task (game / env). The definitions follow rliable (Agarwal et al., 2021,
"Deep RL at the Edge of the Statistical Precipice"), which is what published Atari 100k numbers
(IRIS, DIAMOND, ...) use:

- ``mean``   = mean over tasks of the per-task mean over runs,
- ``median`` = median over tasks of the per-task mean over runs,
- ``iqm``    = 25% trimmed mean over all runs x tasks pooled,
- ``optimality_gap`` = ``threshold - mean(min(score, threshold))`` over all runs x tasks pooled.

Confidence intervals come from a stratified percentile bootstrap that resamples runs with
replacement independently within each task.

A 1-D array is read as a single task with several runs, i.e. shape ``(runs, 1)``. Note that for a
single task the rliable median equals the mean (the median of one per-task mean); to summarise the
spread of runs of one task use :func:`summarize_runs`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from wmenv.core.errors import ConfigError, UnknownNameError

__all__ = [
    "ATARI_100K_GAMES",
    "HUMAN_SCORES",
    "RANDOM_SCORES",
    "aggregate",
    "canonical_game",
    "human_normalized",
    "human_normalized_matrix",
    "iqm",
    "mean",
    "median",
    "optimality_gap",
    "stratified_bootstrap_ci",
    "summarize_runs",
    "superhuman_count",
    "trimmed_mean",
]

# Standard Atari 100k reference scores (random policy and human player), as used by DreamerV3's
# baselines, IRIS, DIAMOND and most Atari 100k papers.
RANDOM_SCORES: dict[str, float] = {
    "Alien": 227.8,
    "Amidar": 5.8,
    "Assault": 222.4,
    "Asterix": 210.0,
    "BankHeist": 14.2,
    "BattleZone": 2360.0,
    "Boxing": 0.1,
    "Breakout": 1.7,
    "ChopperCommand": 811.0,
    "CrazyClimber": 10780.5,
    "DemonAttack": 152.1,
    "Freeway": 0.0,
    "Frostbite": 65.2,
    "Gopher": 257.6,
    "Hero": 1027.0,
    "Jamesbond": 29.0,
    "Kangaroo": 52.0,
    "Krull": 1598.0,
    "KungFuMaster": 258.5,
    "MsPacman": 307.3,
    "Pong": -20.7,
    "PrivateEye": 24.9,
    "Qbert": 163.9,
    "RoadRunner": 11.5,
    "Seaquest": 68.4,
    "UpNDown": 533.4,
}
HUMAN_SCORES: dict[str, float] = {
    "Alien": 7127.7,
    "Amidar": 1719.5,
    "Assault": 742.0,
    "Asterix": 8503.3,
    "BankHeist": 753.1,
    "BattleZone": 37187.5,
    "Boxing": 12.1,
    "Breakout": 30.5,
    "ChopperCommand": 7387.8,
    "CrazyClimber": 35829.4,
    "DemonAttack": 1971.0,
    "Freeway": 29.6,
    "Frostbite": 4334.7,
    "Gopher": 2412.5,
    "Hero": 30826.4,
    "Jamesbond": 302.8,
    "Kangaroo": 3035.0,
    "Krull": 2665.5,
    "KungFuMaster": 22736.3,
    "MsPacman": 6951.6,
    "Pong": 14.6,
    "PrivateEye": 69571.3,
    "Qbert": 13455.0,
    "RoadRunner": 7845.0,
    "Seaquest": 42054.7,
    "UpNDown": 11693.2,
}
ATARI_100K_GAMES: tuple[str, ...] = tuple(sorted(HUMAN_SCORES))

AggregateFn = Callable[[np.ndarray], float]


def _as_matrix(scores: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> np.ndarray:
    """Returns ``scores`` as a float ``(runs, tasks)`` matrix; 1-D input is one task."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.size == 0:
        raise ConfigError(
            f"expected a non-empty score matrix of shape (runs, tasks) or a 1-D array of runs, "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ConfigError("scores contain NaN or inf; drop or fix the failed runs before aggregating")
    return arr


def trimmed_mean(scores: np.ndarray | Sequence[float], proportion: float = 0.25) -> float:
    """Mean after cutting ``int(proportion * n)`` values from each end of the pooled, sorted scores.

    Same semantics as ``scipy.stats.trim_mean(np.ravel(scores), proportion)``.

    Args:
        scores: Any array of scores; it is flattened.
        proportion: Fraction cut from each end, in ``[0, 0.5)``.

    Returns:
        The trimmed mean.
    """
    if not 0.0 <= proportion < 0.5:
        raise ConfigError(f"trim proportion must be in [0, 0.5), got {proportion}")
    flat = np.sort(_as_matrix(np.ravel(scores)).ravel())
    cut = int(proportion * flat.size)
    return float(flat[cut : flat.size - cut].mean())


def iqm(scores: np.ndarray | Sequence[float]) -> float:
    """Interquartile mean: the 25% trimmed mean over all runs x tasks pooled."""
    return trimmed_mean(scores, 0.25)


def mean(score_matrix: np.ndarray | Sequence) -> float:
    """Mean over tasks of the per-task mean over runs. ``score_matrix``: ``(runs, tasks)``."""
    return float(_as_matrix(score_matrix).mean(axis=0).mean())


def median(score_matrix: np.ndarray | Sequence) -> float:
    """Median over tasks of the per-task mean over runs. ``score_matrix``: ``(runs, tasks)``."""
    return float(np.median(_as_matrix(score_matrix).mean(axis=0)))


def optimality_gap(scores: np.ndarray | Sequence, threshold: float = 1.0) -> float:
    """How far scores fall short of ``threshold``: ``threshold - mean(min(scores, threshold))``."""
    arr = _as_matrix(scores)
    return float(threshold - np.minimum(arr, threshold).mean())


def stratified_bootstrap_ci(
    score_matrix: np.ndarray | Sequence,
    aggregate_fn: AggregateFn,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval, resampling runs within each task.

    Each replicate draws, for every task independently, ``runs`` run indices with replacement
    and evaluates ``aggregate_fn`` on the resampled ``(runs, tasks)`` matrix.

    Args:
        score_matrix: Scores, shape ``(runs, tasks)`` (1-D = one task).
        aggregate_fn: Maps a ``(runs, tasks)`` matrix to a scalar (e.g. :func:`iqm`).
        reps: Number of bootstrap replicates.
        alpha: Two-sided level; the interval covers ``1 - alpha``.
        seed: Seed of the resampling generator (same seed, same interval).

    Returns:
        ``(lo, hi)``. With a single run per task the interval collapses to the point estimate.
    """
    arr = _as_matrix(score_matrix)
    if reps < 1:
        raise ConfigError(f"reps must be >= 1, got {reps}")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    runs, tasks = arr.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = arr[idx, np.arange(tasks)]  # (reps, runs, tasks)
    stats = np.fromiter((aggregate_fn(m) for m in resampled), dtype=np.float64, count=reps)
    lo, hi = np.percentile(stats, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(lo), float(hi)


def aggregate(
    score_matrix: np.ndarray | Sequence,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int | None = 0,
    threshold: float = 1.0,
) -> dict[str, float | int | list[float]]:
    """rliable aggregates of a ``(runs, tasks)`` matrix with stratified bootstrap CIs.

    Returns:
        ``{"mean", "median", "iqm", "optimality_gap"}`` point estimates, each with a
        ``"<name>_ci": [lo, hi]`` entry, plus ``"num_runs"``, ``"num_tasks"``, ``"ci_level"``
        and ``"bootstrap_reps"``.
    """
    arr = _as_matrix(score_matrix)
    fns: dict[str, AggregateFn] = {
        "mean": mean,
        "median": median,
        "iqm": iqm,
        "optimality_gap": lambda m: optimality_gap(m, threshold),
    }
    return _with_cis(arr, fns, reps, alpha, seed)


def summarize_runs(
    values: np.ndarray | Sequence[float], reps: int = 2000, alpha: float = 0.05, seed: int | None = 0
) -> dict[str, float | int | list[float]]:
    """Mean, median, IQM and std of the runs of ONE task, with bootstrap CIs over runs.

    Unlike :func:`aggregate` (whose median is over tasks), the median here is over runs.

    Args:
        values: One score per run (e.g. per-seed mean returns), shape ``(runs,)``.
        reps: Bootstrap replicates.
        alpha: Two-sided level.
        seed: Resampling seed.
    """
    arr = _as_matrix(np.ravel(values))
    fns: dict[str, AggregateFn] = {"mean": np.mean, "median": np.median, "iqm": iqm}
    out = _with_cis(arr, fns, reps, alpha, seed)
    out["std"] = float(arr.std(ddof=1)) if arr.shape[0] > 1 else 0.0
    return out


def _with_cis(
    arr: np.ndarray, fns: Mapping[str, AggregateFn], reps: int, alpha: float, seed: int | None
) -> dict[str, float | int | list[float]]:
    out: dict[str, float | int | list[float]] = {}
    for name, fn in fns.items():
        out[name] = float(fn(arr))
        out[f"{name}_ci"] = list(stratified_bootstrap_ci(arr, fn, reps=reps, alpha=alpha, seed=seed))
    out.update(num_runs=int(arr.shape[0]), num_tasks=int(arr.shape[1]), ci_level=1.0 - alpha)
    out["bootstrap_reps"] = int(reps)
    return out


_GAME_KEYS = {name.lower(): name for name in HUMAN_SCORES}


def canonical_game(name: str) -> str:
    """Maps ``"ALE/Pong-v5"``, ``"PongNoFrameskip-v4"``, ``"pong"`` ... to the table key ``"Pong"``."""
    base = name.split("/")[-1]
    base = re.sub(r"-v\d+$", "", base)
    base = re.sub(r"(NoFrameskip|Deterministic)$", "", base)
    key = base.replace("_", "").replace("-", "").lower()
    if key not in _GAME_KEYS:
        raise UnknownNameError("Atari 100k game", name, HUMAN_SCORES)
    return _GAME_KEYS[key]


def human_normalized(scores: float | np.ndarray | Sequence[float], game: str) -> np.ndarray | float:
    """``(score - random) / (human - random)`` with the standard Atari reference scores.

    Args:
        scores: Raw score(s) of ``game``.
        game: Game name or env id (``"Pong"``, ``"ALE/Pong-v5"``, ``"PongNoFrameskip-v4"``).

    Returns:
        Human-normalised score(s), a float for scalar input else an array of the input's shape.
    """
    key = canonical_game(game)
    rnd, hum = RANDOM_SCORES[key], HUMAN_SCORES[key]
    out = (np.asarray(scores, dtype=np.float64) - rnd) / (hum - rnd)
    return float(out) if out.ndim == 0 else out


def human_normalized_matrix(raw: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, list[str]]:
    """Turns ``{game: [score per run]}`` into a human-normalised ``(runs, games)`` matrix.

    Games are sorted by name; every game must have the same number of runs.

    Returns:
        ``(matrix, games)``.
    """
    games = sorted(raw)
    lengths = {g: len(raw[g]) for g in games}
    if len(set(lengths.values())) != 1:
        raise ConfigError(f"every game needs the same number of runs, got {lengths}")
    cols = [np.asarray(human_normalized(list(raw[g]), g), dtype=np.float64) for g in games]
    return np.stack(cols, axis=1), games


def superhuman_count(score_matrix: np.ndarray | Sequence, threshold: float = 1.0) -> int:
    """Number of tasks whose mean normalised score over runs reaches ``threshold`` (>=)."""
    return int((_as_matrix(score_matrix).mean(axis=0) >= threshold).sum())
