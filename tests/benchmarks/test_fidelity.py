"""World-model fidelity: open-loop errors vs horizon, PSNR, evaluate-model files, imagination gap."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical

from wmenv.benchmarks.fidelity import OpenLoopErrors, collect_heldout, open_loop_errors, psnr
from wmenv.cli import main
from wmenv.core.errors import UnsupportedSpaceError
from wmenv.runs import open_run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Dreamer (world model + policy) trained for a few updates on CartPole."""
    from wmenv.cli.train import main as train_main

    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("fidelity") / "run"
    argv = ["train", "dreamer", "--env", "CartPole-v1", "--preset", "tiny", "--steps", "3", "--seed-steps", "150",
            "--run-dir", str(run), "--no-progress"]
    assert train_main(argv) == 0
    return run


class ConstantImageModel:
    """Predicts a mid-grey 8x8 image, zero reward and no termination, whatever the state."""

    observation_spec = Bounded(0, 255, shape=(8, 8, 3), dtype=torch.uint8)
    action_spec = Categorical(2, shape=(), dtype=torch.int64)

    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        b = context.batch_size[0]
        obs = context["observation"][:, -1]
        return TensorDict({"state": {"t": torch.zeros(b)}, "observation": obs}, batch_size=[b])

    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        b = state.batch_size[0]
        return TensorDict(
            {"state": state, "observation": torch.full((b, 8, 8, 3), 128, dtype=torch.uint8),
             "reward": torch.zeros(b), "terminated": torch.zeros(b, dtype=torch.bool)},
            batch_size=[b],
        )


def _pixel_rows(n: int = 20) -> TensorDict:
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (n, 8, 8, 3), generator=g, dtype=torch.uint8)
    first = torch.zeros(n, dtype=torch.bool)
    first[0] = True
    term = torch.zeros(n, dtype=torch.bool)
    term[-1] = True
    return TensorDict(
        {"observation": obs, "action": torch.zeros(n, dtype=torch.int64), "reward": (~first).float(),
         "terminated": term, "truncated": torch.zeros(n, dtype=torch.bool), "is_first": first,
         "is_last": term, "episode": torch.zeros(n, dtype=torch.int64)},
        batch_size=[n],
    )


def test_psnr_on_arrays() -> None:
    real = np.zeros((2, 4, 4, 3))
    pred = np.full((2, 4, 4, 3), 0.1)
    np.testing.assert_allclose(psnr(pred, real), [20.0, 20.0])
    assert np.isinf(psnr(real, real)).all()
    u8 = np.full((1, 4, 4, 3), 255, np.uint8)
    np.testing.assert_allclose(psnr(np.zeros_like(u8), u8, max_value=255.0), [0.0])


def test_open_loop_errors_pixels_match_numpy() -> None:
    rows, context, horizon = _pixel_rows(20), 2, 3
    err = open_loop_errors(ConstantImageModel(), rows, horizon, context, max_windows=1000)
    real = rows["observation"].numpy().astype(np.float64) / 255.0
    row_mse = ((128 / 255.0 - real) ** 2).reshape(20, -1).mean(1)
    starts = np.arange(20 - context)  # every start whose first predicted row exists
    for h in range(horizon):
        rows_h = starts + context + h
        rows_h = rows_h[rows_h < 20]
        assert err.counts[h] == len(rows_h)
        assert err.mse[h] == pytest.approx(row_mse[rows_h].mean())
        assert err.psnr[h] == pytest.approx((10 * np.log10(1 / row_mse[rows_h])).mean())
    assert err.observation_kind == "image" and err.reward_mae == pytest.approx([1.0] * horizon)
    term = err.to_dict()["termination"]
    assert term["actual"] == 3 and term["predicted"] == 0 and term["recall"] == 0.0 and term["precision"] is None


def test_open_loop_errors_vector_checkpoint(checkpoint: Path) -> None:
    world_model = open_run(checkpoint).world_model("decoded")
    data = collect_heldout("CartPole-v1", 200, seed=123)
    err = open_loop_errors(world_model, data, horizon=5, context=3, seed=0)
    assert isinstance(err, OpenLoopErrors) and err.observation_kind == "vector" and err.psnr is None
    assert len(err.mse) == len(err.reward_mae) == len(err.counts) == 5
    assert all(np.isfinite(err.mse)) and err.counts == sorted(err.counts, reverse=True)
    assert err.windows == err.counts[0] > 0
    again = open_loop_errors(world_model, data, horizon=5, context=3, seed=0)
    assert again.mse == err.mse  # seeded: windows and model samples repeat


def test_open_loop_errors_refuses_latent_observations(checkpoint: Path) -> None:
    latent = open_run(checkpoint).world_model("latent")
    with pytest.raises(UnsupportedSpaceError, match="observation_mode='decoded'"):
        open_loop_errors(latent, collect_heldout("CartPole-v1", 50, seed=1), horizon=2, context=2)


def test_evaluate_model_writes_files_and_gap(checkpoint: Path, tmp_path: Path, ppo_cartpole: Path) -> None:
    out = tmp_path / "fid"
    argv = ["evaluate-model", "--checkpoint", str(checkpoint), "--out-dir", str(out), "--horizon", "4",
            "--context", "3", "--heldout-steps", "150", "--policy", str(ppo_cartpole), "--gap-episodes", "1"]
    assert main(argv) == 0
    res = json.loads((out / "fidelity.json").read_text())
    assert res["env_id"] == "CartPole-v1" and res["heldout"]["seed"] == 10_000
    assert len(res["open_loop"]["mse"]) == 4
    with (out / "fidelity.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [int(r["horizon"]) for r in table] == [1, 2, 3, 4]
    assert float(table[0]["mse"]) == pytest.approx(res["open_loop"]["mse"][0], rel=1e-4)
    assert (out / "mse_vs_horizon.png").read_bytes()[:4] == b"\x89PNG"
    import imageio.v3 as iio

    assert iio.imread(out / "rollout_0.gif").ndim == 4 and (out / "rollout_0.mp4").stat().st_size > 0
    gap = res["imagination_gap"]
    assert gap["observation_mode"] == "decoded" and gap["gap"] == pytest.approx(gap["imagined_mean"] - gap["real_mean"])
    assert main(argv) == 2  # results are never overwritten silently


def test_evaluate_model_errors(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate-model", "--checkpoint", str(tmp_path / "none"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    argv = ["evaluate-model", "--checkpoint", str(checkpoint), "--env", "MountainCar-v0", "--out-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "MountainCar-v0 has observation space Box" in err and "(4,)" in err and "(2,)" in err
