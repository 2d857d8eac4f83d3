"""Offline datasets of real episodes: memory-mapped ``.npy`` shards plus ``manifest.json``.

``wmenv collect --env ID --steps N --out DATA --shard-size S`` (or :func:`collect_dataset`) writes::

    DATA/manifest.json                   what the data is (below)
    DATA/shard_00000_observation.npy     rows 0 .. S-1 of the observations
    DATA/shard_00000_action.npy          ... one file per row key and shard
    DATA/shard_00000_reward.npy
    DATA/shard_00000_terminated.npy
    DATA/shard_00000_truncated.npy
    DATA/shard_00000_is_first.npy
    DATA/shard_00000_is_last.npy
    DATA/shard_00000_episode.npy
    DATA/shard_00001_...

Rows are exactly the replay rows of :mod:`wmenv.train.replay` (one row per time step, the final
observation included; ``action`` is the action that led to the row's observation), in collection
order; nested keys of ``Dict`` observations become ``observation__<key>``. A shard holds ``S``
rows (the last one fewer), so an episode may continue in the next shard.

**Why this layout and not a TensorDict memmap folder.** Every file is a plain ``.npy`` array written
with ``np.save(allow_pickle=False)`` and read with ``np.load(allow_pickle=False, mmap_mode="r")``
after its header has been checked against the manifest (dtype, shape, byte size): nothing in a
dataset is unpickled or imported, so a dataset someone sent you cannot run code. TensorDict's
memmap loader reads a ``meta.json`` that may name classes and unpickle non-tensor entries; reading
that safely needs the restricted reader :mod:`wmenv.train.replay` keeps for its old snapshots,
and gains nothing here. Shards keep files of a bounded size, let collection stream to disk
(memory holds at most one shard), and are memory-mapped lazily (a small LRU of open shards), so a
dataset larger than memory trains: only the sampled rows are read.

``manifest.json`` (format ``"wmenv-dataset"`` version 1) records the env id, its ``make_env``
arguments, its protocol (``wmenv_protocol`` of the env, when the backend sets one) and time limit,
the observation and action spaces (:func:`wmenv.train.checkpoint.space_to_dict`), the collection
policy, seed, counts, every key's dtype and row shape, every shard's rows and its episode runs
``[episode_id, first_row, rows]``, the train/val split (whole episodes, chosen with the seed), the
wmenv version and the command that wrote it.

A dataset opens (:func:`open_dataset`) as

- a TorchRL replay buffer per split (:meth:`Dataset.replay`): a read-only :class:`DatasetStorage`
  and an episode-respecting slice sampler, so :func:`wmenv.train.replay.sample_sequences` gives the
  same ``[B, T]`` batches (keys, dtypes, never crossing an episode) as it does on the online replay;
- :class:`~wmenv.core.protocol.StartStates` for imagination (:meth:`Dataset.start_states`).

Any file that does not match the manifest raises :class:`~wmenv.core.errors.CheckpointError`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import ReplayBuffer, SliceSampler
from torchrl.data.replay_buffers.storages import Storage

from wmenv.core.errors import CheckpointError, ConfigError

__all__ = [
    "DATASET_FORMAT",
    "DATASET_FORMAT_VERSION",
    "MANIFEST",
    "SPLITS",
    "Dataset",
    "DatasetStorage",
    "DatasetSliceSampler",
    "DatasetReplayBuffer",
    "DatasetStartStates",
    "DatasetWriter",
    "collect_dataset",
    "open_dataset",
    "is_dataset",
]

DATASET_FORMAT = "wmenv-dataset"
DATASET_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Splits a dataset can be opened as (``"all"``: both, in collection order).
SPLITS = ("train", "val", "all")
_DTYPES = frozenset(
    ["bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64", "float16", "float32",
     "float64"]
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")
_MAX_MANIFEST_BYTES = 256 * 2**20
_OPEN_SHARDS = 32  # memory maps kept open (each holds a file descriptor per key)


# ---------------------------------------------------------------------------------- writing
def _leaves(td: TensorDictBase) -> dict[tuple[str, ...], np.ndarray]:
    out = {}
    for key in td.keys(include_nested=True, leaves_only=True):
        key_t = (key,) if isinstance(key, str) else tuple(key)
        value = td.get(key_t)
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"cannot store row entry {key_t!r}: a {type(value).__name__}, not a tensor")
        out[key_t] = np.ascontiguousarray(value.detach().cpu().numpy())
    return out


def _name_for(key: tuple[str, ...], used: set[str]) -> str:
    stem = "__".join(re.sub(r"[^A-Za-z0-9_\-]", "_", part) for part in key)[:90].lstrip("_-") or "key"
    name, i = stem, 1
    while name.lower() in used:
        name, i = f"{stem}-{i}", i + 1
    used.add(name.lower())
    return name


def _shard_file(index: int, name: str) -> str:
    return f"shard_{index:05d}_{name}.npy"


def _runs(episode: np.ndarray) -> list[list[int]]:
    """``[[episode_id, first_row, rows], ...]``: maximal runs of equal consecutive ids."""
    if episode.size == 0:
        return []
    cut = np.flatnonzero(episode[1:] != episode[:-1]) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [episode.size]])
    return [[int(episode[s]), int(s), int(e - s)] for s, e in zip(starts, ends, strict=True)]


class DatasetWriter:
    """A replay-like sink that streams rows into shards of ``shard_size`` rows.

    The :class:`~wmenv.train.collect.Collector` writes into it as into a replay buffer
    (``extend(rows)``); at most one shard of rows is held in memory. Call :meth:`finish` once.

    Args:
        directory: an existing, empty directory.
        shard_size: rows per shard.
    """

    def __init__(self, directory: str | os.PathLike, shard_size: int) -> None:
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ConfigError(f"shard_size must be an int >= 1 (rows per shard), got {shard_size!r}")
        self.directory, self.shard_size = Path(directory), int(shard_size)
        self.keys: list[dict[str, Any]] | None = None
        self.shards: list[dict[str, Any]] = []
        self.rows = 0
        self._pending: dict[tuple[str, ...], list[np.ndarray]] = {}
        self._pending_rows = 0

    def __len__(self) -> int:
        return self.rows + self._pending_rows

    def extend(self, rows: TensorDictBase) -> None:
        """Append a TensorDict ``[n]`` of rows (the keys and row shapes of the first call, always)."""
        if rows.batch_dims != 1:
            raise ConfigError(f"DatasetWriter.extend takes rows [n], got batch size {list(rows.batch_size)}")
        leaves = _leaves(rows)
        if self.keys is None:
            if "episode" not in {k[0] for k in leaves if len(k) == 1}:
                raise ConfigError("dataset rows need an 'episode' key (the replay row format)")
            used: set[str] = set()
            self.keys = [
                {"key": list(k), "name": _name_for(k, used), "dtype": a.dtype.name, "shape": list(a.shape[1:])}
                for k, a in leaves.items()
            ]
            for entry in self.keys:
                if entry["dtype"] not in _DTYPES:
                    raise CheckpointError(f"cannot store {entry['key']} of dtype {entry['dtype']}")
            self._pending = {tuple(e["key"]): [] for e in self.keys}
        expected = {tuple(e["key"]): (e["dtype"], tuple(e["shape"])) for e in self.keys}
        got = {k: (a.dtype.name, tuple(a.shape[1:])) for k, a in leaves.items()}
        if got != expected:
            raise ConfigError(f"rows changed keys, dtypes or shapes: first {expected}, now {got}")
        for k, a in leaves.items():
            self._pending[k].append(a)
        self._pending_rows += int(rows.batch_size[0])
        while self._pending_rows >= self.shard_size:
            self._write_shard(self.shard_size)

    def _write_shard(self, n: int) -> None:
        assert self.keys is not None
        index = len(self.shards)
        episode = None
        for entry in self.keys:
            k = tuple(entry["key"])
            whole = np.concatenate(self._pending[k]) if len(self._pending[k]) > 1 else self._pending[k][0]
            part, rest = whole[:n], whole[n:]
            self._pending[k] = [rest] if len(rest) else []
            with open(self.directory / _shard_file(index, entry["name"]), "wb") as f:
                np.save(f, np.ascontiguousarray(part), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            if k == ("episode",):
                episode = part
        assert episode is not None
        self.shards.append({"rows": int(n), "episodes": _runs(episode)})
        self.rows += n
        self._pending_rows -= n

    def finish(self) -> list[dict[str, Any]]:
        """Write the remaining rows as the last (shorter) shard; returns the shard records."""
        if self._pending_rows:
            self._write_shard(self._pending_rows)
        return self.shards


def _split_episodes(ids: list[int], val_ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """``(train_ids, val_ids)``: ``round(val_ratio * E)`` whole episodes to val (at least one when the
    ratio is positive and there are two episodes or more; never all of them), chosen with ``seed``."""
    ids = sorted(set(ids))
    n_val = 0
    if val_ratio > 0 and len(ids) >= 2:
        n_val = min(len(ids) - 1, max(1, int(round(val_ratio * len(ids)))))
    val = sorted(int(i) for i in np.random.default_rng(seed).choice(ids, n_val, replace=False)) if n_val else []
    chosen = set(val)
    return [i for i in ids if i not in chosen], val


def _protocol_of(env: Any) -> dict[str, Any] | None:
    """The ``wmenv_protocol`` dict of an env (first sub-env of a vector env), else ``None``."""
    target = env.envs[0] if hasattr(env, "envs") and env.envs else env
    try:
        protocol = target.get_wrapper_attr("wmenv_protocol")
    except (AttributeError, TypeError):
        protocol = getattr(target, "wmenv_protocol", None)
    if not isinstance(protocol, Mapping):
        return None
    from wmenv.envs.backends.protocol import jsonable

    return jsonable(dict(protocol))


def collect_dataset(
    env: str | gym.Env | gym.vector.VectorEnv,
    steps: int,
    out: str | os.PathLike,
    *,
    shard_size: int = 10_000,
    val_ratio: float = 0.1,
    policy: Callable[[Any], Any] | None = None,
    policy_name: str = "random",
    num_envs: int = 1,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    command: str | None = None,
    progress: bool = True,
) -> Dataset:
    """Collect ``steps`` real transitions into a new dataset directory ``out`` (see the module docstring).

    The dataset is written under a temporary name next to ``out`` and renamed when complete, so
    ``out`` never holds a partial dataset.

    Args:
        env: env id (``wmenv.make_env``), env instance or vector env (see :class:`~wmenv.train.collect.Collector`).
        steps: env transitions, summed over sub-envs.
        out: the new dataset directory (must not exist, or be empty).
        shard_size: rows per shard.
        val_ratio: share of whole episodes in the val split (``0 <= val_ratio < 1``).
        policy: ``policy(obs_batch) -> actions``; ``None``: uniformly random actions.
        policy_name: how the manifest names the policy (``"random"``, ``"run:<path>"``).
        num_envs: sub-envs when ``env`` is an id.
        seed: reset/action seed of the envs and seed of the split.
        env_kwargs: ``make_env`` arguments (recorded in the manifest).
        command: the command line recorded in the manifest.
        progress: a tqdm bar.

    Returns:
        The dataset, opened.

    Raises:
        ConfigError: bad sizes or ratio, or ``out`` exists and is not empty.
    """
    from wmenv.train.checkpoint import space_to_dict, wmenv_version
    from wmenv.train.collect import Collector
    from wmenv.train.session import env_time_limit

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be an int >= 1, got {steps!r}")
    if isinstance(val_ratio, bool) or not isinstance(val_ratio, int | float) or not 0 <= val_ratio < 1:
        raise ConfigError(f"val_ratio must be a number in [0, 1), got {val_ratio!r}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"dataset directory {out} exists and is not empty; choose a new one (nothing overwritten)")
    env_kwargs = dict(env_kwargs or {})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.time()
    try:
        writer = DatasetWriter(tmp, shard_size)
        collector = Collector(env, writer, num_envs=num_envs, seed=seed, policy=policy,  # type: ignore[arg-type]
                              env_kwargs=env_kwargs, progress=progress)
        try:
            venv = collector.venv
            first = venv.envs[0] if hasattr(venv, "envs") and venv.envs else None
            protocol = _protocol_of(venv)
            limit = env_time_limit(first) if first is not None else None
            if limit is None and protocol is not None and type(protocol.get("max_episode_steps")) is int:
                limit = protocol["max_episode_steps"]  # e.g. ALE: a frame limit, not a TimeLimit wrapper
            obs_space, act_space = venv.single_observation_space, venv.single_action_space
            stats = collector.collect(steps)
            collector.flush()
        finally:
            collector.close()
        shards = writer.finish()
        if not shards or writer.keys is None:
            raise ConfigError("the collection wrote no rows; raise steps")
        if isinstance(env, str):
            env_id: str | None = env
        else:
            spec = getattr(env, "spec", None)
            env_id = getattr(spec, "id", None) if spec is not None else None
        ids = [run[0] for shard in shards for run in shard["episodes"]]
        train_ids, val_ids = _split_episodes(ids, float(val_ratio), seed)
        manifest = {
            "format": DATASET_FORMAT,
            "format_version": DATASET_FORMAT_VERSION,
            "uid": uuid.uuid4().hex,
            "wmenv_version": wmenv_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "command": command,
            "env": {"id": env_id, "kwargs": _jsonable(env_kwargs), "protocol": protocol, "max_episode_steps": limit},
            "observation_space": space_to_dict(obs_space),
            "action_space": space_to_dict(act_space),
            "collection": {"policy": policy_name, "seed": int(seed), "num_envs": int(collector.num_envs),
                           "steps": int(stats.steps), "complete_episodes": int(stats.episodes),
                           "mean_return": None if not stats.episode_returns else float(stats.mean_return),
                           "seconds": round(time.time() - started, 3)},
            "counts": {"rows": int(writer.rows), "episodes": len(set(ids)), "shards": len(shards),
                       "train_episodes": len(train_ids), "val_episodes": len(val_ids)},
            "shard_size": int(shard_size),
            "keys": writer.keys,
            "shards": shards,
            "split": {"val_ratio": float(val_ratio), "seed": int(seed), "train": train_ids, "val": val_ids},
        }
        _write_json(tmp / MANIFEST, manifest)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Dataset(out)


def _jsonable(value: Any) -> Any:
    from wmenv.envs.backends.protocol import jsonable

    return jsonable(value)


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w") as f:
        f.write(json.dumps(data, indent=1))
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------------- reading
def _bad(where: Path, msg: str) -> CheckpointError:
    return CheckpointError(f"dataset {where}: {msg}")


def _int(v: Any, what: str, where: Path, minimum: int = 0) -> int:
    if type(v) is not int or v < minimum:
        raise _bad(where, f"{what} must be an int >= {minimum}, got {str(v)[:80]}")
    return v


def _plain_file(path: Path, where: Path) -> None:
    """Refuse a missing file, a symlink, a folder, a FIFO or a device (reading one could block forever)."""
    if path.is_symlink() or not path.is_file():
        raise _bad(where, f"{path.name} is missing or not a regular file")


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding a dataset ``manifest.json``."""
    return (Path(path) / MANIFEST).is_file()


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not directory.is_dir() or not path.exists():
        raise CheckpointError(
            f"no dataset at {directory} (missing {MANIFEST}); write one with "
            "`wmenv collect --env ID --steps N --out DIR --shard-size S`"
        )
    _plain_file(path, directory)
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise ValueError(f"{path.stat().st_size} bytes, more than any dataset manifest")
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # JSONDecodeError / UnicodeDecodeError are ValueErrors
        raise _bad(directory, f"corrupt {MANIFEST} ({type(err).__name__}: {str(err)[:200]})") from err
    if not isinstance(manifest, dict):
        raise _bad(directory, f"{MANIFEST} must hold a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != DATASET_FORMAT:
        raise _bad(directory, f"{MANIFEST} is not a wmenv dataset manifest (format {str(manifest.get('format'))[:60]!r})")
    version = manifest.get("format_version")
    if type(version) is not int or version != DATASET_FORMAT_VERSION:
        raise _bad(directory, f"format_version {str(version)[:40]!r}; this wmenv reads version {DATASET_FORMAT_VERSION}")
    return manifest


def _check_header(path: Path, dtype: np.dtype, shape: tuple[int, ...], where: Path) -> None:
    """Compare a ``.npy`` header (parsed without unpickling or mapping anything) with the manifest."""
    _plain_file(path, where)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            offset = f.tell()
        size = path.stat().st_size
    except Exception as err:  # noqa: BLE001 - numpy's header parser raises ValueError, SyntaxError, ...
        raise _bad(where, f"{path.name} is not a valid .npy array ({type(err).__name__}: {str(err)[:200]})") from err
    if got_dtype.hasobject or got_dtype.fields is not None or got_dtype.kind not in "biuf":
        raise _bad(where, f"{path.name} holds dtype {str(got_dtype)[:80]}; only numeric and bool arrays are read")
    if got_dtype != dtype or fortran:
        raise _bad(where, f"{path.name}: expected C-ordered {dtype.name} (per {MANIFEST}), the file holds "
                          f"{got_dtype.str}{' (Fortran order)' if fortran else ''}")
    if tuple(got_shape) != shape:
        raise _bad(where, f"{path.name}: expected shape {list(shape)} (per {MANIFEST}), the file holds {list(got_shape)}")
    expected = offset + math.prod(shape) * dtype.itemsize
    if size != expected:
        raise _bad(where, f"{path.name}: expected {expected} bytes for {list(shape)} {dtype.name}, the file has {size} "
                          "(truncated or corrupt)")


def _load(path: Path, dtype: np.dtype, shape: tuple[int, ...], where: Path) -> np.ndarray:
    _check_header(path, dtype, shape, where)
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r") if math.prod(shape) else np.zeros(shape, dtype)
    except Exception as err:  # noqa: BLE001 - allow_pickle=False: parsing only, any failure is a bad file
        raise _bad(where, f"cannot read {path.name} ({type(err).__name__}: {str(err)[:200]})") from err
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != shape:
        raise _bad(where, f"{path.name} changed while it was read; expected {dtype.name} {list(shape)}")
    return arr


class Dataset:
    """A dataset directory written by :func:`collect_dataset`, opened read-only.

    Opening reads ``manifest.json``, checks it and the header of every shard file, and reads the
    ``episode`` column (8 bytes per row) to check it against the manifest's episode runs. Frames
    and other columns are memory-mapped on first use.

    Attributes:
        path: the dataset directory.
        manifest: the parsed manifest.
        observation_space, action_space: the real env's spaces.
        env_id, env_kwargs, protocol, max_episode_steps: the real env it was collected on.

    Raises:
        CheckpointError: a missing, corrupt, inconsistent or hostile manifest or shard file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        from wmenv.train.checkpoint import space_from_dict

        self.path = Path(path)
        where = self.path
        m = self.manifest = _read_manifest(self.path)
        env = m.get("env")
        if not isinstance(env, dict):
            raise _bad(where, "field 'env' must be an object")
        self.env_id: str | None = env.get("id") if isinstance(env.get("id"), str) else None
        self.env_kwargs: dict[str, Any] = dict(env["kwargs"]) if isinstance(env.get("kwargs"), dict) else {}
        self.protocol: dict[str, Any] | None = env.get("protocol") if isinstance(env.get("protocol"), dict) else None
        limit = env.get("max_episode_steps")
        self.max_episode_steps: int | None = limit if type(limit) is int and limit > 0 else None
        self.observation_space: gym.Space = space_from_dict(m.get("observation_space"))
        self.action_space: gym.Space = space_from_dict(m.get("action_space"))
        self._keys = self._parse_keys(m.get("keys"))
        shards = m.get("shards")
        if not isinstance(shards, list) or not shards or len(shards) > 10**6:
            raise _bad(where, "field 'shards' must list the shards")
        self.shard_rows = np.zeros(len(shards), dtype=np.int64)
        self._runs: list[tuple[int, int, int, int]] = []  # (shard, first_row, rows, episode id)
        episodes = []
        for i, shard in enumerate(shards):
            if not isinstance(shard, dict):
                raise _bad(where, f"shards[{i}] must be an object")
            rows = _int(shard.get("rows"), f"shards[{i}].rows", where, 1)
            self.shard_rows[i] = rows
            for _key, name, dtype, row_shape in self._keys:
                shape = (rows, *row_shape)
                _check_header(self.path / _shard_file(i, name), dtype, shape, where)
            episode = _load(self.path / _shard_file(i, "episode"), np.dtype("int64"), (rows,), where)
            episode = np.array(episode)  # in memory: 8 bytes per row
            if _runs(episode) != shard.get("episodes"):
                raise _bad(where, f"shards[{i}].episodes does not match the episode ids in "
                                  f"{_shard_file(i, 'episode')}")
            self._runs += [(i, start, n, eid) for eid, start, n in shard["episodes"]]
            episodes.append(episode)
        self._episode = np.concatenate(episodes)
        counts = m.get("counts") if isinstance(m.get("counts"), dict) else {}
        if counts.get("rows") != int(self.shard_rows.sum()):
            raise _bad(where, f"counts.rows {str(counts.get('rows'))[:40]} differs from the shards' {int(self.shard_rows.sum())}")
        self._split_ids = self._parse_split(m.get("split"), set(int(x) for x in np.unique(self._episode)))
        self._mmaps: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._segments: dict[str, tuple[np.ndarray, ...]] = {}

    def _parse_keys(self, keys: Any) -> list[tuple[tuple[str, ...], str, np.dtype, tuple[int, ...]]]:
        where = self.path
        if not isinstance(keys, list) or not keys or len(keys) > 1000:
            raise _bad(where, "field 'keys' must list the row keys")
        out, names, seen = [], set(), set()
        for i, entry in enumerate(keys):
            if not isinstance(entry, dict):
                raise _bad(where, f"keys[{i}] must be an object with key, name, dtype and shape")
            key, name, dtype, shape = entry.get("key"), entry.get("name"), entry.get("dtype"), entry.get("shape")
            if not isinstance(key, list) or not key or len(key) > 16 or not all(isinstance(k, str) and k for k in key):
                raise _bad(where, f"keys[{i}].key must be a list of 1 to 16 non-empty strings, got {str(key)[:80]}")
            if not isinstance(name, str) or not _NAME_RE.match(name) or name.lower() in names:
                raise _bad(where, f"keys[{i}].name must be a unique plain name (letters, digits, '_', '-'), "
                                  f"got {str(name)[:80]!r}")
            if not isinstance(dtype, str) or dtype not in _DTYPES:
                raise _bad(where, f"keys[{i}].dtype must be one of {sorted(_DTYPES)}, got {str(dtype)[:40]!r}")
            if not isinstance(shape, list) or len(shape) > 31 or any(type(d) is not int or d < 0 for d in shape):
                raise _bad(where, f"keys[{i}].shape must be a list of non-negative ints, got {str(shape)[:80]}")
            if math.prod(shape) > 2**31:
                raise _bad(where, f"keys[{i}].shape {shape} is too large for one row")
            names.add(name.lower())
            k = tuple(key)
            for j in range(1, len(k)):
                if k[:j] in seen:
                    raise _bad(where, f"key {list(k[:j])} is both an array and a group")
            seen.add(k)
            out.append((k, name, np.dtype(dtype), tuple(shape)))
        if any(len(a) > len(b) and a[: len(b)] == b for a in seen for b in seen):
            raise _bad(where, "a key is both an array and a group")
        episode = [e for e in out if e[0] == ("episode",)]
        if not episode or episode[0][1] != "episode" or episode[0][2] != np.dtype("int64") or episode[0][3] != ():
            raise _bad(where, "the rows need an 'episode' key stored as int64 scalars in shard_*_episode.npy")
        return out

    def _parse_split(self, split: Any, ids: set[int]) -> dict[str, frozenset[int]]:
        where = self.path
        if not isinstance(split, dict):
            raise _bad(where, "field 'split' must be an object with 'train' and 'val' episode ids")
        out = {}
        for name in ("train", "val"):
            value = split.get(name)
            if not isinstance(value, list) or not all(type(x) is int for x in value):
                raise _bad(where, f"split.{name} must be a list of episode ids")
            out[name] = frozenset(value)
        if out["train"] & out["val"]:
            raise _bad(where, f"episodes {sorted(out['train'] & out['val'])[:10]} are in both splits")
        if out["train"] | out["val"] != ids:
            missing = sorted(ids - (out["train"] | out["val"]))[:10]
            extra = sorted((out["train"] | out["val"]) - ids)[:10]
            raise _bad(where, f"the split does not cover the stored episodes (unassigned {missing}, unknown {extra})")
        return out

    def __repr__(self) -> str:
        return (f"Dataset({str(self.path)!r}, env={self.env_id!r}, rows={len(self._episode)}, "
                f"episodes train/val={len(self._split_ids['train'])}/{len(self._split_ids['val'])})")

    # ------------------------------------------------------------------ facts
    @property
    def id(self) -> str:
        """A fingerprint of the dataset (its random uid, rows, shards, val episodes) to recognise it later."""
        uid = self.manifest.get("uid")
        uid = uid if isinstance(uid, str) else str(self.manifest.get("created"))
        return f"{uid[:64]}|{len(self._episode)}|{len(self.shard_rows)}|{len(self._split_ids['val'])}"

    @property
    def keys(self) -> list[tuple[str, ...]]:
        """The row keys (nested keys as tuples)."""
        return [k for k, *_ in self._keys]

    def __len__(self) -> int:
        return int(len(self._episode))

    def episodes(self, split: str = "all") -> list[int]:
        """Episode ids of a split, sorted."""
        self._check_split(split)
        if split == "all":
            return sorted(self._split_ids["train"] | self._split_ids["val"])
        return sorted(self._split_ids[split])

    def num_rows(self, split: str = "all") -> int:
        """Rows of a split."""
        return int(self._split_segments(split)[3].sum())

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in SPLITS:
            raise ConfigError(f"unknown dataset split {split!r}; expected one of {list(SPLITS)}")

    # ------------------------------------------------------------------ rows
    def _array(self, shard: int, name: str) -> np.ndarray:
        key = (shard, name)
        arr = self._mmaps.get(key)
        if arr is not None:
            self._mmaps.move_to_end(key)
            return arr
        _, _, dtype, row_shape = next(e for e in self._keys if e[1] == name)
        arr = _load(self.path / _shard_file(shard, name), dtype, (int(self.shard_rows[shard]), *row_shape), self.path)
        self._mmaps[key] = arr
        if len(self._mmaps) > _OPEN_SHARDS * len(self._keys):
            self._mmaps.popitem(last=False)
        return arr

    def _split_segments(self, split: str) -> tuple[np.ndarray, ...]:
        """``(start_in_split, shard, first_row_in_shard, rows)`` of the split's contiguous pieces."""
        self._check_split(split)
        if split not in self._segments:
            keep = None if split == "all" else self._split_ids[split]
            segs: list[list[int]] = []
            for shard, start, n, eid in self._runs:
                if keep is not None and eid not in keep:
                    continue
                if segs and segs[-1][1] == shard and segs[-1][2] + segs[-1][3] == start:
                    segs[-1][3] += n  # merge with the previous piece of the same shard
                else:
                    segs.append([0, shard, start, n])
            arr = np.asarray(segs, dtype=np.int64).reshape(-1, 4)
            if len(arr):
                arr[:, 0] = np.concatenate([[0], np.cumsum(arr[:, 3])[:-1]])
            self._segments[split] = tuple(arr[:, j].copy() for j in range(4))
        return self._segments[split]

    def episode_ids(self, split: str = "all") -> np.ndarray:
        """The ``episode`` column of a split, in storage order (in memory)."""
        _, shard, first, rows = self._split_segments(split)
        offsets = np.concatenate([[0], np.cumsum(self.shard_rows)[:-1]])
        if not len(rows):
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self._episode[offsets[s] + f: offsets[s] + f + n] for s, f, n in
                               zip(shard, first, rows, strict=True)])

    def gather(self, split: str, index: np.ndarray) -> TensorDict:
        """Rows ``index`` (positions in the split, 1-D int array) as a TensorDict ``[len(index)]``.

        Only those rows are read from the memory-mapped shards.
        """
        start, shard, first, rows = self._split_segments(split)
        n_rows = int(rows.sum())
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= n_rows):
            raise IndexError(f"dataset rows {index.min()}..{index.max()} out of range for {n_rows} {split} rows")
        seg = np.searchsorted(start, index, side="right") - 1
        seg_shard = shard[seg] if index.size else np.zeros(0, dtype=np.int64)
        local = first[seg] + (index - start[seg]) if index.size else np.zeros(0, dtype=np.int64)
        out = TensorDict({}, batch_size=[index.size])
        arrays = {name: np.empty((index.size, *row_shape), dtype) for _, name, dtype, row_shape in self._keys}
        for s in np.unique(seg_shard):
            sel = np.flatnonzero(seg_shard == s)
            rows_s = local[sel]
            for _, name, _, _ in self._keys:
                arrays[name][sel] = self._array(int(s), name)[rows_s]
        for key, name, _, _ in self._keys:
            out.set(key, torch.from_numpy(arrays[name]))
        return out

    def rows(self, split: str = "all") -> TensorDict:
        """Every row of a split in memory (for small datasets and tests; :meth:`replay` streams)."""
        return self.gather(split, np.arange(self.num_rows(split)))

    # ------------------------------------------------------------------ TorchRL / imagination
    def storage(self, split: str = "train") -> DatasetStorage:
        """A read-only TorchRL storage over a split."""
        return DatasetStorage(self, split)

    def replay(self, split: str = "train", *, seq_len: int = 16, seed: int | None = None) -> DatasetReplayBuffer:
        """A TorchRL replay buffer over a split for :func:`wmenv.train.replay.sample_sequences`.

        Args:
            split: ``"train"``, ``"val"`` or ``"all"``.
            seq_len: default sequence length of the sampler (any length can be asked for later).
            seed: seed of the buffer's generator (``None``: drawn from torch's global RNG).

        Raises:
            ConfigError: an empty split (e.g. ``"val"`` of a dataset collected with ``--val-ratio 0``).
        """
        return DatasetReplayBuffer(self.storage(split), seq_len=seq_len, seed=seed)

    def start_states(self, split: str = "val", *, context_length: int = 1) -> DatasetStartStates:
        """Start states for imagination: ``context_length``-step slices of the split's episodes."""
        return DatasetStartStates(self, split, context_length=context_length)


