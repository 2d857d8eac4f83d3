"""Datasets (``wmenv collect --shard-size``) and offline training (``wmenv train MODEL --dataset``).

Round trip: the rows of a dataset are the rows the same collection writes into a replay, and the
dataset's TorchRL buffer gives the same ``[B, T]`` batches as ``sample_sequences`` on that replay; the
split is by whole episodes; rows are read lazily from memory-mapped shards. Hostile or corrupt files
raise ``CheckpointError`` and are never unpickled. Offline runs log a val loss that falls, record
their dataset and env, resume exactly, and open with ``wmenv.open_run``.
"""

from __future__ import annotations

import csv
import json
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from tensordict import TensorDict

import wmenv
from wmenv.cli.train import main
from wmenv.core.errors import CheckpointError, ConfigError, RunDirError
from wmenv.train import (
    Schedule,
    collect,
    load_checkpoint,
    load_replay,
    make_replay,
    replay_as_tensordict,
    train,
)
from wmenv.train.checkpoint import space_to_dict
from wmenv.train.dataset import (
    MANIFEST,
    Dataset,
    DatasetSliceSampler,
    DatasetStorage,
    DatasetWriter,
    collect_dataset,
    open_dataset,
)
from wmenv.train.offline import OfflineTrainingRun, run_dataset
from wmenv.train.replay import sample_sequences

from .toy_envs import DictEnv

QUIET = ["--no-progress", "trainer.tensorboard=false"]


def _keys(td):
    return sorted(td.keys(include_nested=True, leaves_only=True), key=str)


def _equal(a, b) -> bool:
    return _keys(a) == _keys(b) and all(torch.equal(a.get(k), b.get(k)) for k in _keys(a))


@pytest.fixture(scope="module")
def cartpole_data(tmp_path_factory) -> Path:
    """600 random CartPole steps from 2 sub-envs in shards of 64 rows, a quarter of the episodes in val."""
    out = tmp_path_factory.mktemp("data") / "cartpole"
    argv = ["collect", "--env", "CartPole-v1", "--steps", "600", "--num-envs", "2", "--seed", "0", "--out", str(out),
            "--shard-size", "64", "--val-ratio", "0.25", "--no-progress"]
    assert main(argv) == 0
    return out


