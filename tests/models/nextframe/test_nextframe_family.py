"""The ``nextframe`` family: registration, the tensor contract, frame windows, learning, the adapter on
every face, and offline training from a dataset through evaluation (plot, MP4, GIF)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import FrameStackObservation
from PIL import Image
from tensordict import TensorDict

import wmenv
from tests.models.nextframe.dot_env import MODULE_ID, DotEnv
from wmenv.cli import main
from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.models.nextframe import NextFrameConfig, NextFrameImagination, NextFramePredictor, to_world_model
from wmenv.registry import create_config, create_model, get_model_spec, list_models
from wmenv.testing import check_world_model_env, train_on_batch
from wmenv.train import Schedule, train
from wmenv.train.dataset import collect_dataset
from wmenv.train.replay import sample_sequences

ATARI = gym.spaces.Box(0, 255, (84, 84, 1), np.uint8)
DOT = gym.spaces.Box(0, 255, (10, 10, 1), np.uint8)
QUIET = ["--no-progress", "trainer.tensorboard=false"]


def _episode(seed: int = 0, actions=(0, 2, 2, 1, 0, 0, 2, 1, 1)) -> tuple[TensorDict, list[np.ndarray]]:
    """One DotEnv episode as rows ``[1, T]`` and the FrameStackObservation(4) observations of the same run."""
    env, stacked = DotEnv(), FrameStackObservation(DotEnv(), 4)
    obs, _ = env.reset(seed=seed)
    s_obs, _ = stacked.reset(seed=seed)
    rows = {k: [] for k in ("observation", "action", "reward", "terminated", "truncated", "is_first", "is_last")}
    stacks = [s_obs]

    def add(o, a, r, term, first):
        for k, v in zip(rows, (o, a, r, term, False, first, term)):
            rows[k].append(v)

    add(obs, 0, 0.0, False, True)
    for a in actions:
        obs, r, term, _, _ = env.step(a)
        s_obs = stacked.step(a)[0]
        add(obs, a, r, term, False)
        stacks.append(s_obs)
        if term:
            break
    td = TensorDict({k: torch.as_tensor(np.asarray(v)) for k, v in rows.items()}, batch_size=[len(rows["action"])])
    td["reward"] = td["reward"].float()
    td["episode"] = torch.zeros(td.batch_size[0], dtype=torch.int64)
    return td.unsqueeze(0), stacks


@pytest.fixture(scope="module")
def dot_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dot") / "data"
    collect_dataset(MODULE_ID, 800, out, shard_size=200, val_ratio=0.2, progress=False)
    return out


def test_registration():
    spec = get_model_spec("next-frame")
    assert spec.name == "nextframe" and "nextframe" in list_models() and spec.family == "nextframe"
    assert spec.can_imagine and not spec.can_act
    assert {"tiny", "small", "atari84"} <= set(spec.presets)
    assert create_config("nextframe", "atari84").channels == (32, 64, 64)


def test_tensor_contract_on_atari_frames():
    model = create_model("nextframe", observation_space=ATARI, action_space=gym.spaces.Discrete(6), preset="atari84")
    frames, actions = torch.rand(3, 4, 84, 84), torch.tensor([0, 3, 5], dtype=torch.int64)
    out = model(frames, actions)
    assert out.shape == (3, 1, 84, 84) and out.dtype == torch.float32
    assert torch.allclose(out, frames[:, -1:])  # untrained: "nothing moves"
    nxt, reward, logit = model.predict(frames, actions)
    assert nxt.shape == (3, 84, 84) and reward.shape == logit.shape == (3,)
    assert model.config.loss == "huber"
    assert create_model("nextframe", observation_space=ATARI, action_space=gym.spaces.Discrete(6),
                        preset="atari84", loss="mse").config.loss == "mse"


def test_config_and_space_errors():
    with pytest.raises(ConfigError, match="huber"):
        create_config("nextframe", "tiny", {"loss": "l1"})
    with pytest.raises(ConfigError, match="one entry per conv layer"):
        create_config("nextframe", "tiny", {"channels": "8,16,32"})
    with pytest.raises(ConfigError, match="context"):
        create_config("nextframe", "tiny", {"context": "0"})
    act = gym.spaces.Discrete(3)
    with pytest.raises(UnsupportedSpaceError, match="grayscale"):
        create_model("nextframe", observation_space=gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), action_space=act)
    with pytest.raises(UnsupportedSpaceError):
        create_model("nextframe", observation_space=gym.spaces.Box(-1, 1, (4,), np.float32), action_space=act)
    with pytest.raises(UnsupportedSpaceError, match="too small"):
        create_model("nextframe", observation_space=DOT, action_space=act, preset="atari84")
    with pytest.raises(UnsupportedSpaceError, match="no entry"):
        create_model("nextframe", observation_space=DOT, action_space=act, frames_key="observation.pixels")
    both = gym.spaces.Dict({"pixels": DOT, "state": gym.spaces.Box(-1, 1, (2,), np.float32)})
    model = create_model("nextframe", observation_space=both, action_space=act, frames_key="observation.pixels")
    assert model.frame_hw == (10, 10)
    with pytest.raises(ConfigError, match="stack"):
        to_world_model(model, observation_mode="decoded")


def test_windows_pad_like_frame_stacking_and_mask_episode_starts():
    model = create_model("nextframe", observation_space=DOT, action_space=gym.spaces.Discrete(3), preset="tiny")
    batch, stacks = _episode()
    tr = model.transitions(batch)
    t = batch.batch_size[1]
    assert tr["valid"].all() and tr["frames"].shape == (t - 1, 4, 10, 10)
    for i in range(t - 1):  # window ending at i == FrameStackObservation's observation at i
        assert torch.equal(tr["frames"][i], torch.as_tensor(stacks[i][..., 0]).float() / 255)
        assert torch.equal(tr["target"][i], batch["observation"][0, i + 1, ..., 0].float() / 255)
    late = batch[:, 2:]  # starts mid-episode: the first K-1 windows reach before the sequence
    assert late["is_first"].sum() == 0
    assert model.transitions(late)["valid"][0].tolist() == [False] * 3 + [True] * (t - 6)
    two = torch.cat([batch, batch], 1)  # a new episode inside: its first frame is never a target
    valid = model.transitions(two)["valid"][0]
    assert not valid[t - 1] and valid[:t - 1].all() and valid[t:].all()
    out = model.loss(two)
    poked = two.clone()
    poked["reward"][0, t], poked["terminated"][0, t], poked["action"][0, t] = 100.0, True, 2  # masked targets
    for k in ("loss_frame", "loss_reward", "loss_term"):
        v, w = out[k], model.loss(poked)[k]
        assert torch.allclose(v, w), k


def test_loss_falls_on_dot_data(dot_data):
    from wmenv.train.dataset import open_dataset

    ds = open_dataset(dot_data)
    model = create_model("nextframe", observation_space=ds.observation_space, action_space=ds.action_space,
                         preset="tiny")
    batch = sample_sequences(ds.replay("train", seq_len=8, seed=0), 16, 8)
    losses = train_on_batch(model, batch, 80)
    assert losses[-1] < 0.5 * losses[0]
    out = model.loss(batch)
    assert float(out["mse"]) < float(out["copy_mse"])  # beats "nothing moves" on what it saw


@pytest.mark.parametrize("mode", ["stack", "decoded"])
def test_adapter_passes_every_face(dot_data, mode):
    from wmenv.train.dataset import open_dataset

    ds = open_dataset(dot_data)
    model = create_model("nextframe", observation_space=ds.observation_space, action_space=ds.action_space,
                         preset="tiny").eval()
    wm = to_world_model(model, observation_mode=None if mode == "stack" else mode)
    assert isinstance(wm, NextFrameImagination) and wm.observation_mode == mode
    expected = (4, 10, 10, 1) if mode == "stack" else (10, 10, 1)
    assert tuple(wm.observation_spec.shape) == expected
    start = ds.start_states("val", context_length=wm.context_length)
    report = check_world_model_env(wm, start, max_episode_steps=12, num_envs=3, steps=20)
    assert set(report.values()) == {"ok"}


def test_stack_observation_is_what_frame_stacking_returns():
    model = create_model("nextframe", observation_space=DOT, action_space=gym.spaces.Discrete(3), preset="tiny")
    wm = to_world_model(model)
    batch, stacks = _episode(seed=3)
    gen = torch.Generator().manual_seed(0)
    first = wm.initial_state(batch[:, 0], generator=gen)  # a [B] context: the reset observation
    assert np.array_equal(first["observation"][0].numpy(), stacks[0])
    later = wm.initial_state(batch[:, :5], generator=gen)  # a [B, T] context
    assert np.array_equal(later["observation"][0].numpy(), stacks[4])
    step = wm.step(later["state"], torch.tensor([1]), generator=gen)
    assert step["observation"].dtype == torch.uint8 and step["observation"].shape == (1, 4, 10, 10, 1)
    assert np.array_equal(step["observation"][0, :3].numpy(), stacks[4][1:])  # the stack shifted by one
    with pytest.raises(ConfigError, match="no latent"):
        to_world_model(model, observation_mode="latent")
    with pytest.raises(TypeError):
        to_world_model(torch.nn.Linear(2, 2))


def test_offline_run_previews_open_run_and_evaluation(dot_data, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "next-frame", "--dataset", str(dot_data), "--preset", "tiny", "--steps", "40",
            "--checkpoint-every", "20", "--log-every", "10", "--run-dir", str(run), *QUIET]
    assert main(argv) == 0
    previews = sorted(p.name for p in (run / "previews").iterdir())
    assert previews == ["step_0000020.png", "step_0000040.png"]
    image = np.asarray(Image.open(run / "previews" / previews[-1]))
    assert image.ndim == 3 and image.shape[0] > 3 * 48
    info = json.loads((run / "run.json").read_text())
    assert info["model"] == "nextframe" and info["env_id"] == MODULE_ID
    opened = wmenv.open_run(run)
    env = opened.make_env("sb3", num_envs=4, seed=0)
    assert env.observation_space.shape == (4, 10, 10, 1) and env.reset().shape == (4, 4, 10, 10, 1)
    assert opened.world_model("decoded").observation_spec.shape == (10, 10, 1)
    from wmenv.benchmarks.fidelity import evaluate_model

    res = evaluate_model(run, tmp_path / "eval", horizon=4, context=4, heldout_steps=120, videos=1, fps=5)
    for name in ("mse_vs_horizon.png", "rollout_0.mp4", "rollout_0.gif", "fidelity.json"):
        assert (tmp_path / "eval" / name).stat().st_size > 0, name
    assert len(res["open_loop"]["mse"]) == 4 and res["open_loop"]["observation_kind"] == "image"


def test_online_run_writes_previews_too(tmp_path):
    run = train("nextframe", MODULE_ID, steps=6, preset="tiny", run_dir=tmp_path / "online", progress=False,
                schedule=Schedule(seed_steps=120), trainer={"checkpoint_every": 3, "tensorboard": False})
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    assert isinstance(wmenv.open_run(run).model(), NextFramePredictor)


def test_config_is_frozen_and_checked():
    config = NextFrameConfig.tiny()
    with pytest.raises(AttributeError):
        config.hidden = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="huber_delta"):
        NextFrameConfig(huber_delta=0)
