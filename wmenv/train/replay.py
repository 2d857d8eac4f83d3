"""Disk-backed replay of real episodes: TorchRL ``ReplayBuffer`` + ``LazyMemmapStorage`` + ``SliceSampler``.

Stored rows (one per time step ``t`` of one episode, written by :mod:`wmenv.train.collect`):

====================  ===========================================================================
``observation``       obs at ``t``; uint8 for uint8 ``Box`` spaces (pixels), int64 for discrete
                      spaces, float32 otherwise; a ``Dict`` space gives a nested TensorDict
``action``            action taken at ``t-1`` that led to this obs (zeros at the first step);
                      int64 index for ``Discrete`` (shape ``()``), float32 for ``Box``
``reward``            float32 reward received on arriving at ``t`` (0 at the first step)
``terminated``        bool, this obs is terminal
``truncated``         bool, the episode was cut here (time limit)
``is_first``          bool, first obs of an episode (after ``reset``)
``is_last``           bool, ``terminated | truncated``
``episode``           int64 global episode id
====================  ===========================================================================

An episode of ``T`` env steps yields ``T + 1`` rows, the final observation included. Rows of one
episode are written contiguously (or in contiguous chunks), so the sampler's sequences never mix
episodes. Memory is bounded by ``capacity``: once full, the oldest rows are overwritten.

On disk (:func:`save_replay`, format version 2) a snapshot directory holds one ``.npy`` file per
leaf key (written with ``allow_pickle=False``) and ``replay_meta.json`` listing every key's file,
dtype and shape. Nothing in it is unpickled or imported when it is read, so a hostile snapshot
cannot run code: :func:`load_replay` checks every file against the metadata and raises
:class:`~wmenv.core.errors.CheckpointError` for anything else. Version-1 snapshots (a TensorDict
memmap ``rows/`` folder) are read only when they hold plain tensor files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import LazyMemmapStorage, ReplayBuffer, SliceSampler, SliceSamplerWithoutReplacement

from wmenv.core.errors import CheckpointError, ConfigError
from wmenv.train.checkpoint import clean_stale_temp_files

__all__ = [
    "REPLAY_FORMAT_VERSION",
    "ROW_KEYS",
    "make_replay",
    "sample_sequences",
    "replay_as_tensordict",
    "save_replay",
    "load_replay",
    "next_episode_id",
    "replay_capacity",
]

REPLAY_FORMAT_VERSION = 2
#: Keys of every stored row (``observation`` may be a nested TensorDict).
ROW_KEYS = ("observation", "action", "reward", "terminated", "truncated", "is_first", "is_last", "episode")
_META = "replay_meta.json"
_V1_ROWS = "rows"  # version 1: TensorDict memmap folder
#: dtypes a snapshot may hold (numeric and bool only: no object, string or structured arrays).
_DTYPES = frozenset(
    [
        "bool",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    ]
)
_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,150}\.npy$")
_V1_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,150}$")
_V1_TD_TYPE = "<class 'tensordict._td.TensorDict'>"
_torchrl_quieted = False


def _quiet_dependency_logs() -> None:
    """Silence TorchRL's INFO lines (``Initialized LazyMemmapStorage ...``) unless the user chose a level.

    TorchRL logs to stdout at INFO by default. wmenv lowers the ``torchrl`` logger to WARNING once,
    unless ``RL_LOGGING_LEVEL`` is set or the logger was set to another level than TorchRL's default
    (set ``RL_LOGGING_LEVEL=INFO`` to see the lines again).
    """
    global _torchrl_quieted
    if _torchrl_quieted:
        return
    _torchrl_quieted = True
    if os.environ.get("RL_LOGGING_LEVEL"):
        return
    log = logging.getLogger("torchrl")
    if log.level in (logging.NOTSET, logging.INFO):
        log.setLevel(logging.WARNING)


def _make_sampler(slice_len: int, strict_length: bool, without_replacement: bool) -> SliceSampler:
    cls = SliceSamplerWithoutReplacement if without_replacement else SliceSampler
    return cls(slice_len=slice_len, traj_key="episode", strict_length=strict_length)


def make_replay(
    capacity: int,
    path: str | os.PathLike | None = None,
    *,
    slice_len: int = 16,
    strict_length: bool = True,
    without_replacement: bool = False,
    seed: int | None = None,
) -> ReplayBuffer:
    """Create an empty replay buffer of at most ``capacity`` rows, memory-mapped on disk.

    Args:
        capacity: maximum number of stored rows; older rows are overwritten (ring buffer).
        path: directory for the memory-mapped storage (``None``: a temporary directory).
            This is scratch space; use :func:`save_replay` to persist a buffer.
        slice_len: default sequence length ``T`` of the sampler (:func:`sample_sequences`
            switches it when asked for another length).
        strict_length: only sample full-length slices; episode segments shorter than ``T``
            are never sampled. With ``False`` short slices may come back (no ``[B, T]`` shape).
        without_replacement: use ``SliceSamplerWithoutReplacement`` (epochs over the data).
        seed: seed of the buffer's own ``torch.Generator`` (``None``: seeded from torch's
            global RNG), so sampling does not consume the global RNG.

    TorchRL's INFO log lines are silenced unless ``RL_LOGGING_LEVEL`` is set.

    Returns:
        A ``torchrl.data.ReplayBuffer``; ``extend`` it with TensorDicts ``[N]`` of rows.

    Raises:
        ConfigError: non-positive ``capacity`` or ``slice_len``.
    """
    if int(capacity) < 1:
        raise ConfigError(f"replay capacity must be >= 1 row, got {capacity}")
    if int(slice_len) < 1:
        raise ConfigError(f"slice_len must be >= 1, got {slice_len}")
    gen = torch.Generator()
    if seed is None:
        gen.manual_seed(int(torch.randint(0, 2**62, ()).item()))
    else:
        gen.manual_seed(int(seed))
    _quiet_dependency_logs()
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
    storage = LazyMemmapStorage(int(capacity), scratch_dir=None if path is None else str(path), existsok=True)
    buffer = ReplayBuffer(
        storage=storage,
        sampler=_make_sampler(int(slice_len), strict_length, without_replacement),
        generator=gen,
    )
    buffer._wmenv_options = {
        "strict_length": bool(strict_length),
        "without_replacement": bool(without_replacement),
    }
    return buffer


def replay_capacity(buffer: ReplayBuffer) -> int:
    """Maximum number of rows ``buffer`` holds."""
    return int(buffer.storage.max_size)


def sample_sequences(buffer: ReplayBuffer, batch_size: int, seq_len: int) -> TensorDictBase:
    """Sample ``batch_size`` sequences of ``seq_len`` consecutive rows of one episode each.

    Args:
        buffer: a buffer from :func:`make_replay`.
        batch_size: ``B``.
        seq_len: ``T``.

    Returns:
        TensorDict ``[B, T]`` with the stored row keys (e.g. ``observation`` ``(B, T, *obs_shape)``).

    Raises:
        ConfigError: non-positive sizes, an empty buffer, or no episode segment ``T`` rows long.
    """
    if batch_size < 1 or seq_len < 1:
        raise ConfigError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
    if len(buffer) == 0:
        raise ConfigError("cannot sample from an empty replay buffer; collect data first (wmenv collect)")
    sampler = buffer.sampler
    if getattr(sampler, "slice_len", None) != seq_len:
        opts = getattr(buffer, "_wmenv_options", {"strict_length": True, "without_replacement": False})
        sampler = _make_sampler(seq_len, opts["strict_length"], opts["without_replacement"])
        buffer.set_sampler(sampler)
        buffer.set_rng(buffer._rng)  # the new sampler draws from the buffer's generator too
    try:
        flat = buffer.sample(batch_size * seq_len)
    except RuntimeError as err:
        if "sufficient length" in str(err):
            raise ConfigError(
                f"no episode in the replay has {seq_len} consecutive rows ({err}); collect longer episodes, "
                "lower seq_len, or collect more data"
            ) from err
        raise
    if flat.batch_size[0] != batch_size * seq_len:
        raise ValueError(
            f"sampler returned {flat.batch_size[0]} rows, expected {batch_size * seq_len}; "
            "use strict_length=True for [B, T] batches"
        )
    return flat.reshape(batch_size, seq_len)


def _cursor(buffer: ReplayBuffer) -> int:
    return int(buffer.write_count) % replay_capacity(buffer)


def replay_as_tensordict(buffer: ReplayBuffer) -> TensorDictBase:
    """All stored rows in insertion order (oldest first), e.g. for ``ReplayStartStates``.

    Returns:
        TensorDict ``[N]`` with ``N = len(buffer)``; memory-mapped slices when the storage has
        not wrapped, an in-memory copy otherwise.
    """
    n = len(buffer)
    if n == 0:
        raise ValueError("the replay buffer is empty; collect data first")
    data = buffer.storage[:n]
    if n == replay_capacity(buffer) and _cursor(buffer) != 0:
        c = _cursor(buffer)
        data = torch.cat([buffer.storage[c:n], buffer.storage[:c]], 0)
    return data


def next_episode_id(buffer: ReplayBuffer) -> int:
    """One more than the largest episode id stored (0 for an empty buffer)."""
    n = len(buffer)
    if n == 0:
        return 0
    return int(buffer.storage[:n]["episode"].max().item()) + 1


# ---------------------------------------------------------------------------------- on disk
def _leaf_file_name(key: tuple[str, ...], used: set[str]) -> str:
    """A safe, unique file name for a (nested) key: ``("observation", "pixels")`` → ``observation__pixels.npy``."""
    stem = "__".join(re.sub(r"[^A-Za-z0-9_\-]", "_", part) for part in key)[:100] or "key"
    name = f"{stem}.npy"
    i = 1
    while name.lower() in used:  # case-insensitive file systems
        name = f"{stem}-{i}.npy"
        i += 1
    used.add(name.lower())
    return name


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def save_replay(buffer: ReplayBuffer, directory: str | os.PathLike) -> Path:
    """Persist the stored rows and write position of ``buffer`` into ``directory``.

    Only the ``len(buffer)`` filled rows are written, in the storage's physical order: one ``.npy``
    file per leaf key (``np.save(allow_pickle=False)``; nested keys such as
    ``("observation", "pixels")`` become ``observation__pixels.npy``) plus ``replay_meta.json``
    with every file's key, dtype and shape, and capacity, length, cursor, write count, sampler
    options and the sampler's generator state. Plain arrays and JSON only: no pickle, nothing that
    is imported when read. The directory is written under a temporary name and renamed, so a crash
    never leaves a half-written replay under ``directory``; leftovers of killed writes
    (``<name>.tmp-<pid>``, ``<name>.old-<pid>`` of dead processes) are removed first.

    Returns:
        The directory path.

    Raises:
        FileExistsError: ``directory`` exists and is not a replay (never overwritten).
        CheckpointError: a stored entry is not a tensor of a numeric or bool dtype.
    """
    directory = Path(directory)
    if directory.exists() and not (directory / _META).exists():
        raise FileExistsError(f"{directory} exists and is not a saved replay; refusing to overwrite it")
    if directory.parent.is_dir():
        clean_stale_temp_files(directory.parent, names=[directory.name])
    tmp = directory.with_name(directory.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        n = len(buffer)
        arrays: list[dict[str, Any]] = []
        if n > 0:
            rows = buffer.storage[:n]
            used = {_META.lower()}
            for key in rows.keys(include_nested=True, leaves_only=True):
                key_t = (key,) if isinstance(key, str) else tuple(key)
                value = rows.get(key_t)
                if not isinstance(value, torch.Tensor):
                    raise CheckpointError(
                        f"cannot save replay entry {key_t!r}: it is a {type(value).__name__}, not a tensor; "
                        "replay snapshots hold numeric and bool tensors only"
                    )
                if str(value.dtype).removeprefix("torch.") not in _DTYPES:
                    raise CheckpointError(
                        f"cannot save replay entry {key_t!r} of dtype {value.dtype}; supported: {sorted(_DTYPES)}"
                    )
                arr = np.ascontiguousarray(value.detach().cpu().numpy())
                name = _leaf_file_name(key_t, used)
                with open(tmp / name, "wb") as f:
                    np.save(f, arr, allow_pickle=False)
                    f.flush()
                    os.fsync(f.fileno())
                arrays.append(
                    {"key": list(key_t), "file": name, "dtype": arr.dtype.name, "shape": list(arr.shape)}
                )
        opts = getattr(buffer, "_wmenv_options", {"strict_length": True, "without_replacement": False})
        gen = getattr(buffer, "_rng", None)
        meta = {
            "format_version": REPLAY_FORMAT_VERSION,
            "capacity": replay_capacity(buffer),
            "len": n,
            "write_count": int(buffer.write_count),
            "slice_len": int(getattr(buffer.sampler, "slice_len", 16) or 16),
            "strict_length": bool(opts["strict_length"]),
            "without_replacement": bool(opts["without_replacement"]),
            "rng_state": gen.get_state().tolist() if gen is not None else None,
            "arrays": arrays,
        }
        with open(tmp / _META, "w") as f:
            f.write(json.dumps(meta))
            f.flush()
            os.fsync(f.fileno())
        _fsync(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if directory.exists():
        old = directory.with_name(directory.name + f".old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, directory)
    _fsync(directory.parent)
    return directory


def _bad(where: Path | str, msg: str) -> CheckpointError:
    return CheckpointError(f"saved replay {where}: {msg}")


def _int_field(meta: dict, name: str, where: Path, minimum: int = 0) -> int:
    v = meta.get(name)
    if type(v) is not int or v < minimum:
        raise _bad(where, f"{_META} field {name!r} must be an int >= {minimum}, got {str(v)[:80]}")
    return v


def _bool_field(meta: dict, name: str, where: Path) -> bool:
    v = meta.get(name)
    if type(v) is not bool:
        raise _bad(where, f"{_META} field {name!r} must be true or false, got {str(v)[:80]}")
    return v


def _shape_of(v: Any, what: str, where: Path) -> tuple[int, ...]:
    if not isinstance(v, list) or not v or len(v) > 32 or any(type(d) is not int or d < 0 for d in v):
        raise _bad(where, f"{what}: shape must be a list of 1 to 32 non-negative ints, got {str(v)[:80]}")
    return tuple(v)


def _regular_file(path: Path, where: Path) -> None:
    """Refuse a missing file, a directory, a FIFO or a device (reading one could block forever)."""
    if not path.is_file():
        raise _bad(where, f"{path.name} is missing or not a regular file")


def _read_meta(directory: Path) -> dict[str, Any]:
    meta_path = directory / _META
    if not meta_path.exists():
        raise CheckpointError(
            f"no saved replay at {directory} (missing {_META}); pass a directory written by save_replay "
            "or `wmenv collect --out DIR`"
        )
    _regular_file(meta_path, directory)
    try:
        if meta_path.stat().st_size > 64 * 2**20:
            raise ValueError(f"{meta_path.stat().st_size} bytes, more than any replay metadata")
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (
        OSError,
        ValueError,
        RecursionError,
    ) as err:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"corrupt replay metadata {meta_path}: {err}") from err
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"corrupt replay metadata {meta_path}: expected a JSON object, got {type(meta).__name__}"
        )
    return meta


def _check_header(path: Path, dtype: np.dtype, shape: tuple[int, ...], where: Path) -> None:
    """Compare a ``.npy`` header (read without unpickling or mapping anything) with the metadata."""
    _regular_file(path, where)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                got_shape, _, got_dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                got_shape, _, got_dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            offset = f.tell()
        size = path.stat().st_size
    except Exception as err:  # noqa: BLE001 - numpy's header parser raises ValueError, SyntaxError, TokenError, ...
        raise _bad(
            where, f"{path.name} is not a valid .npy array file ({type(err).__name__}: {str(err)[:200]})"
        ) from err
    if got_dtype.hasobject or got_dtype.fields is not None or got_dtype.kind not in "biuf":
        raise _bad(
            where,
            f"{path.name} holds dtype {str(got_dtype)[:80]}; only numeric and bool arrays are read (expected {dtype.name})",
        )
    if got_dtype != dtype:
        raise _bad(
            where, f"{path.name}: expected dtype {dtype.name} (per {_META}), the file holds {got_dtype.str}"
        )
    if tuple(got_shape) != shape:
        raise _bad(
            where,
            f"{path.name}: expected shape {list(shape)} (per {_META}), the file holds {list(got_shape)}",
        )
    expected = offset + math.prod(shape) * dtype.itemsize
    if size != expected:
        raise _bad(
            where,
            f"{path.name}: expected {expected} bytes for shape {list(shape)} {dtype.name}, the file has {size} (truncated or corrupt)",
        )


def _as_tensor(arr: np.ndarray) -> torch.Tensor:
    with warnings.catch_warnings():  # read-only memory maps: nothing writes to them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


def _check_keys(keys: list[tuple[str, ...]], where: Path) -> None:
    seen = set(keys)
    if len(seen) != len(keys):
        raise _bad(where, f"{_META} lists a key twice: {keys}")
    for k in keys:
        for i in range(1, len(k)):
            if k[:i] in seen:
                raise _bad(where, f"{_META} lists {k[:i]!r} both as an array and as a group of {k!r}")


def _read_rows_v2(directory: Path, meta: dict, n: int) -> TensorDict:
    arrays = meta.get("arrays")
    if not isinstance(arrays, list) or not arrays or len(arrays) > 10_000:
        raise _bad(directory, f"{_META} field 'arrays' must list the saved arrays, got {str(arrays)[:100]}")
    entries, files = [], set()
    for i, entry in enumerate(arrays):
        what = f"{_META} arrays[{i}]"
        if not isinstance(entry, dict):
            raise _bad(directory, f"{what} must be an object with key, file, dtype and shape")
        key, name, dtype = entry.get("key"), entry.get("file"), entry.get("dtype")
        if (
            not isinstance(key, list)
            or not key
            or len(key) > 16
            or not all(isinstance(k, str) and k for k in key)
        ):
            raise _bad(
                directory, f"{what}: key must be a list of 1 to 16 non-empty strings, got {str(key)[:80]}"
            )
        if not isinstance(name, str) or not _FILE_RE.match(name) or name.lower() in files:
            raise _bad(
                directory,
                f"{what}: file must be a unique plain .npy file name inside the snapshot "
                f"(letters, digits, '_', '-', '.'; no path), got {str(name)[:80]!r}",
            )
        files.add(name.lower())
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise _bad(directory, f"{what}: dtype must be one of {sorted(_DTYPES)}, got {str(dtype)[:40]!r}")
        shape = _shape_of(entry.get("shape"), what, directory)
        if shape[0] != n:
            raise _bad(directory, f"{what} ({name}): {shape[0]} rows, but {_META} says len {n}")
        entries.append((tuple(key), name, np.dtype(dtype), shape))
    _check_keys([e[0] for e in entries], directory)
    rows = TensorDict({}, batch_size=[n])
    for key, name, dtype, shape in entries:
        path = directory / name
        _check_header(path, dtype, shape, directory)
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except Exception as err:  # noqa: BLE001 - allow_pickle=False: parsing only, any failure is a bad file
            raise _bad(directory, f"cannot read {name} ({type(err).__name__}: {str(err)[:200]})") from err
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != shape:  # e.g. an .npz
            raise _bad(
                directory,
                f"{name} changed while it was read or is not a plain array; expected {dtype.name} {list(shape)}",
            )
        rows.set(key, _as_tensor(arr))
    return rows


def _v1_refused(directory: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"saved replay {directory} is in the old format 1 (TensorDict memmap folder '{_V1_ROWS}/') and {what}. "
        "Reading that needs unpickling or importing classes named in the files, which can run code, so "
        "wmenv refuses it. Only if you trust the files, convert them once: "
        f"rows = tensordict.TensorDict.load_memmap('{directory / _V1_ROWS}'); buffer = "
        "wmenv.train.make_replay(len(rows) or 1); buffer.extend(rows); wmenv.train.save_replay(buffer, NEW_DIR) "
        f"writes format {REPLAY_FORMAT_VERSION} (plain .npy arrays), which this version reads safely"
    )


def _read_td_v1(folder: Path, n: int, directory: Path, depth: int = 0) -> TensorDict:
    """Read a version-1 TensorDict memmap folder as JSON + raw tensor files; never import or unpickle."""
    if depth > 16:
        raise _v1_refused(directory, "nests TensorDicts deeper than 16 levels")
    meta_path = folder / "meta.json"
    _regular_file(meta_path, directory)
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise _bad(directory, f"corrupt {meta_path.relative_to(directory)}: {err}") from err
    rel = meta_path.relative_to(directory)
    if not isinstance(meta, dict):
        raise _bad(directory, f"corrupt {rel}: expected a JSON object")
    if meta.get("_type") != _V1_TD_TYPE:
        raise _v1_refused(
            directory, f"{rel} names the class {str(meta.get('_type'))[:100]!r}, not a plain TensorDict"
        )
    if meta.get("shape") != [n]:
        raise _bad(directory, f"{rel}: expected batch shape [{n}], got {str(meta.get('shape'))[:100]}")
    td = TensorDict({}, batch_size=[n])
    for key, info in meta.items():
        if key in ("shape", "device", "_type"):
            continue
        if not isinstance(key, str) or not _V1_NAME_RE.match(key):
            raise _bad(directory, f"{rel} lists an entry with an unsafe name {str(key)[:80]!r}")
        if info == {"type": "TensorDict"}:
            sub = folder / key
            if sub.is_symlink() or not sub.is_dir():
                raise _bad(directory, f"{rel}: the sub-folder {key!r} is missing or not a plain folder")
            td.set(key, _read_td_v1(sub, n, directory, depth + 1))
            continue
        if not isinstance(info, dict) or "dtype" not in info or "shape" not in info:
            kind = info.get("type") if isinstance(info, dict) else type(info).__name__
            raise _v1_refused(directory, f"its entry {key!r} in {rel} is non-tensor data ({str(kind)[:60]})")
        dtype = str(info["dtype"]).removeprefix("torch.")
        if dtype not in _DTYPES or info.get("is_nested", False) is not False:
            raise _v1_refused(
                directory,
                f"its entry {key!r} in {rel} has dtype {str(info['dtype'])[:60]!r} "
                f"(nested={info.get('is_nested')!r}), not a plain numeric or bool tensor",
            )
        shape = _shape_of(info["shape"], f"{rel} entry {key!r}", directory)
        if shape[0] != n:
            raise _bad(directory, f"{rel} entry {key!r}: {shape[0]} rows, expected {n}")
        path = folder / f"{key}.memmap"
        _regular_file(path, directory)
        np_dtype = np.dtype(dtype)
        expected = math.prod(shape) * np_dtype.itemsize
        size = path.stat().st_size
        if size != expected:
            raise _bad(
                directory,
                f"{path.relative_to(directory)}: expected {expected} bytes for shape {list(shape)} "
                f"{dtype}, the file has {size} (truncated or corrupt)",
            )
        if expected == 0:
            arr = np.zeros(shape, np_dtype)
        else:
            try:
                arr = np.memmap(path, dtype=np_dtype, mode="r", shape=shape)
            except (OSError, ValueError) as err:
                raise _bad(directory, f"cannot read {path.relative_to(directory)}: {err}") from err
        td.set(key, _as_tensor(np.asarray(arr)))
    return td


def load_replay(
    directory: str | os.PathLike, path: str | os.PathLike | None = None, *, capacity: int | None = None
) -> ReplayBuffer:
    """Rebuild a buffer saved by :func:`save_replay` (same rows, cursor, write count, RNG).

    The snapshot is treated as untrusted input: only JSON and ``.npy`` headers are parsed, arrays
    are memory-mapped with ``allow_pickle=False``, every file is checked against the metadata
    (name, dtype, shape, row count, size), and nothing is unpickled or imported.

    Args:
        directory: a directory written by :func:`save_replay` (format 2, or a format-1 snapshot that
            holds only plain tensor files).
        path: scratch directory of the new buffer's storage (``None``: temporary). Must not be
            ``directory`` itself; the saved files are copied, never modified.
        capacity: capacity of the new buffer (default: the saved one). Must hold every saved row.

    Raises:
        CheckpointError: missing directory or metadata, unknown format version, a file that does not
            match the metadata (named, with what was expected and what came), a format-1 snapshot
            holding pickled or non-tensor entries, or a ``capacity`` smaller than the saved rows.
    """
    directory = Path(directory)
    meta = _read_meta(directory)
    version = meta.get("format_version")
    if version not in (1, REPLAY_FORMAT_VERSION) or type(version) is not int:
        raise CheckpointError(
            f"replay at {directory} has format_version {version!r}, this wmenv reads "
            f"version {REPLAY_FORMAT_VERSION} (and plain-tensor version 1 snapshots); re-collect the data with this version"
        )
    saved_cap = _int_field(meta, "capacity", directory, 1)
    n = _int_field(meta, "len", directory)
    write_count = _int_field(meta, "write_count", directory)
    slice_len = _int_field(meta, "slice_len", directory, 1)
    strict_length = _bool_field(meta, "strict_length", directory)
    without_replacement = _bool_field(meta, "without_replacement", directory)
    if n > saved_cap or write_count < n:
        raise _bad(
            directory, f"{_META} is inconsistent: len {n}, capacity {saved_cap}, write_count {write_count}"
        )
    rng_state = meta.get("rng_state")
    if rng_state is not None and (
        not isinstance(rng_state, list) or not all(type(b) is int and 0 <= b < 256 for b in rng_state)
    ):
        raise _bad(directory, f"{_META} field 'rng_state' must be a list of bytes (0-255) or null")
    cap = saved_cap if capacity is None else int(capacity)
    if cap < n:
        raise CheckpointError(f"capacity {cap} cannot hold the {n} saved rows of {directory}; use >= {n}")
    if path is not None and Path(path).resolve() == directory.resolve():
        raise CheckpointError(f"load_replay: the scratch path must differ from the saved replay {directory}")
    rows = None
    if n > 0:  # read and check every file before anything is allocated
        if version == REPLAY_FORMAT_VERSION:
            rows = _read_rows_v2(directory, meta, n)
        else:
            rows_dir = directory / _V1_ROWS
            if rows_dir.is_symlink() or not rows_dir.is_dir():
                raise _bad(directory, f"format 1 snapshot without its '{_V1_ROWS}/' folder")
            rows = _read_td_v1(rows_dir, n, directory)
    buffer = make_replay(
        cap, path, slice_len=slice_len, strict_length=strict_length, without_replacement=without_replacement
    )
    if rng_state is not None:
        try:
            buffer._rng.set_state(torch.tensor(rng_state, dtype=torch.uint8))
        except (RuntimeError, ValueError, TypeError) as err:
            raise _bad(
                directory, f"{_META} field 'rng_state' is not a torch generator state ({err})"
            ) from err
    if rows is None:
        return buffer
    try:
        if cap == saved_cap:
            cursor = write_count % cap
            # write the older part first so the storage's last-write cursor (which the slice sampler
            # uses to split an episode wrapping around the ring) ends where it was: cursor - 1
            if n == cap and cursor != 0:
                buffer.storage.set(torch.arange(cursor, n), rows[cursor:])
                buffer.storage.set(torch.arange(0, cursor), rows[:cursor])
            else:
                buffer.storage.set(torch.arange(n), rows)
        else:  # new capacity: re-insert in insertion order (oldest first)
            c = write_count % saved_cap if n == saved_cap else 0
            ordered = torch.cat([rows[c:], rows[:c]], 0) if c else rows
            buffer.storage.set(torch.arange(n), ordered)
            cursor = n % cap
            write_count = n
    except (RuntimeError, ValueError, TypeError, OSError, MemoryError) as err:
        raise _bad(
            directory,
            f"cannot copy the saved rows into a replay of capacity {cap} ({type(err).__name__}: {str(err)[:300]})",
        ) from err
    buffer.writer.load_state_dict({"_cursor": cursor, "_write_count": write_count})
    return buffer
