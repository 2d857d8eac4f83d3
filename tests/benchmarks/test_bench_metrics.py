"""Statistics: golden Atari 100k aggregates (IRIS, DIAMOND) and hand-computed small cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wmenv.benchmarks import metrics as M
from wmenv.benchmarks.atari_100k import packaged_reference_dir
from wmenv.core.errors import ConfigError, UnknownNameError

DATA_DIR = packaged_reference_dir()  # wmenv/benchmarks/data/atari100k, shipped in the wheel


def _load(name: str) -> dict[str, list[float]]:
    return json.loads((DATA_DIR / f"{name}.json").read_text())


@pytest.mark.parametrize(
    ("name", "expected"), [("IRIS", (1.046, 0.289, 0.501)), ("DIAMOND", (1.459, 0.373, 0.641))]
)
def test_published_aggregates_are_reproduced(name: str, expected: tuple[float, float, float]) -> None:
    matrix, games = M.human_normalized_matrix(_load(name))
    assert matrix.shape == (5, 26) and games == sorted(M.ATARI_100K_GAMES)
    got = (M.mean(matrix), M.median(matrix), M.iqm(matrix))
    assert [round(x, 3) for x in got] == list(expected)
    agg = M.aggregate(matrix, reps=500)
    assert [round(agg[k], 3) for k in ("mean", "median", "iqm")] == list(expected)


def test_superhuman_counts_match_papers() -> None:
    assert M.superhuman_count(M.human_normalized_matrix(_load("IRIS"))[0]) == 10
    assert M.superhuman_count(M.human_normalized_matrix(_load("DIAMOND"))[0]) == 11


def test_embedded_reference_tables_match_packaged_files() -> None:
    assert {g: [v] for g, v in M.RANDOM_SCORES.items()} == _load("RANDOM")
    assert {g: [v] for g, v in M.HUMAN_SCORES.items()} == _load("HUMAN")
    assert len(M.ATARI_100K_GAMES) == 26


@pytest.mark.parametrize(
    ("values", "expected"),
    [(range(1, 9), 4.5), (range(1, 5), 2.5), (range(1, 11), 5.5), ([7.0], 7.0), ([1, 2, 3, 100], 2.5)],
)
def test_iqm_hand_computed(values: range, expected: float) -> None:
    assert M.iqm(list(values)) == pytest.approx(expected)


def test_iqm_pools_runs_and_tasks_and_matches_scipy() -> None:
    from scipy import stats as scipy_stats  # installed with dm-control, a dependency of wmenv

    rng = np.random.default_rng(0)
    for shape in [(5, 26), (3, 1), (7, 3), (1, 9)]:
        x = rng.normal(size=shape)
        assert M.iqm(x) == pytest.approx(scipy_stats.trim_mean(x.ravel(), 0.25))
    assert M.iqm(np.arange(1, 9).reshape(2, 4)) == pytest.approx(4.5)


def test_mean_and_median_are_over_per_task_means() -> None:
    m = np.array([[1.0, 10.0, 0.0], [3.0, 20.0, 0.0]])  # per-task means 2, 15, 0
    assert M.mean(m) == pytest.approx(17 / 3)
    assert M.median(m) == pytest.approx(2.0)


def test_optimality_gap() -> None:
    assert M.optimality_gap([0.5, 1.5, 1.0, 0.0]) == pytest.approx(0.375)
    assert M.optimality_gap([[2.0, 3.0]], threshold=2.5) == pytest.approx(0.25)


def test_bootstrap_ci_contains_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    m = rng.normal(loc=1.0, size=(10, 4))
    lo, hi = M.stratified_bootstrap_ci(m, M.iqm, reps=500, seed=3)
    assert lo < M.iqm(m) < hi
    assert (lo, hi) == M.stratified_bootstrap_ci(m, M.iqm, reps=500, seed=3)
    assert (lo, hi) != M.stratified_bootstrap_ci(m, M.iqm, reps=500, seed=4)
    lo90, hi90 = M.stratified_bootstrap_ci(m, M.iqm, reps=500, alpha=0.1, seed=3)
    assert lo <= lo90 and hi90 <= hi


def test_bootstrap_resamples_within_each_task() -> None:
    m = np.array([[0.0, 1.0]] * 6)  # every task constant: any stratified resample has mean 0.5
    assert M.stratified_bootstrap_ci(m, M.mean, reps=200) == (0.5, 0.5)
    assert M.stratified_bootstrap_ci([[4.0, 2.0]], M.mean, reps=50) == (3.0, 3.0)  # one run: no spread


def test_single_task_case() -> None:
    runs = [1.0, 2.0, 3.0, 10.0]
    agg = M.aggregate(runs, reps=200)
    assert agg["num_runs"] == 4 and agg["num_tasks"] == 1
    assert agg["mean"] == agg["median"] == pytest.approx(4.0)  # rliable median: over task means
    assert agg["iqm"] == pytest.approx(2.5)
    summary = M.summarize_runs(runs, reps=200)
    assert summary["median"] == pytest.approx(2.5) and summary["iqm"] == pytest.approx(2.5)
    assert summary["std"] == pytest.approx(np.std(runs, ddof=1))
    assert summary["mean_ci"][0] <= 4.0 <= summary["mean_ci"][1]


def test_human_normalized_and_game_names() -> None:
    assert M.human_normalized(-20.7, "Pong") == pytest.approx(0.0)
    assert M.human_normalized(14.6, "ALE/Pong-v5") == pytest.approx(1.0)
    np.testing.assert_allclose(M.human_normalized([0.1, 12.1], "BoxingNoFrameskip-v4"), [0.0, 1.0])
    assert M.canonical_game("kung_fu_master") == "KungFuMaster"
    assert M.canonical_game("UpNDown-v5") == "UpNDown"
    with pytest.raises(UnknownNameError, match="did you mean 'Pong'"):
        M.human_normalized(1.0, "Pongg")


def test_invalid_inputs_raise_typed_errors() -> None:
    with pytest.raises(ConfigError, match="NaN or inf"):
        M.iqm([1.0, float("nan")])
    with pytest.raises(ConfigError, match="shape"):
        M.mean(np.zeros((2, 2, 2)))
    with pytest.raises(ConfigError, match="same number of runs"):
        M.human_normalized_matrix({"Pong": [1.0], "Boxing": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="alpha"):
        M.stratified_bootstrap_ci([1.0, 2.0], M.mean, alpha=1.5)
