"""Stored-row format, episode-respecting sequences, uint8 pixels, bounded memory, persistence."""

from __future__ import annotations

import json
import logging

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmenv.core import ReplayStartStates
from wmenv.core.errors import CheckpointError, ConfigError
from wmenv.train import (
    ROW_KEYS,
    Collector,
    collect,
    load_replay,
    make_replay,
    replay_as_tensordict,
    sample_sequences,
    save_replay,
)
from wmenv.train.replay import next_episode_id

from .toy_envs import DictEnv, PixelEnv


def _episodes(td):
    ep = td["episode"]
    return {int(e): td[ep == e] for e in ep.unique()}


def test_row_format_and_episode_layout(cartpole_replay):
    td = replay_as_tensordict(cartpole_replay)
    assert set(td.keys()) == set(ROW_KEYS)
    assert td["observation"].dtype == torch.float32 and td["observation"].shape[1:] == (4,)
    assert td["action"].dtype == torch.int64 and td["action"].shape == td["episode"].shape
    assert td["reward"].dtype == torch.float32
    for key in ("terminated", "truncated", "is_first", "is_last"):
        assert td[key].dtype == torch.bool
    # each episode is one contiguous block: as many runs of ids as distinct ids
    assert td["episode"].unique_consecutive().numel() == td["episode"].unique().numel()
    assert torch.equal(td["is_last"], td["terminated"] | td["truncated"])
    for rows in _episodes(td).values():
        assert bool(rows["is_first"][0]) and int(rows["is_first"].sum()) == 1
        assert rows["action"][0] == 0 and rows["reward"][0] == 0.0
        if rows["is_last"].any():  # a finished episode of T steps has T + 1 rows
            assert bool(rows["is_last"][-1]) and int(rows["is_last"].sum()) == 1
            assert float(rows["reward"].sum()) == len(rows) - 1  # CartPole: reward 1 per step


def test_collect_stats_and_final_observation_stored():
    replay, stats = collect(PixelEnv(), 40, seed=0, progress=False)
    assert stats.replay is replay
    td = replay_as_tensordict(replay)
    assert stats.steps == 40 and stats.episodes == len(stats.episode_returns) > 0
    eps = _episodes(td)
    for k, length in enumerate(stats.episode_lengths):
        rows = eps[k]
        assert len(rows) == length + 1 == 5 + k % 4 + 1
        # pixels hold the step index: 0 .. T, the final (terminal) frame included
        assert rows["observation"][:, 0, 0, 0].tolist() == list(range(length + 1))
        assert bool(rows["terminated"][-1]) and not rows["truncated"].any()
    assert stats.rows == len(replay)


def test_uint8_pixels_stay_uint8_on_disk(tmp_path):
    replay = make_replay(200, tmp_path / "px")
    collect(PixelEnv(), 50, replay=replay, progress=False)
    stored = replay.storage[: len(replay)]["observation"]
    assert stored.dtype == torch.uint8
    files = {p.name: p.stat().st_size for p in (tmp_path / "px").rglob("*.memmap")}
    assert files["observation.memmap"] == 200 * 8 * 8 * 3  # one byte per pixel, capacity rows


def test_vector_envs_interleave_but_episodes_stay_contiguous():
    thunks = [PixelEnv for _ in range(3)]
    for mode in (gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.SAME_STEP):
        venv = gym.vector.SyncVectorEnv(thunks, autoreset_mode=mode)
        replay, stats = collect(venv, 90, progress=False)
        td = replay_as_tensordict(replay)
        assert td["episode"].unique_consecutive().numel() == td["episode"].unique().numel()
        for rows in _episodes(td).values():
            frames = rows["observation"][:, 0, 0, 0].tolist()
            assert frames == list(range(len(rows))), (mode, frames)  # no foreign rows inside
        assert int(td["is_last"].sum()) == stats.episodes


def test_dict_observation_and_box_action(tmp_path):
    replay, stats = collect(DictEnv(), 30, seed=1, progress=False)
    td = replay_as_tensordict(replay)
    assert td["observation", "image"].dtype == torch.uint8
    assert td["observation", "state"].dtype == torch.float32
    assert td["action"].dtype == torch.float32 and td["action"].shape[1:] == (2,)
    assert bool(td["truncated"][6]) and not td["terminated"].any() and stats.episodes == 5
    seq = sample_sequences(replay, 3, 4)
    assert seq.batch_size == (3, 4) and seq["observation", "image"].shape == (3, 4, 4, 4, 1)


def test_sequences_respect_episode_boundaries(cartpole_replay):
    for _ in range(20):
        seq = sample_sequences(cartpole_replay, 8, 8)
        assert seq.batch_size == (8, 8)
        assert (seq["episode"] == seq["episode"][:, :1]).all()
        # at most one first row per sequence, and only at its start
        assert not seq["is_first"][:, 1:].any()
        assert not seq["is_last"][:, :-1].any()


