"""Hostile run files: nothing in a checkpoint or replay snapshot may run code or crash the loader.

Every file of a run directory (``checkpoint.pt``, the replay snapshot's ``.npy`` files and
``replay_meta.json``, an old-format ``rows/`` TensorDict memmap folder) gets a pickle payload
that creates a marker file when unpickled; loading must raise ``CheckpointError`` and the marker
must never appear. Seeded fuzzing (random bytes, truncations, bit flips, JSON field swaps) checks
that a damaged file either loads or raises ``CheckpointError``, never another exception, never
hangs. Leftover temporary files of killed writers are removed.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import TensorDict

from wmenv.core.errors import CheckpointError, UnknownModelError
from wmenv.registry import create_model
from wmenv.train import collect, load_checkpoint, load_replay, make_replay, replay_as_tensordict, save_replay
from wmenv.train.checkpoint import (
    atomic_torch_save,
    clean_stale_temp_files,
    model_from_checkpoint,
    save_checkpoint,
)

from .testfamily import MLPConfig
from .toy_envs import DictEnv, PixelEnv

OBS = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT = gym.spaces.Discrete(2)


class Exploit:
    """Unpickling this calls ``open(marker, "w")``: it creates ``marker``, as a real payload would run code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload(marker: Path) -> bytes:
    return pickle.dumps(Exploit(marker), protocol=2)


def _assert_live(tmp_path: Path) -> None:
    """The payload really runs code when unpickled (so the tests below test something)."""
    probe = tmp_path / "probe-marker"
    pickle.loads(_payload(probe))
    assert probe.exists()
    probe.unlink()


def _save_ckpt(path: Path) -> Path:
    config = MLPConfig.tiny()
    model = create_model("test_mlp", observation_space=OBS, action_space=ACT, config=config)
    return save_checkpoint(
        path,
        model_name="test_mlp",
        family="test",
        config=config,
        model=model,
        step=3,
        observation_space=OBS,
        action_space=ACT,
        extra={"replay_snapshot": "replay-000000000030"},
    )


def _small_replay(tmp_path: Path, env=None, steps: int = 30, capacity: int = 24):
    replay = make_replay(capacity, tmp_path / "scratch", slice_len=4, seed=0)
    collect(env or PixelEnv(), steps, replay=replay, progress=False)
    return replay


def _write_v1(rows: TensorDict, directory: Path, capacity: int) -> Path:
    """A format-1 snapshot as the previous wmenv wrote it (TensorDict memmap folder + JSON meta)."""
    directory.mkdir(parents=True)
    rows.memmap(directory / "rows")
    n = rows.batch_size[0]
    meta = {
        "format_version": 1,
        "capacity": capacity,
        "len": n,
        "write_count": n,
        "slice_len": 4,
        "strict_length": True,
        "without_replacement": False,
        "rng_state": None,
    }
    (directory / "replay_meta.json").write_text(json.dumps(meta))
    return directory


# ------------------------------------------------------------------------------ (a) payloads
def test_pickle_payload_in_any_replay_file_is_refused(tmp_path):
    _assert_live(tmp_path)
    marker = tmp_path / "PWNED"
    src = save_replay(_small_replay(tmp_path, DictEnv()), tmp_path / "snap")
    files = sorted(p.name for p in src.iterdir())
    assert "replay_meta.json" in files and "observation__image.npy" in files and len(files) == 10
    meta = json.loads((src / "replay_meta.json").read_text())

    def case(name: str) -> Path:
        d = tmp_path / f"case-{name}"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(src, d)
        return d

    n_cases = 0
    for name in files:
        for kind in ("raw-pickle", "torch-save", "npy-object-array"):
            d = case(name)
            if kind == "raw-pickle":
                (d / name).write_bytes(_payload(marker))
            elif kind == "torch-save":
                torch.save({"x": Exploit(marker)}, d / name)
            else:
                with open(d / name, "wb") as f:  # (np.save to a path would append ".npy" to the meta's name)
                    np.save(f, np.array([Exploit(marker)] * 2, dtype=object), allow_pickle=True)
            with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
                load_replay(d)
            n_cases += 1
    # metadata that asks for pickled data, or a file outside the snapshot
    for i, (field, value, msg) in enumerate(
        [
            ("dtype", "object", "dtype must be one of"),
            ("dtype", "O", "dtype must be one of"),
            ("file", "../evil.npy", "unique plain .npy file name"),
            ("file", "/etc/passwd", "unique plain .npy file name"),
            ("file", "replay_meta.json", "unique plain .npy file name"),
        ]
    ):
        d = case(f"meta{i}")
        bad = json.loads(json.dumps(meta))
        bad["arrays"][0][field] = value
        if field == "dtype":  # and the file really holds a pickled object array
            np.save(
                d / bad["arrays"][0]["file"],
                np.array([Exploit(marker)] * 35, dtype=object),
                allow_pickle=True,
            )
        (d / "replay_meta.json").write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=msg):
            load_replay(d)
        n_cases += 1
    assert n_cases == 35
    assert not marker.exists()