class DatasetStorage(Storage):
    """A read-only TorchRL :class:`~torchrl.data.replay_buffers.storages.Storage` over one split.

    ``get(index)`` gathers the rows from the memory-mapped shards (nothing else is read); the
    ``episode`` column is kept in memory (:attr:`episode`) for the samplers. A dataset is not a ring
    buffer: ``_is_full`` is false, so trajectories never wrap from the last row to the first.
    """

    def __init__(self, dataset: Dataset, split: str = "train") -> None:
        n = dataset.num_rows(split)
        if n == 0:
            raise ConfigError(f"the {split!r} split of {dataset.path} is empty"
                              + (" (it was collected with --val-ratio 0)" if split == "val" else ""))
        super().__init__(max_size=n)
        self.dataset, self.split = dataset, split
        self.episode = torch.from_numpy(dataset.episode_ids(split))

    def __len__(self) -> int:
        return self.max_size

    @property
    def _is_full(self) -> bool:
        return False

    def _index(self, index: Any) -> tuple[np.ndarray, tuple[int, ...] | None]:
        """``(flat positions, output batch shape or None for one row)``."""
        n = self.max_size
        if isinstance(index, tuple):
            if len(index) != 1:
                raise IndexError(f"a dataset storage is 1-D, got a {len(index)}-D index")
            index = index[0]
        if isinstance(index, int | np.integer) and not isinstance(index, bool):
            i = int(index) + (n if int(index) < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"row {int(index)} out of range for {n} rows")
            return np.asarray([i]), None
        if isinstance(index, slice):
            flat = np.arange(*index.indices(n), dtype=np.int64)
            return flat, (len(flat),)
        if isinstance(index, range):
            index = np.asarray(index, dtype=np.int64)
        if isinstance(index, torch.Tensor):
            index = index.detach().cpu().numpy()
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (n,):
                raise IndexError(f"a boolean index must have shape ({n},), got {index.shape}")
            index = np.flatnonzero(index)
        if index.dtype.kind not in "iu":
            raise IndexError(f"dataset rows are indexed by integers, got dtype {index.dtype}")
        index = index.astype(np.int64)
        index = np.where(index < 0, index + n, index)
        return index.reshape(-1), tuple(index.shape)

    def get(self, index: Any) -> TensorDictBase:
        """Rows at ``index`` (int, slice, range, list, array or tensor) as a TensorDict."""
        flat, shape = self._index(index)
        rows = self.dataset.gather(self.split, flat)
        if shape is None:
            return rows[0]
        return rows.reshape(*shape) if len(shape) != 1 else rows

    def set(self, cursor: Any, data: Any, *, set_cursor: bool = True) -> None:
        raise ConfigError("a dataset is read-only; collect a new one (wmenv collect --shard-size ...) to add rows")

    def state_dict(self) -> dict[str, Any]:
        return {"path": str(self.dataset.path), "split": self.split, "len": self.max_size}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("len") != self.max_size:
            raise CheckpointError(f"storage state of {state_dict.get('len')} rows does not fit {self.max_size} rows")

    def _empty(self) -> None:
        raise ConfigError("a dataset is read-only; it cannot be emptied")