def test_sequence_length_switch_and_errors(cartpole_replay, tmp_path):
    assert sample_sequences(cartpole_replay, 2, 3).batch_size == (2, 3)
    with pytest.raises(ConfigError, match="no episode in the replay has 5000 consecutive rows"):
        sample_sequences(cartpole_replay, 2, 5000)
    with pytest.raises(ConfigError, match="empty replay"):
        sample_sequences(make_replay(10, tmp_path / "e"), 2, 2)
    with pytest.raises(ConfigError, match="capacity must be >= 1"):
        make_replay(0)


def test_capacity_bounds_memory_and_keeps_insertion_order(tmp_path):
    replay = make_replay(32, tmp_path / "ring", slice_len=4, seed=0)
    collector = Collector(PixelEnv(), replay, progress=False)
    collector.collect(200)
    collector.close()
    assert len(replay) == 32 and replay.write_count > 32
    size = sum(p.stat().st_size for p in (tmp_path / "ring").rglob("*.memmap"))
    collector = Collector(PixelEnv(), replay, progress=False)
    collector.collect(300)
    assert sum(p.stat().st_size for p in (tmp_path / "ring").rglob("*.memmap")) == size
    td = replay_as_tensordict(replay)
    ep = td["episode"]
    assert bool((ep[1:] >= ep[:-1]).all())  # oldest first
    assert next_episode_id(replay) == int(ep.max()) + 1
    for _ in range(20):  # a wrapped episode is never glued to another one
        seq = sample_sequences(replay, 4, 4)
        assert (seq["episode"] == seq["episode"][:, :1]).all()
        frames = seq["observation"][..., 0, 0, 0].long()
        assert bool((frames[:, 1:] - frames[:, :-1] == 1).all())


def test_save_load_roundtrip_continues_identically(tmp_path):
    replay = make_replay(40, tmp_path / "a", slice_len=4, seed=3)
    collect(PixelEnv(), 70, replay=replay, progress=False)  # wrapped ring
    save_replay(replay, tmp_path / "saved")
    loaded = load_replay(tmp_path / "saved", tmp_path / "b")
    assert len(loaded) == len(replay) and loaded.write_count == replay.write_count
    assert (replay_as_tensordict(loaded) == replay_as_tensordict(replay)).all()
    for _ in range(3):  # same sampler RNG state → same batches
        assert torch.equal(
            sample_sequences(replay, 4, 4)["episode"], sample_sequences(loaded, 4, 4)["episode"]
        )
    before = replay_as_tensordict(replay).clone()
    more = before[:5].clone()
    replay.extend(more)
    loaded.extend(more)
    assert (replay_as_tensordict(loaded) == replay_as_tensordict(replay)).all()
    bigger = load_replay(tmp_path / "saved", capacity=100)
    assert (replay_as_tensordict(bigger) == before).all()  # re-inserted oldest first
    assert len(bigger) == 40 and bigger.write_count == 40
    save_replay(loaded, tmp_path / "saved")  # overwriting a saved replay is allowed
    assert len(load_replay(tmp_path / "saved")) == 40


def test_load_replay_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no saved replay at"):
        load_replay(tmp_path / "missing")
    replay, stats = collect(PixelEnv(), 20, progress=False)
    save_replay(replay, tmp_path / "r")
    with pytest.raises(CheckpointError, match="cannot hold the"):
        load_replay(tmp_path / "r", capacity=3)
    (tmp_path / "r" / "replay_meta.json").write_text('{"format_version": 99}')
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_replay(tmp_path / "r")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved replay"):
        save_replay(replay, tmp_path / "other")


def test_replay_start_states_from_replay(cartpole_replay):
    start = ReplayStartStates(replay_as_tensordict(cartpole_replay), context_length=3)
    ctx = start.sample(5, generator=torch.Generator().manual_seed(0))
    assert ctx.batch_size == (5, 3)
    assert (ctx["episode"] == ctx["episode"][:, :1]).all()


def test_policy_reset_hook_sees_new_episodes():
    class Policy:
        def __init__(self):
            self.resets = 0

        def reset(self, mask: np.ndarray) -> None:
            self.resets += int(mask.sum())

        def __call__(self, obs: np.ndarray) -> np.ndarray:
            return np.ones(len(obs), dtype=np.int64)

    policy = Policy()
    replay, stats = collect("CartPole-v1", 200, policy=policy, num_envs=2, progress=False)
    td = replay_as_tensordict(replay)
    assert policy.resets == int(td["is_first"].sum())
    assert (td["action"][~td["is_first"]] == 1).all()


