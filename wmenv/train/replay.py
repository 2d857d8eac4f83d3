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
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import LazyMemmapStorage, ReplayBuffer, SliceSampler, SliceSamplerWithoutReplacement

from wmenv.core.errors import CheckpointError, ConfigError

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

REPLAY_FORMAT_VERSION = 1
#: Keys of every stored row (``observation`` may be a nested TensorDict).
ROW_KEYS = ("observation", "action", "reward", "terminated", "truncated", "is_first", "is_last", "episode")
_META = "replay_meta.json"


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


def save_replay(buffer: ReplayBuffer, directory: str | os.PathLike) -> Path:
    """Persist the stored rows and write position of ``buffer`` into ``directory``.

    Only the ``len(buffer)`` filled rows are written (memory-mapped files, one per key, in the
    storage's physical order) plus ``replay_meta.json`` with capacity, length, cursor, write
    count, sampler options and the sampler's generator state. Plain files only, no pickle.
    The directory is written under a temporary name and renamed, so a crash never leaves a
    half-written replay under ``directory``.

    Returns:
        The directory path.

    Raises:
        FileExistsError: ``directory`` exists and is not a replay (never overwritten).
    """
    directory = Path(directory)
    if directory.exists() and not (directory / _META).exists():
        raise FileExistsError(f"{directory} exists and is not a saved replay; refusing to overwrite it")
    tmp = directory.with_name(directory.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n = len(buffer)
    if n > 0:
        buffer.storage[:n].memmap(tmp / "rows", copy_existing=True)
    opts = getattr(buffer, "_wmenv_options", {"strict_length": True, "without_replacement": False})
    gen = getattr(buffer, "_rng", None)
    meta = {
        "format_version": REPLAY_FORMAT_VERSION,
        "capacity": replay_capacity(buffer),
        "len": n,
        "write_count": int(buffer.write_count),
        "slice_len": int(getattr(buffer.sampler, "slice_len", 16) or 16),
        **opts,
        "rng_state": gen.get_state().tolist() if gen is not None else None,
    }
    (tmp / _META).write_text(json.dumps(meta))
    if directory.exists():
        old = directory.with_name(directory.name + f".old-{os.getpid()}")
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, directory)
    return directory


def load_replay(
    directory: str | os.PathLike, path: str | os.PathLike | None = None, *, capacity: int | None = None
) -> ReplayBuffer:
    """Rebuild a buffer saved by :func:`save_replay` (same rows, cursor, write count, RNG).

    Args:
        directory: a directory written by :func:`save_replay`.
        path: scratch directory of the new buffer's storage (``None``: temporary). Must not be
            ``directory`` itself; the saved files are copied, never modified.
        capacity: capacity of the new buffer (default: the saved one). Must hold every saved row.

    Raises:
        CheckpointError: missing directory or metadata, unknown format version, unreadable rows,
            or a ``capacity`` smaller than the saved rows.
    """
    directory = Path(directory)
    meta_path = directory / _META
    if not meta_path.exists():
        raise CheckpointError(
            f"no saved replay at {directory} (missing {_META}); pass a directory written by save_replay "
            "or `wmenv collect --out DIR`"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"corrupt replay metadata {meta_path}: {err}") from err
    if meta.get("format_version") != REPLAY_FORMAT_VERSION:
        raise CheckpointError(
            f"replay at {directory} has format_version {meta.get('format_version')!r}, this wmenv reads "
            f"version {REPLAY_FORMAT_VERSION}; re-collect the data with this version"
        )
    n, saved_cap = int(meta["len"]), int(meta["capacity"])
    cap = saved_cap if capacity is None else int(capacity)
    if cap < n:
        raise CheckpointError(f"capacity {cap} cannot hold the {n} saved rows of {directory}; use >= {n}")
    if path is not None and Path(path).resolve() == directory.resolve():
        raise CheckpointError(f"load_replay: the scratch path must differ from the saved replay {directory}")
    buffer = make_replay(
        cap,
        path,
        slice_len=int(meta["slice_len"]),
        strict_length=bool(meta["strict_length"]),
        without_replacement=bool(meta["without_replacement"]),
    )
    if meta.get("rng_state") is not None:
        buffer._rng.set_state(torch.tensor(meta["rng_state"], dtype=torch.uint8))
    if n == 0:
        return buffer
    try:
        rows = TensorDict.load_memmap(directory / "rows")
    except Exception as err:  # noqa: BLE001 - any read failure means a damaged replay
        raise CheckpointError(f"cannot read the rows of the saved replay {directory}: {err}") from err
    if rows.batch_size[0] != n:
        raise CheckpointError(
            f"saved replay {directory}: metadata says {n} rows, files hold {rows.batch_size[0]}"
        )
    write_count = int(meta["write_count"])
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
    buffer.writer.load_state_dict({"_cursor": cursor, "_write_count": write_count})
    return buffer