class DatasetSliceSampler(SliceSampler):
    """TorchRL's ``SliceSampler`` (same draws: a trajectory uniformly, then a start in it) over a
    :class:`DatasetStorage`, with the trajectory boundaries computed once from the in-memory
    ``episode`` column and no extra read of the sampled rows."""

    def _get_stop_and_length(self, storage: Any, fallback: bool = True) -> Any:
        if not isinstance(storage, DatasetStorage):
            return super()._get_stop_and_length(storage, fallback)
        cached = self._cache.get("wmenv-dataset")
        if cached is None or cached[0] is not storage:
            vals = self._find_start_stop_traj(trajectory=storage.episode, at_capacity=False)
            cached = self._cache["wmenv-dataset"] = (storage, vals)
        return cached[1]

    def _finalize_index(self, *, index: torch.Tensor, storage: Any, **kwargs: Any) -> Any:
        if not isinstance(storage, DatasetStorage):
            return super()._finalize_index(index=index, storage=storage, **kwargs)
        return index.to(torch.long).unbind(-1), {}


def _identity(x: Any) -> Any:
    return x


class DatasetReplayBuffer(ReplayBuffer):
    """A TorchRL ``ReplayBuffer`` over a :class:`DatasetStorage` (read-only: no ``extend``).

    :func:`wmenv.train.replay.sample_sequences` works on it as on the online replay; when it asks for
    another sequence length, the new plain ``SliceSampler`` it sets is turned into a
    :class:`DatasetSliceSampler` with the same settings.
    """

    def __init__(self, storage: DatasetStorage, *, seq_len: int = 16, seed: int | None = None) -> None:
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ConfigError(f"seq_len must be an int >= 1, got {seq_len!r}")
        gen = torch.Generator()
        gen.manual_seed(int(torch.randint(0, 2**62, ()).item()) if seed is None else int(seed))
        from wmenv.train.replay import _quiet_dependency_logs

        _quiet_dependency_logs()
        super().__init__(storage=storage, sampler=DatasetSliceSampler(slice_len=seq_len, traj_key="episode",
                                                                      strict_length=True),
                         collate_fn=_identity, generator=gen)
        self._wmenv_options = {"strict_length": True, "without_replacement": False}

    def set_sampler(self, sampler: Any) -> Any:
        if type(sampler) is SliceSampler:
            sampler = DatasetSliceSampler(slice_len=sampler.slice_len, traj_key="episode",
                                          strict_length=sampler.strict_length)
        return super().set_sampler(sampler)

    def extend(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError("a dataset is read-only; collect a new one to add rows")

    add = extend


class DatasetStartStates:
    """:class:`~wmenv.core.protocol.StartStates` drawing ``context_length``-step slices of a split's episodes.

    Same draws as :class:`~wmenv.core.protocol.ReplayStartStates` (an end step uniformly among those
    with ``context_length - 1`` earlier steps of the same episode), reading only the drawn rows.
    """

    def __init__(self, dataset: Dataset, split: str = "val", *, context_length: int = 1) -> None:
        if isinstance(context_length, bool) or not isinstance(context_length, int) or context_length < 1:
            raise ConfigError(f"context_length must be an int >= 1, got {context_length!r}")
        self.storage = DatasetStorage(dataset, split)
        self.context_length = context_length
        ep = self.storage.episode
        valid = torch.ones(ep.shape[0], dtype=torch.bool)
        valid[: context_length - 1] = False
        for k in range(1, context_length):
            valid[k:] &= ep[k:] == ep[:-k]
        self.valid_ends = valid.nonzero().squeeze(-1)
        if self.valid_ends.numel() == 0:
            raise ConfigError(f"no episode of the {split!r} split of {dataset.path} has {context_length} steps; "
                              "lower context_length")

    def sample(self, batch_size: int, *, generator: torch.Generator, seed: int | None = None,
               options: Mapping[str, Any] | None = None) -> TensorDictBase:
        pick = torch.randint(self.valid_ends.numel(), (batch_size,), generator=generator,
                             device=generator.device).cpu()
        ends = self.valid_ends[pick]
        if self.context_length == 1:
            return self.storage.get(ends)
        idx = ends[:, None] + torch.arange(-self.context_length + 1, 1)[None, :]
        return self.storage.get(idx)


def open_dataset(path: str | os.PathLike) -> Dataset:
    """Open a dataset directory (see :class:`Dataset`)."""
    return Dataset(path)