def test_fifo_in_snapshot_is_refused_without_hanging(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    src = save_replay(_small_replay(tmp_path), tmp_path / "snap")
    (src / "reward.npy").unlink()
    os.mkfifo(src / "reward.npy")  # np.load would block forever on it
    with pytest.raises(CheckpointError, match="reward.npy is missing or not a regular file"):
        load_replay(src)


def test_old_format_rows_with_pickled_entry_is_refused(tmp_path):
    _assert_live(tmp_path)
    marker = tmp_path / "PWNED"
    replay = _small_replay(tmp_path)
    rows = replay_as_tensordict(replay).clone()
    # a plain-tensor version-1 snapshot (what the previous wmenv wrote) still loads, without unpickling
    v1 = _write_v1(rows, tmp_path / "v1", capacity=24)
    assert (replay_as_tensordict(load_replay(v1)) == rows).all()
    # a pickled non-tensor entry: TensorDict.load_memmap would run it (checked on a copy)
    evil_rows = rows.clone()
    evil_rows.set_non_tensor("note", Exploit(marker))
    evil = _write_v1(evil_rows, tmp_path / "evil", capacity=24)
    assert (evil / "rows" / "note" / "other.pickle").exists()
    probe = tmp_path / "probe-marker"
    shutil.copytree(evil / "rows", tmp_path / "probe-rows")
    (tmp_path / "probe-rows" / "note" / "other.pickle").write_bytes(_payload(probe))
    try:
        TensorDict.load_memmap(tmp_path / "probe-rows", allow_pickle=True)
    except Exception:  # noqa: BLE001 - the payload has run by then (it returns a file, not the data)
        pass
    assert probe.exists()
    with pytest.raises(CheckpointError, match=r"old format 1.*'note'.*non-tensor data.*refuses.*save_replay"):
        load_replay(evil)
    # a class name in meta.json (tensordict would import it), and a pickle instead of a tensor file
    meta_path = v1 / "rows" / "meta.json"
    td_meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**td_meta, "_type": "<class 'os.system'>"}))
    with pytest.raises(CheckpointError, match=r"names the class .*os\.system.*not a plain TensorDict"):
        load_replay(v1)
    meta_path.write_text(json.dumps(td_meta))
    (v1 / "rows" / "reward.memmap").write_bytes(_payload(marker))
    with pytest.raises(CheckpointError, match=r"reward\.memmap: expected 96 bytes"):
        load_replay(v1)
    meta_path.write_bytes(_payload(marker))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_replay(v1)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_payload_as_checkpoint_is_refused(tmp_path):
    _assert_live(tmp_path)
    marker = tmp_path / "PWNED"
    real = _save_ckpt(tmp_path / "real.pt")
    payloads = {
        "torch-save": None,
        "raw-pickle-2": _payload(marker),
        "raw-pickle-0": pickle.dumps(Exploit(marker), protocol=0),
        "raw-pickle-5": pickle.dumps(Exploit(marker), protocol=5),
    }
    # a real checkpoint zip whose data.pkl is replaced by the payload
    buf = io.BytesIO()
    with zipfile.ZipFile(real) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, _payload(marker) if item.filename.endswith("data.pkl") else data)
    payloads["zip-data.pkl"] = buf.getvalue()
    for name, payload in payloads.items():
        path = tmp_path / "run" / name / "checkpoint.pt"
        path.parent.mkdir(parents=True)
        if payload is None:
            torch.save({"format_version": 1, "model": Exploit(marker)}, path)
        else:
            path.write_bytes(payload)
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "change, msg",
    [
        ({"model": {"w": [1.0]}}, r"'model' must be a state dict"),
        ({"model": [1]}, r"'model' must be a state dict"),
        ({"config": [1, 2]}, r"'config' must be a dict"),
        ({"format_version": torch.ones(2)}, "format_version"),
        ({"family": 3}, r"'family' must be a str"),
        ({"step": "7"}, r"'step' must be a non-negative int"),
        ({"optimizers": {"model": 1}}, r"'optimizers' must be a dict of optimizer state dicts"),
        ({"extra": [1]}, r"'extra' must be a dict"),
        ({"observation_space": {"type": "Box"}}, r"observation_space: invalid serialised space"),
        ({"action_space": {"type": "Discrete", "n": 0}}, r"action_space: invalid serialised space"),
        ({"action_space": {"type": "Dict", "spaces": [1]}}, r"action_space: invalid serialised space"),
        (
            {
                "observation_space": {
                    "type": "Box",
                    "shape": [2**20, 2**20],
                    "dtype": "float32",
                    "low": 0,
                    "high": 1,
                }
            },
            "larger than",
        ),
        ({"observation_space": "Box"}, r"'observation_space' must be a dict"),
        (
            {"extra": {"replay_snapshot": "../../elsewhere"}},
            r"replay_snapshot'\] must be the name of a folder",
        ),
    ],
)
def test_malformed_but_safe_checkpoint_gives_checkpoint_error(tmp_path, change, msg):
    path = _save_ckpt(tmp_path / "c.pt")
    data = torch.load(path, weights_only=True)
    data.update(change)
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=msg):
        load_checkpoint(path)