# ---------------------------------------------------------------------------------- round trip
def test_collect_writes_shards_and_a_manifest(cartpole_data):
    m = json.loads((cartpole_data / MANIFEST).read_text())
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    assert m["format"] == "wmenv-dataset" and m["format_version"] == 1 and m["wmenv_version"]
    assert m["env"]["id"] == "CartPole-v1" and m["env"]["protocol"]["backend"] == "gymnasium"
    assert m["env"]["max_episode_steps"] == 500
    assert m["observation_space"] == space_to_dict(env.observation_space)
    assert m["action_space"] == space_to_dict(env.action_space)
    assert "wmenv collect --env CartPole-v1 --steps 600" in m["command"] and "--shard-size 64" in m["command"]
    assert m["collection"]["policy"] == "random" and m["collection"]["steps"] >= 600
    rows = m["counts"]["rows"]
    assert len(m["shards"]) == m["counts"]["shards"] == -(-rows // 64)
    assert [s["rows"] for s in m["shards"]] == [64] * (rows // 64) + ([rows % 64] if rows % 64 else [])
    names = {e["name"] for e in m["keys"]}
    assert names == {"observation", "action", "reward", "terminated", "truncated", "is_first", "is_last", "episode"}
    for i in range(len(m["shards"])):
        for name in names:
            assert (cartpole_data / f"shard_{i:05d}_{name}.npy").is_file()
    for i, shard in enumerate(m["shards"]):  # episode runs per shard, [id, first row, rows], covering the shard
        ep = np.load(cartpole_data / f"shard_{i:05d}_episode.npy", allow_pickle=False)
        starts = [r[1] for r in shard["episodes"]]
        assert starts[0] == 0 and sum(r[2] for r in shard["episodes"]) == shard["rows"]
        for eid, first, n in shard["episodes"]:
            assert (ep[first:first + n] == eid).all()
    assert any(m["shards"][i]["episodes"][-1][0] == m["shards"][i + 1]["episodes"][0][0]
               for i in range(len(m["shards"]) - 1))  # some episode continues in the next shard


def test_rows_and_sequence_batches_equal_the_collected_replay(cartpole_data):
    ds = open_dataset(cartpole_data)
    replay = make_replay(5000, seed=3)
    collect("CartPole-v1", 600, num_envs=2, seed=0, replay=replay, progress=False)
    assert _equal(ds.rows("all"), replay_as_tensordict(replay))
    buffer = ds.replay("all", seq_len=8, seed=3)
    assert isinstance(buffer.storage, DatasetStorage) and isinstance(buffer.sampler, DatasetSliceSampler)
    for seq_len in (8, 8, 5):  # another length: sample_sequences swaps the sampler on both
        a, b = sample_sequences(replay, 4, seq_len), sample_sequences(buffer, 4, seq_len)
        assert a.batch_size == b.batch_size == torch.Size([4, seq_len]) and _equal(a, b)
        assert {k: v.dtype for k, v in a.items()} == {k: v.dtype for k, v in b.items()}
    assert isinstance(buffer.sampler, DatasetSliceSampler)  # the swapped-in sampler reads nothing twice


def test_split_is_by_whole_episodes(cartpole_data):
    ds = open_dataset(cartpole_data)
    train_ids, val_ids = set(ds.episodes("train")), set(ds.episodes("val"))
    all_ids = set(ds.episodes("all"))
    assert train_ids and val_ids and not train_ids & val_ids and train_ids | val_ids == all_ids
    assert len(val_ids) == round(0.25 * len(all_ids))
    assert ds.num_rows("train") + ds.num_rows("val") == len(ds)
    everything = ds.rows("all")
    for split, ids in (("train", train_ids), ("val", val_ids)):
        rows = ds.rows(split)
        assert set(rows["episode"].tolist()) == ids
        for eid in ids:  # every row of the episode, in order, in this split only
            assert torch.equal(rows["observation"][rows["episode"] == eid],
                               everything["observation"][everything["episode"] == eid])
        batch = sample_sequences(ds.replay(split, seq_len=6, seed=0), 16, 6)
        assert set(batch["episode"].unique().tolist()) <= ids
        assert (batch["episode"] == batch["episode"][:, :1]).all()  # a sequence never mixes episodes


def test_start_states_come_from_val_episodes(cartpole_data):
    ds = open_dataset(cartpole_data)
    start = ds.start_states("val", context_length=4)
    assert callable(start.sample)
    ctx = start.sample(32, generator=torch.Generator().manual_seed(0))
    assert ctx.batch_size == torch.Size([32, 4])
    assert (ctx["episode"] == ctx["episode"][:, :1]).all()
    assert set(ctx["episode"].unique().tolist()) <= set(ds.episodes("val"))
    assert not ctx["is_first"][:, 1:].any()  # a context never starts a new episode inside
    one = ds.start_states("train").sample(5, generator=torch.Generator().manual_seed(0))
    assert one.batch_size == torch.Size([5]) and one["observation"].shape == (5, 4)


def test_storage_indexing_and_read_only(cartpole_data):
    ds = open_dataset(cartpole_data)
    st = ds.storage("val")
    every = ds.rows("val")
    assert len(st) == ds.num_rows("val")
    assert _equal(st[3], every[3]) and _equal(st[-1], every[-1]) and _equal(st[2:7], every[2:7])
    idx = torch.tensor([[0, 5], [2, 1]])
    assert st[idx].batch_size == torch.Size([2, 2]) and torch.equal(st[idx]["episode"], every["episode"][idx])
    with pytest.raises(IndexError):
        st[len(st)]
    with pytest.raises(ConfigError, match="read-only"):
        ds.replay("train").extend(every[:2])
    with pytest.raises(ConfigError, match="unknown dataset split"):
        ds.rows("test")


def test_dict_observations_round_trip(tmp_path):
    ds = collect_dataset(DictEnv(), 40, tmp_path / "d", shard_size=16, val_ratio=0.0, progress=False)
    replay, _ = collect(DictEnv(), 40, progress=False)
    assert _equal(ds.rows(), replay_as_tensordict(replay))
    assert {e["name"] for e in ds.manifest["keys"]} >= {"observation__image", "observation__state"}
    assert ds.episodes("val") == [] and ds.manifest["env"]["id"] is None
    with pytest.raises(ConfigError, match="empty"):
        ds.replay("val")


def test_larger_than_memory_path_reads_only_sampled_rows(tmp_path):
    """32 MB of frames in 8 shards; opening and sampling allocate a small fraction of that: frames stay
    memory-mapped on disk (np.load(mmap_mode="r")) and only the sampled rows are copied."""
    rows, frame = 8192, (64, 64)
    writer = DatasetWriter(tmp_path / "big", shard_size=1024)
    (tmp_path / "big").mkdir()
    for start in range(0, rows, 512):  # episodes of 512 rows, written 512 rows at a time
        n = 512
        first = torch.zeros(n, dtype=torch.bool)
        first[0] = True
        writer.extend(TensorDict({
            "observation": torch.full((n, *frame), start // 512, dtype=torch.uint8),
            "action": torch.zeros(n, dtype=torch.int64), "reward": torch.zeros(n), "is_first": first,
            "terminated": torch.zeros(n, dtype=torch.bool), "truncated": torch.zeros(n, dtype=torch.bool),
            "is_last": torch.zeros(n, dtype=torch.bool), "episode": torch.full((n,), start // 512),
        }, batch_size=[n]))
    shards = writer.finish()
    import gymnasium as gym

    manifest = {
        "format": "wmenv-dataset", "format_version": 1, "env": {"id": None},
        "observation_space": space_to_dict(gym.spaces.Box(0, 255, frame, np.uint8)),
        "action_space": space_to_dict(gym.spaces.Discrete(2)), "keys": writer.keys, "shards": shards,
        "counts": {"rows": rows}, "split": {"train": list(range(14)), "val": [14, 15]},
    }
    (tmp_path / "big" / MANIFEST).write_text(json.dumps(manifest))
    size = sum(p.stat().st_size for p in (tmp_path / "big").iterdir())
    assert size > 32 * 2**20
    tracemalloc.start()
    try:
        ds = Dataset(tmp_path / "big")
        buffer = ds.replay("train", seq_len=16, seed=0)
        for _ in range(8):
            batch = sample_sequences(buffer, 16, 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size / 8, f"peak {peak} bytes for a {size}-byte dataset"
    assert isinstance(ds._array(0, "observation"), np.memmap)
    assert batch["observation"].shape == (16, 16, *frame)
    assert (batch["observation"][:, :, 0, 0].long() == batch["episode"]).all()  # frame value = episode id
    assert not set(batch["episode"].unique().tolist()) & {14, 15}


# ---------------------------------------------------------------------------------- hostile / corrupt files
class Exploit:
    """Unpickling this creates ``marker`` (as a real payload would run code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _edit_manifest(d: Path, fn) -> None:
    m = json.loads((d / MANIFEST).read_text())
    fn(m)
    (d / MANIFEST).write_text(json.dumps(m))


def _damage(d: Path, how: str, marker: Path) -> None:
    obs = d / "shard_00000_observation.npy"
    if how == "pickle_npy":
        with open(obs, "wb") as f:
            np.save(f, np.array([Exploit(marker)] * 64, dtype=object), allow_pickle=True)
    elif how == "raw_pickle":
        obs.write_bytes(pickle.dumps(Exploit(marker)))
    elif how == "pickle_manifest":
        (d / MANIFEST).write_bytes(pickle.dumps(Exploit(marker)))
    elif how == "npz":
        with open(obs, "wb") as f:
            np.savez(f, a=np.zeros((64, 4), np.float32))
    elif how == "truncated":
        obs.write_bytes(obs.read_bytes()[:-10])
    elif how == "dtype":
        np.save(obs, np.zeros((64, 4), np.float64))
    elif how == "shape":
        np.save(obs, np.zeros((64, 5), np.float32))
    elif how == "missing":
        obs.unlink()
    elif how == "symlink":
        target = d / "elsewhere.npy"
        obs.rename(target)
        obs.symlink_to(target)
    elif how == "not_json":
        (d / MANIFEST).write_bytes(b"\xff{not json")
    elif how == "format":
        _edit_manifest(d, lambda m: m.update(format="something-else"))
    elif how == "version":
        _edit_manifest(d, lambda m: m.update(format_version=99))
    elif how == "runs":
        _edit_manifest(d, lambda m: m["shards"][0]["episodes"][0].__setitem__(2, 1))
    elif how == "split_overlap":
        _edit_manifest(d, lambda m: m["split"]["val"].append(m["split"]["train"][0]))
    elif how == "split_missing":
        _edit_manifest(d, lambda m: m["split"]["train"].pop())
    elif how == "path_name":
        _edit_manifest(d, lambda m: m["keys"][0].update(name="../../etc/passwd"))
    elif how == "object_dtype":
        _edit_manifest(d, lambda m: m["keys"][0].update(dtype="object"))
    elif how == "counts":
        _edit_manifest(d, lambda m: m["counts"].update(rows=1))
    elif how == "space":
        _edit_manifest(d, lambda m: m.update(observation_space={"type": "Exploit"}))
    else:
        raise AssertionError(how)


DAMAGES = ["pickle_npy", "raw_pickle", "pickle_manifest", "npz", "truncated", "dtype", "shape", "missing", "symlink",
           "not_json", "format", "version", "runs", "split_overlap", "split_missing", "path_name", "object_dtype",
           "counts", "space"]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small") / "d"
    collect_dataset("CartPole-v1", 150, out, shard_size=64, val_ratio=0.3, progress=False)
    return out


@pytest.mark.parametrize("how", DAMAGES)
def test_hostile_or_corrupt_dataset_raises_checkpoint_error(tmp_path, small_data, how):
    d = tmp_path / "d"
    import shutil

    shutil.copytree(small_data, d)
    marker = tmp_path / "PWNED"
    _damage(d, how, marker)
    with pytest.raises(CheckpointError):
        ds = open_dataset(d)
        ds.rows("all")
    assert not marker.exists()


def test_a_file_swapped_after_opening_is_refused_when_read(tmp_path, small_data, capsys):
    import shutil

    d = tmp_path / "d"
    shutil.copytree(small_data, d)
    ds = open_dataset(d)  # headers checked, frames not mapped yet
    marker = tmp_path / "PWNED"
    _damage(d, "pickle_npy", marker)
    with pytest.raises(CheckpointError, match="shard_00000_observation.npy"):
        ds.rows("all")
    assert not marker.exists()
    assert main(["train", "test_mlp", "--dataset", str(d), "--run-dir", str(tmp_path / "r"), *QUIET]) == 2
    assert "dataset" in capsys.readouterr().err and not marker.exists()


# ---------------------------------------------------------------------------------- the CLI
def test_collect_with_a_runs_policy_and_refusals(tmp_path, capsys):
    run = train("test_mlp", "CartPole-v1", steps=2, run_dir=tmp_path / "acts", schedule=Schedule(seed_steps=50), progress=False,
                trainer={"tensorboard": False})
    out = tmp_path / "by_policy"
    assert main(["collect", "--env", "CartPole-v1", "--steps", "60", "--out", str(out), "--shard-size", "32",
                 "--policy", str(run), "--no-progress"]) == 0
    ds = open_dataset(out)
    assert ds.manifest["collection"]["policy"] == f"run:{run.resolve()}"
    rows = ds.rows()
    assert (rows["action"][~rows["is_first"]] == 0).all()  # test_mlp's policy always plays 0
    silent = train("mlp-wm", "CartPole-v1", steps=2, run_dir=tmp_path / "silent", schedule=Schedule(seed_steps=50), progress=False,
                   trainer={"tensorboard": False})
    argv = ["collect", "--env", "CartPole-v1", "--steps", "20", "--shard-size", "8", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "x"), "--policy", str(silent)]) == 2
    assert "has no policy of its own" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main([*argv, "--out", str(tmp_path / "y"), "--policy", str(tmp_path / "nowhere")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main([*argv, "--out", str(out)]) == 2  # never overwritten
    assert "not empty" in capsys.readouterr().err
    assert main(["collect", "--env", "CartPole-v1", "--steps", "20", "--out", str(tmp_path / "z"),
                 "--val-ratio", "0.2"]) == 2
    assert "--shard-size" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "w"), "--val-ratio", "1.5"]) == 2
    assert "val_ratio" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*tmp-*"))  # no half-written dataset left behind
    old = tmp_path / "replay"  # without --shard-size: the replay snapshot, as before
    assert main(["collect", "--env", "CartPole-v1", "--steps", "30", "--out", str(old), "--no-progress"]) == 0
    assert len(load_replay(old)) >= 30


# ---------------------------------------------------------------------------------- offline training
def _metrics(run: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    with open(run / "metrics.csv") as f:
        for step, key, value in list(csv.reader(f))[1:]:
            out.setdefault(key, {})[int(step)] = float(value)
    return out


def test_offline_training_lowers_the_val_loss_and_records_the_dataset(cartpole_data, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "mlp-wm", "--dataset", str(cartpole_data), "--steps", "150", "--log-every", "50",
            "--run-dir", str(run), "--seed", "1", *QUIET]
    assert main(argv) == 0
    m = _metrics(run)
    assert set(m["val/loss"]) == {0, 50, 100, 150} and set(m["loss"]) == {50, 100, 150}
    assert {"val/loss_obs", "val/loss_term", "val/obs_mae"} <= set(m)
    assert m["val/loss"][150] < 0.7 * m["val/loss"][0]
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 150 and ckpt["extra"]["user_state"]["env_steps"] == 0  # no env was stepped
    info = json.loads((run / "run.json").read_text())
    assert info["env_id"] == "CartPole-v1" and info["max_episode_steps"] == 500
    assert info["dataset"]["path"] == str(cartpole_data.resolve()) and info["dataset"]["env_id"] == "CartPole-v1"
    opened = wmenv.open_run(run)
    assert opened.info.env_id == "CartPole-v1" and run_dataset(opened)["path"] == str(cartpole_data.resolve())
    assert len(opened.replay()) == open_dataset(cartpole_data).num_rows("val")  # start states: val rows
    env = opened.make_env("gymnasium", seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and env.step(env.action_space.sample())[0].shape == (4,)
    real = opened.real_env()
    assert real.observation_space.shape == (4,)
    real.close()
    assert (run / "metrics.png").is_file()


def test_offline_resume_continues_exactly(cartpole_data, tmp_path):
    common = ["mlp-wm", "--dataset", str(cartpole_data), "--log-every", "5", "--checkpoint-every", "10", *QUIET]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["train", *common, "--steps", "20", "--run-dir", str(whole)]) == 0
    assert main(["train", *common, "--steps", "10", "--run-dir", str(split)]) == 0
    moved = tmp_path / "moved"
    cartpole_copy = tmp_path / "copy"
    import shutil

    shutil.copytree(cartpole_data, cartpole_copy)
    assert main(["train", "--resume", str(split), "--steps", "20", "--dataset", str(cartpole_copy),
                 "--no-progress"]) == 0
    a, b = load_checkpoint(whole / "checkpoint.pt"), load_checkpoint(split / "checkpoint.pt")
    assert a["step"] == b["step"] == 20
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert b["extra"]["run"]["dataset"]["path"] == str(cartpole_copy.resolve())
    shutil.rmtree(cartpole_copy)  # gone: resuming says where to point it
    with pytest.raises(RunDirError, match="--dataset NEW_PATH"):
        OfflineTrainingRun.resume(split, trainer={"steps": 25}, progress=False)
    shutil.copytree(cartpole_data, moved)
    other = tmp_path / "other"
    collect_dataset("CartPole-v1", 100, other, shard_size=64, progress=False)
    with pytest.raises(RunDirError, match="not the dataset"):
        OfflineTrainingRun.resume(split, dataset=other, progress=False)
    session = OfflineTrainingRun.resume(split, dataset=moved, trainer={"steps": 22}, progress=False)
    session.run()
    session.close(plot=False)
    assert load_checkpoint(split / "checkpoint.pt")["step"] == 22


def test_train_dataset_usage_errors(cartpole_data, tmp_path, capsys):
    base = ["train", "mlp-wm", "--dataset", str(cartpole_data), "--run-dir", str(tmp_path / "r"), *QUIET]
    assert main([*base, "--collect-steps", "10", "--collect-every", "5"]) == 2
    assert "offline" in capsys.readouterr().err
    assert main([*base, "--env", "Pendulum-v1"]) == 2
    assert "differs from the env of the dataset" in capsys.readouterr().err
    assert main(["train", "mlp-wm", "--dataset", str(tmp_path / "none"), *QUIET]) == 2
    assert "no dataset at" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_python_entry_point_trains_from_a_dataset(cartpole_data, tmp_path):
    run = train("mlp-wm", dataset=cartpole_data, steps=10, run_dir=tmp_path / "py", progress=False,
                trainer={"tensorboard": False, "log_every": 5})
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 10
    assert "val/loss" in _metrics(run)
