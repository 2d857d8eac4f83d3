"""`wmenv imagine` (real env next to the model on the same actions) and the video helpers."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from wmenv.benchmarks.imagine import imagine_rollout
from wmenv.cli import main
from wmenv.core.errors import ConfigError
from wmenv.video import check_video_path, comparison_frames, side_by_side, write_video


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Dreamer trained for a few updates on CartPole (it records its env)."""
    from wmenv.cli.train import main as train_main

    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("imagine") / "run"
    argv = ["train", "dreamer", "--env", "CartPole-v1", "--preset", "tiny", "--steps", "2", "--seed-steps", "120",
            "--run-dir", str(run), "--no-progress"]
    assert train_main(argv) == 0
    return run


@pytest.mark.parametrize("suffix", ["gif", "mp4"])
def test_imagine_writes_video(checkpoint: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"rollout.{suffix}"
    assert main(["imagine", "--checkpoint", str(checkpoint), "--out", str(out), "--steps", "4", "--context", "3"]) == 0
    frames = iio.imread(out)
    assert frames.ndim == 4 and 2 <= frames.shape[0] <= 5 and frames.shape[-1] == 3


def test_imagine_rollout_starts_from_the_real_context(checkpoint: Path) -> None:
    roll = imagine_rollout(checkpoint, steps=3, context=2, seed=1)
    assert roll["env_id"] == "CartPole-v1" and roll["policy"] == "model"
    assert roll["real"].shape == roll["imagined"].shape and roll["real"].shape[1:] == (4,)
    np.testing.assert_allclose(roll["imagined"][0], roll["real"][0])  # the last real context observation
    assert len(roll["actions"]) == len(roll["real"]) - 1 == len(roll["imagined_rewards"])
    again = imagine_rollout(checkpoint, steps=3, context=2, seed=1)
    np.testing.assert_array_equal(again["imagined"], roll["imagined"])


def test_imagine_errors(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gif = str(tmp_path / "x.gif")
    assert main(["imagine", "--checkpoint", str(tmp_path / "missing"), "--out", gif]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["imagine", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.avi")]) == 2
    err = capsys.readouterr().err
    assert "unsupported video file" in err and "got suffix '.avi'" in err
    assert main(["imagine", "--checkpoint", str(checkpoint), "--out", gif, "--env", "MountainCar-v0"]) == 2
    err = capsys.readouterr().err
    assert "MountainCar-v0 has observation space Box" in err and "(2,)" in err and "(4,)" in err
    assert not Path(gif).exists()


def test_imagine_needs_env_when_checkpoint_has_none(checkpoint: Path, tmp_path: Path) -> None:
    data = torch.load(checkpoint / "checkpoint.pt", weights_only=True)
    data["extra"]["user_state"] = {}
    data["extra"].pop("run", None)  # runs of schema 2 record their env in extra["run"]
    bare = tmp_path / "bare.pt"
    torch.save(data, bare)
    with pytest.raises(ConfigError, match="does not record its env; pass --env"):
        imagine_rollout(bare, steps=1, context=1)
    assert imagine_rollout(bare, "CartPole-v1", steps=1, context=1)["real"].shape == (2, 4)


def test_video_helpers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"expected a name ending in \.mp4 or \.gif"):
        check_video_path("a.webm")
    img = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    pair = side_by_side(img, img[::-1])
    assert len(pair) == 3 and pair[0].shape == (16 + 128, 2 * 128 + 4, 3)
    with pytest.raises(ConfigError, match="as many real as imagined"):
        side_by_side(img, img[:2])
    plots = comparison_frames(np.zeros((3, 2)), np.ones((3, 2)))
    assert len(plots) == 3 and plots[0].ndim == 3 and not np.array_equal(plots[0], plots[-1])
    with pytest.raises(ConfigError, match="one size"):
        write_video([img[0], img[0, :32]], tmp_path / "bad.gif")
    write_video(pair, tmp_path / "pair.mp4", fps=5)
    assert iio.imread(tmp_path / "pair.mp4").shape[0] == 3