# ------------------------------------------------------------------------------ (b) fuzzing
class _Hung(BaseException):
    """Raised by the alarm: a BaseException, so no loader's ``except Exception`` can hide a hang."""


def _run_bounded(fn, seconds: float = 5.0):
    if not hasattr(signal, "setitimer"):
        return fn()

    def alarm(signum, frame):
        raise _Hung(f"loader still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _mutate(raw: bytes, rng: np.random.Generator, kind: str) -> bytes:
    """Random bytes (half of them after a real file's first bytes, e.g. its magic), a truncation, or bit flips."""
    if kind == "random":
        b = rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        return raw[: int(rng.integers(0, 64))] + b if rng.random() < 0.5 else b
    if kind == "truncated":
        return raw[: int(rng.integers(0, len(raw)))]
    a = bytearray(raw)
    for _ in range(int(rng.integers(1, 9))):
        j = int(rng.integers(0, len(a)))
        a[j] ^= 1 << int(rng.integers(0, 8))
    return bytes(a)


KINDS = ("random", "truncated", "bitflip")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_fuzz_checkpoint(tmp_path):
    rng = np.random.default_rng(1234)
    raw = _save_ckpt(tmp_path / "real.pt").read_bytes()
    path = tmp_path / "checkpoint.pt"
    outcome: dict[str, int] = {}
    for i in range(150):
        kind = KINDS[i % 3]
        path.write_bytes(_mutate(raw, rng, kind))
        try:
            meta = _run_bounded(lambda: load_checkpoint(path))
            try:  # a loaded dict must also build its model or fail clearly
                _run_bounded(lambda meta=meta: model_from_checkpoint(meta, path=path))
                result = "loaded"
            except UnknownModelError:  # a flipped model name names an unregistered model
                result = "unknown model"
        except CheckpointError:
            result = "CheckpointError"
        outcome[f"{kind}: {result}"] = outcome.get(f"{kind}: {result}", 0) + 1
    assert sum(outcome.values()) == 150
    assert outcome["random: CheckpointError"] == 50 and outcome["truncated: CheckpointError"] == 50
    assert outcome.get("bitflip: CheckpointError", 0) > 0


def test_fuzz_replay_snapshot(tmp_path):
    rng = np.random.default_rng(4321)
    src = save_replay(_small_replay(tmp_path), tmp_path / "snap")
    files = sorted(p.name for p in src.iterdir())
    meta = json.loads((src / "replay_meta.json").read_text())
    case = tmp_path / "case"
    outcome: dict[str, int] = {}

    def run(kind: str) -> None:
        try:
            _run_bounded(lambda: load_replay(case))
            result = "loaded"
        except CheckpointError:
            result = "CheckpointError"
        outcome[f"{kind}: {result}"] = outcome.get(f"{kind}: {result}", 0) + 1

    for i in range(120):  # damage the bytes of one file
        name, kind = files[i % len(files)], KINDS[i % 3]
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(src, case)
        (case / name).write_bytes(_mutate((src / name).read_bytes(), rng, kind))
        run(kind)
    values = [
        None,
        True,
        -1,
        0,
        1,
        23,
        24,
        25,
        10**30,
        1.5,
        "x",
        "../x.npy",
        [],
        [1],
        {},
        "object",
        "float32",
        [24, 8, 8, 3],
        "observation.npy",
        2**63,
    ]
    for i in range(60):  # well-formed JSON with a field of another value or type
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(src, case)
        bad = json.loads(json.dumps(meta))
        target = bad if i % 2 else bad["arrays"][int(rng.integers(0, len(bad["arrays"])))]
        key = sorted(k for k in target if k != "rng_state")[int(rng.integers(0, len(target) - (i % 2)))]
        target[key] = values[int(rng.integers(0, len(values)))]
        (case / "replay_meta.json").write_text(json.dumps(bad))
        run("json field")
    assert sum(outcome.values()) == 180
    assert outcome["random: CheckpointError"] == 40 and outcome["truncated: CheckpointError"] == 40
    assert outcome.get("json field: CheckpointError", 0) > 30


# ------------------------------------------------------------------------------ (c) temp files
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_are_removed(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    run = tmp_path / "run"
    run.mkdir()
    (run / f".checkpoint.pt.tmp-{dead}").write_bytes(b"half a checkpoint")
    (run / f".checkpoint.pt.tmp-{live}").write_bytes(b"another writer is busy")
    for name in (
        f"replay-000000000035.tmp-{dead}",
        f"replay-000000000012.old-{dead}",
        f"replay-7.tmp-{live}",
    ):
        (run / name).mkdir()
        (run / name / "reward.npy").write_bytes(b"x")
    (run / f"replay-000000000012.old-{dead}" / "rows").mkdir()  # a version-1 leftover
    (run / f"replay-9.tmp-{dead}").mkdir()  # killed before its first file
    (run / f"notes.tmp-{dead}").mkdir()  # not a replay: kept
    (run / f"notes.tmp-{dead}" / "todo.txt").write_text("keep me")
    (run / f"data.tmp-{dead}").write_text("a user file, not hidden: kept")
    (run / "checkpoint.pt").write_bytes(b"keep")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", run / f"replay-1.tmp-{dead}")
    removed = clean_stale_temp_files(run)
    assert sorted(p.name for p in removed) == sorted(
        [
            f".checkpoint.pt.tmp-{dead}",
            f"replay-000000000035.tmp-{dead}",
            f"replay-000000000012.old-{dead}",
            f"replay-9.tmp-{dead}",
        ]
    )
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [
            f".checkpoint.pt.tmp-{live}",
            f"replay-7.tmp-{live}",
            f"notes.tmp-{dead}",
            f"data.tmp-{dead}",
            "checkpoint.pt",
            f"replay-1.tmp-{dead}",
        ]
    )
    assert (tmp_path / "elsewhere").is_dir()
    assert clean_stale_temp_files(tmp_path / "missing") == []


def test_writers_clean_their_own_leftovers(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".c.pt.tmp-{dead}").write_bytes(b"old")
    (tmp_path / f".other.pt.tmp-{dead}").write_bytes(b"not c.pt's: the run start cleans it")
    atomic_torch_save({"a": 1}, tmp_path / "c.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c.pt", f".other.pt.tmp-{dead}"])
    (tmp_path / f"snap.tmp-{dead}").mkdir()
    (tmp_path / f"snap.tmp-{dead}" / "action.npy").write_bytes(b"half")
    (tmp_path / f"snap.old-{dead}").mkdir()
    save_replay(_small_replay(tmp_path), tmp_path / "snap")
    assert not (tmp_path / f"snap.tmp-{dead}").exists() and not (tmp_path / f"snap.old-{dead}").exists()
    assert len(load_replay(tmp_path / "snap")) == 24
