"""The generic Trainer: loss contract, optimisation, logging, checkpoint + resume with RNG."""

from __future__ import annotations

import csv
import random

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import TensorDict

from wmenv.core.errors import ConfigError, ModelOutputError, RunDirError
from wmenv.registry import create_model
from wmenv.train import Trainer, TrainerConfig, plot_metrics, replay_as_tensordict, sample_sequences

from .testfamily import MLPConfig


def _trainer(replay, run_dir, config=None, **tkw):
    config = config or MLPConfig.tiny()
    env = gym.make("CartPole-v1")
    model = create_model("test_mlp", env=env, config=config)
    tconf = TrainerConfig(
        **{
            **dict(
                batch_size=8,
                seq_len=8,
                lr=1e-3,
                log_every=5,
                checkpoint_every=0,
                progress=False,
                tensorboard=False,
            ),
            **tkw,
        }
    )
    return Trainer(model, replay, tconf, run_dir, model_name="test_mlp", model_config=config)


def test_config_validation():
    with pytest.raises(ConfigError, match=r"TrainerConfig.batch_size must be an int >= 1, got 0"):
        TrainerConfig(batch_size=0)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        TrainerConfig(lr=0.0)
    with pytest.raises(ConfigError, match="grad_clip > 0 or None, got 0.0 and -1.0"):
        TrainerConfig(grad_clip=-1.0)
    with pytest.raises(ConfigError, match="not a torch device"):
        TrainerConfig(device="toaster")
    assert TrainerConfig.tiny().batch_size == 4


def test_loss_decreases_on_a_fixed_batch(cartpole_replay, tmp_path):
    torch.manual_seed(0)
    trainer = _trainer(cartpole_replay, tmp_path)
    batch = sample_sequences(cartpole_replay, 8, 8)
    losses = [float(trainer.update(batch)["loss"]) for _ in range(150)]
    assert losses[-1] < 0.2 * losses[0]
    assert trainer.step == 150 and trainer.model.updates == 150  # after_update hook called


def test_optim_groups_clip_and_metrics(cartpole_replay, tmp_path):
    trainer = _trainer(cartpole_replay, tmp_path, config=MLPConfig(hidden=16, two_groups=True))
    assert set(trainer.optimizers) == {"obs", "reward"}
    assert trainer.optimizers["reward"].param_groups[0]["lr"] == 1e-3
    metrics = trainer.update(sample_sequences(cartpole_replay, 8, 8))
    assert {"loss", "loss_obs", "loss_reward", "obs_abs_mean", "grad_norm/obs", "grad_norm/reward"} <= set(
        metrics
    )
    assert float(metrics["loss"]) == pytest.approx(
        float(metrics["loss_obs"] + metrics["loss_reward"]), rel=1e-5
    )


class _BadModel(torch.nn.Module):
    def __init__(self, out):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.out = out
        self.observation_space = gym.spaces.Box(-1, 1, (4,))
        self.action_space = gym.spaces.Discrete(2)

    def loss(self, batch):
        return self.out(self.w)


@pytest.mark.parametrize(
    ("out", "error", "match"),
    [
        (lambda w: TensorDict({"metric": w.detach()}, []), ModelOutputError, "no .loss_\\*. entry"),
        (
            lambda w: {"loss_x": w * float("nan")},
            ModelOutputError,
            r"non-finite loss at step 1: \['loss_x'\]",
        ),
        (lambda w: {"loss_x": w * torch.ones(3)}, ModelOutputError, "loss_x must be a scalar"),
        (lambda w: w, ModelOutputError, "must return a TensorDict"),
    ],
)
def test_loss_contract_errors(cartpole_replay, tmp_path, out, error, match):
    trainer = Trainer(
        _BadModel(out),
        cartpole_replay,
        TrainerConfig(progress=False, tensorboard=False),
        tmp_path,
        model_name="bad",
        model_config=MLPConfig(),
        family="bad",
    )
    with pytest.raises(error, match=match):
        trainer.update(sample_sequences(cartpole_replay, 2, 4))


def test_train_repeatedly_logs_csv_history_and_plot(cartpole_replay, tmp_path):
    trainer = _trainer(cartpole_replay, tmp_path, tensorboard=True)
    trainer.train(12)
    trainer.train(8)
    trainer.close()
    assert trainer.step == 20
    assert [h["step"] for h in trainer.history] == [5, 10, 12, 15, 20]
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "key", "value"]
    keys = {r[1] for r in rows[1:]}
    assert {"loss", "loss_obs", "loss_reward", "grad_norm/model", "lr/model"} <= keys
    assert any((tmp_path / "tb").iterdir())
    png = plot_metrics(tmp_path / "metrics.csv", tmp_path / "m.png")
    assert png.stat().st_size > 1000
    with pytest.raises(ValueError, match="available keys"):
        plot_metrics(tmp_path / "metrics.csv", tmp_path / "m.png", keys=["nope"])


def test_checkpoint_every_writes_atomically_and_snapshots_replay(cartpole_replay, tmp_path):
    trainer = _trainer(cartpole_replay, tmp_path, checkpoint_every=10)
    trainer.train(25)
    assert (tmp_path / "checkpoint.pt").is_file()
    snaps = sorted(p.name for p in tmp_path.glob("replay-*"))
    assert snaps == [f"replay-{cartpole_replay.write_count:012d}"]
    assert not list(tmp_path.glob(".checkpoint.pt.tmp*"))


def test_resume_restores_everything_and_continues_identically(cartpole_replay, tmp_path):
    torch.manual_seed(1)
    trainer = _trainer(cartpole_replay, tmp_path, config=MLPConfig(hidden=16, two_groups=True))
    trainer.train(10)
    trainer.user_state["note"] = 3
    trainer.save()
    # what the original run does next, RNG draws included
    expected = [float(trainer.update(sample_sequences(trainer.replay, 8, 8))["loss"]) for _ in range(5)]

    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)  # scramble the global RNGs: resume must restore them
    resumed = Trainer.resume(tmp_path)
    assert resumed.step == 10 and resumed.user_state == {"note": 3} and len(resumed.history) == 2
    assert (replay_as_tensordict(resumed.replay) == replay_as_tensordict(cartpole_replay)).all()
    got = [float(resumed.update(sample_sequences(resumed.replay, 8, 8))["loss"]) for _ in range(5)]
    assert got == pytest.approx(expected, rel=1e-6)


def test_resume_restores_global_rng_states(cartpole_replay, tmp_path):
    trainer = _trainer(cartpole_replay, tmp_path)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    trainer.save()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    Trainer.resume(tmp_path)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_resume_errors(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        Trainer.resume(tmp_path / "nope")
    with pytest.raises(RunDirError, match="has no checkpoint.pt"):
        Trainer.resume(tmp_path)


def test_resume_drops_metrics_logged_after_the_checkpoint(cartpole_replay, tmp_path):
    trainer = _trainer(cartpole_replay, tmp_path)
    trainer.train(10)
    trainer.save()
    trainer.train(10)  # logged, then "killed" before the next checkpoint
    trainer.close()
    resumed = Trainer.resume(tmp_path)
    resumed.train(5)
    resumed.close()
    with open(tmp_path / "metrics.csv") as f:
        steps = sorted({int(r[0]) for r in list(csv.reader(f))[1:] if r[1] == "loss"})
    assert steps == [5, 10, 15]