def test_snapshot_is_plain_npy_per_key(tmp_path):
    replay = make_replay(64, tmp_path / "scratch", seed=0)
    collect(DictEnv(), 30, replay=replay, progress=False)
    n = len(replay)
    saved = save_replay(replay, tmp_path / "snap")
    meta = json.loads((saved / "replay_meta.json").read_text())
    assert meta["format_version"] == 2 and meta["len"] == n
    by_key = {tuple(a["key"]): a for a in meta["arrays"]}
    assert set(by_key) == {("observation", "image"), ("observation", "state")} | {(k,) for k in ROW_KEYS[1:]}
    assert by_key["observation", "image"]["file"] == "observation__image.npy"
    assert sorted(p.name for p in saved.iterdir()) == sorted(
        [a["file"] for a in meta["arrays"]] + ["replay_meta.json"]
    )
    for entry in meta["arrays"]:  # plain arrays: they load without pickle
        arr = np.load(saved / entry["file"], allow_pickle=False)
        assert arr.dtype.name == entry["dtype"] and list(arr.shape) == entry["shape"]
    image = saved / "observation__image.npy"
    assert image.stat().st_size == 128 + n * 4 * 4 * 1  # uint8 pixels: one byte each (+ the .npy header)
    assert np.load(saved / "terminated.npy").dtype == np.bool_  # bool: one byte per row too


def test_snapshot_files_are_checked_against_the_metadata(tmp_path):
    replay, _ = collect(PixelEnv(), 20, progress=False)
    n = len(replay)
    saved = save_replay(replay, tmp_path / "snap")
    reward = np.load(saved / "reward.npy")
    np.save(saved / "reward.npy", reward[:-1])
    with pytest.raises(
        CheckpointError,
        match=rf"reward\.npy: expected shape \[{n}\] \(per replay_meta.json\), "
        rf"the file holds \[{n - 1}\]",
    ):
        load_replay(saved)
    np.save(saved / "reward.npy", reward.astype(np.float64))
    with pytest.raises(CheckpointError, match=r"reward\.npy: expected dtype float32 .*, the file holds <f8"):
        load_replay(saved)
    (saved / "reward.npy").write_bytes((tmp_path / "snap" / "episode.npy").read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"reward\.npy is not a valid \.npy array file"):
        load_replay(saved)
    (saved / "reward.npy").unlink()
    with pytest.raises(CheckpointError, match=r"reward\.npy is missing or not a regular file"):
        load_replay(saved)


def test_version_1_snapshot_of_plain_tensors_still_loads(tmp_path):
    replay = make_replay(20, tmp_path / "scratch", seed=0)
    collect(DictEnv(), 30, replay=replay, progress=False)  # wrapped ring
    rows = replay.storage[: len(replay)]
    old = tmp_path / "v1"
    old.mkdir()
    rows.memmap(old / "rows", copy_existing=True)  # what format 1 wrote, next to its JSON metadata
    meta = {
        "format_version": 1,
        "capacity": 20,
        "len": 20,
        "write_count": int(replay.write_count),
        "slice_len": 16,
        "strict_length": True,
        "without_replacement": False,
        "rng_state": replay._rng.get_state().tolist(),
    }
    (old / "replay_meta.json").write_text(json.dumps(meta))
    loaded = load_replay(old)
    assert loaded.write_count == replay.write_count
    assert (replay_as_tensordict(loaded) == replay_as_tensordict(replay)).all()
    assert replay_as_tensordict(loaded)["observation", "image"].dtype == torch.uint8
    save_replay(loaded, tmp_path / "v2")  # re-saving converts it
    assert json.loads((tmp_path / "v2" / "replay_meta.json").read_text())["format_version"] == 2
    assert (replay_as_tensordict(load_replay(tmp_path / "v2")) == replay_as_tensordict(replay)).all()


def test_torchrl_info_lines_are_silenced(tmp_path, monkeypatch):
    import wmenv.train.replay as replay_mod

    log = logging.getLogger("torchrl")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, level = Keep(logging.DEBUG), log.level
    log.addHandler(handler)
    try:
        monkeypatch.delenv("RL_LOGGING_LEVEL", raising=False)
        monkeypatch.setattr(replay_mod, "_torchrl_quieted", False)
        log.setLevel(logging.INFO)  # TorchRL's default
        replay = make_replay(50, tmp_path / "a")
        collect(PixelEnv(), 10, replay=replay, progress=False)
        load_replay(save_replay(replay, tmp_path / "snap"))
        assert [r.getMessage() for r in records if r.levelno < logging.WARNING] == []
        monkeypatch.setenv("RL_LOGGING_LEVEL", "INFO")  # the user asks for them: kept
        monkeypatch.setattr(replay_mod, "_torchrl_quieted", False)
        log.setLevel(logging.INFO)
        load_replay(tmp_path / "snap")
        assert any("Initialized LazyMemmapStorage" in r.getMessage() for r in records)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
