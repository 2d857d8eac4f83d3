"""Checkpoints: atomic writes of tensors + plain data, safe loads, clear errors.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python data (dicts, lists,
tuples, str, int, float, bool, None), so it loads with ``torch.load(weights_only=True)``: a file
that carries code is refused. Top-level keys:

``format_version`` (int), ``wmenv_version`` (str), ``model_name``, ``family``, ``config``
(plain dict of the config dataclass), ``config_class`` (its qualified name, informative),
``model`` (state dict), ``optimizers`` (name → optimizer state dict), ``step`` (int),
``observation_space`` / ``action_space`` (plain dicts, :func:`space_to_dict`), ``extra`` (plain).
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import random
import re
import shutil
from collections import OrderedDict
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from wmenv.config import config_from_dict, config_to_dict
from wmenv.core.errors import CheckpointError, ConfigError, UnsupportedSpaceError

__all__ = [
    "FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "check_state_dict",
    "model_from_checkpoint",
    "space_to_dict",
    "space_from_dict",
    "atomic_torch_save",
    "clean_stale_temp_files",
    "wmenv_version",
    "get_rng_state",
    "set_rng_state",
]

FORMAT_VERSION = 1


def wmenv_version() -> str:
    """Installed wmenv version (``"0+unknown"`` when not installed as a distribution)."""
    try:
        return metadata.version("wmenv")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# ---------------------------------------------------------------------------------- spaces
def _compact(a: np.ndarray) -> Any:
    """A scalar when every entry is equal (image boxes), else a nested list."""
    flat = a.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return flat[0].item()
    return a.tolist()


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """Plain-data description of a Gymnasium space (Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple).

    Raises:
        UnsupportedSpaceError: other space types.
    """
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "low": _compact(space.low),
            "high": _compact(space.high),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.tolist(),
            "dtype": str(space.dtype),
            "start": space.start.tolist(),
        }
    if isinstance(space, gym.spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": int(n) if np.isscalar(n) else list(n)}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_dict(s) for s in space.spaces]}
    raise UnsupportedSpaceError(
        f"cannot serialise space {space!r}; supported: Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple"
    )


def space_from_dict(data: Mapping[str, Any]) -> gym.Space:
    """Inverse of :func:`space_to_dict`.

    Raises:
        CheckpointError: unknown ``type``, missing or malformed fields.
    """
    if not isinstance(data, Mapping):
        raise CheckpointError(f"invalid serialised space: expected a dict, got {type(data).__name__}")
    try:
        kind = data["type"]
        if kind == "Box":
            dtype = np.dtype(data["dtype"])
            if dtype.kind not in "biuf" or dtype.fields is not None:
                raise ValueError(f"Box dtype must be numeric or bool, got {dtype}")
            shape = tuple(int(d) for d in data["shape"])
            if any(d < 0 for d in shape) or math.prod(shape) > _MAX_SPACE_ELEMENTS:
                raise ValueError(
                    f"Box shape {shape} is negative or larger than {_MAX_SPACE_ELEMENTS} elements"
                )
            low = np.broadcast_to(np.asarray(data["low"], dtype=dtype), shape).copy()
            high = np.broadcast_to(np.asarray(data["high"], dtype=dtype), shape).copy()
            return gym.spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            return gym.spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
        if kind == "MultiDiscrete":
            return gym.spaces.MultiDiscrete(
                np.asarray(data["nvec"]), dtype=np.dtype(data["dtype"]), start=np.asarray(data["start"])
            )
        if kind == "MultiBinary":
            return gym.spaces.MultiBinary(data["n"])
        if kind == "Dict":
            return gym.spaces.Dict({k: space_from_dict(v) for k, v in data["spaces"].items()})
        if kind == "Tuple":
            return gym.spaces.Tuple([space_from_dict(v) for v in data["spaces"]])
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - gymnasium asserts, RecursionError, ...: a malformed space
        raise CheckpointError(
            f"invalid serialised space {str(dict(data))[:300]}: {type(err).__name__}: {str(err)[:200]}"
        ) from err
    raise CheckpointError(
        f"unknown space type {kind!r}; expected Box, Discrete, MultiDiscrete, MultiBinary, Dict or Tuple"
    )


#: Largest Box (in elements) a checkpoint may describe: its bounds are built as full arrays.
_MAX_SPACE_ELEMENTS = 2**28


def get_rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python ``random`` states as tensors and plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned.

    Raises:
        CheckpointError: ``state`` is not such a state (a damaged checkpoint).
    """
    try:
        torch.set_rng_state(state["torch"].cpu())
        if state.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        n = state["numpy"]
        np.random.set_state(
            (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
        )
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError, OverflowError) as err:
        raise CheckpointError(
            f"invalid RNG state in checkpoint ({type(err).__name__}: {str(err)[:200]}); use an intact checkpoint"
        ) from err


# ---------------------------------------------------------------------------------- save
_TEMP_FILE_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d{1,10})$")
_TEMP_DIR_RE = re.compile(r"^(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d{1,10})$")
_REPLAY_ENTRY_RE = re.compile(r"^(replay_meta\.json|rows|.+\.npy)$")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (``True`` when unsure: nothing is removed)."""
    if pid == os.getpid():
        return True
    if pid <= 0 or pid >= 2**31:  # not a process id (0 would address our own process group)
        return False
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def _is_replay_leftover(folder: Path) -> bool:
    try:
        return all(_REPLAY_ENTRY_RE.match(p.name) for p in folder.iterdir())
    except OSError:
        return False


def clean_stale_temp_files(directory: str | os.PathLike, names: list[str] | None = None) -> list[Path]:
    """Remove temporary files that killed writes left in ``directory``; return the removed paths.

    Removed: ``.<name>.tmp-<pid>`` files of :func:`atomic_torch_save` (e.g. ``.checkpoint.pt.tmp-4242``)
    and ``<name>.tmp-<pid>`` / ``<name>.old-<pid>`` folders of
    :func:`wmenv.train.replay.save_replay` that hold nothing but replay files, when process ``pid``
    is not running. Files of live processes (e.g. another writer in the same run dir), symlinks and
    anything else are kept. Called by :func:`atomic_torch_save` and ``save_replay`` for their own
    target; call it on a run directory when a run starts.

    Args:
        directory: folder to clean (a missing folder: nothing to do).
        names: only leftovers of these target names (e.g. ``["checkpoint.pt"]``); ``None``: all.

    Note:
        The pid check is local: on a file system shared between machines, a writer on another
        machine looks dead. Do not run two machines' writers in one run directory.
    """
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        is_file = _TEMP_FILE_RE.match(entry.name)
        is_dir = _TEMP_DIR_RE.match(entry.name)
        found = is_file or is_dir
        if not found or (names is not None and found.group("name") not in names):
            continue
        if _pid_alive(int(found.group("pid"))):
            continue
        try:
            if entry.is_symlink():
                continue
            if is_file and entry.is_file():
                entry.unlink()
            elif is_dir and entry.is_dir() and _is_replay_leftover(entry):
                shutil.rmtree(entry)
            else:
                continue
        except OSError:
            continue  # e.g. removed concurrently, or not ours to remove
        removed.append(entry)
    return removed


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same directory, fsync, then ``os.replace``.

    A crash at any point leaves either the old file or the new one at ``path``, never a partial file.
    Temporary files that killed writers left for ``path`` are removed first
    (:func:`clean_stale_temp_files`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp_files(path.parent, names=[path.name])
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model_name: str,
    family: str,
    config: Any,
    model: torch.nn.Module,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    step: int = 0,
    extra: Mapping[str, Any] | None = None,
    observation_space: gym.Space,
    action_space: gym.Space,
) -> Path:
    """Atomically write a checkpoint of ``model`` (and optimizers) to ``path``.

    Args:
        path: destination file (e.g. ``run_dir/checkpoint.pt``).
        model_name: registry name the model was created with.
        family: registry family (checked by ``load_checkpoint(expected_family=...)``).
        config: the model's config dataclass.
        model: module whose ``state_dict`` is saved.
        optimizers: name → optimizer; their state dicts are saved.
        step: training step counter.
        extra: more plain data (RNG states, trainer config, history, ...).
        observation_space: the model's observation space.
        action_space: the model's action space.

    Returns:
        ``path``.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ConfigError(f"config must be a dataclass instance, got {type(config).__name__}")
    payload = {
        "format_version": FORMAT_VERSION,
        "wmenv_version": wmenv_version(),
        "torch_version": str(torch.__version__),
        "model_name": str(model_name),
        "family": str(family),
        "config": config_to_dict(config),
        "config_class": f"{type(config).__module__}.{type(config).__qualname__}",
        "model": model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in (optimizers or {}).items()},
        "step": int(step),
        "observation_space": space_to_dict(observation_space),
        "action_space": space_to_dict(action_space),
        "extra": dict(extra or {}),
    }
    _check_plain(payload, "checkpoint")
    return atomic_torch_save(payload, path)


_PLAIN = (str, int, float, bool, type(None), torch.Size, torch.dtype, torch.device)


def _check_plain(obj: Any, where: str) -> None:
    """Raise :class:`CheckpointError` naming the first entry ``weights_only`` loading would refuse."""
    if isinstance(obj, torch.Tensor) or type(obj) in _PLAIN:
        return
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            if not isinstance(k, str | int):
                raise CheckpointError(f"{where}: key {k!r} is a {type(k).__name__}; use str or int keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; checkpoints hold only tensors and "
        "plain data (dict, list, tuple, str, int, float, bool, None) so they load with weights_only=True. "
        "Convert it (e.g. a numpy array with torch.from_numpy, a dataclass with dataclasses.asdict)"
    )


# ---------------------------------------------------------------------------------- load
def load_checkpoint(
    path: str | os.PathLike, *, expected_family: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Args:
        path: checkpoint file.
        expected_family: refuse a checkpoint of another family.
        map_location: where tensors are loaded.

    Returns:
        The checkpoint dict (see the module docstring for its keys).

    Raises:
        CheckpointError: missing, truncated or corrupt file; a pickle carrying code; not a wmenv
            checkpoint; another ``format_version``; a family other than ``expected_family``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}; check the path (a run dir holds checkpoint.pt)")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        msg = str(err)
        found = re.search(r"GLOBAL ([\w.]+)", msg)
        if found or "Unsupported global" in msg or "Unsupported class" in msg:
            what = f"it references {found.group(1)}" if found else "it references a Python class"
            raise CheckpointError(
                f"refusing to load {path}: it contains Python objects that are not tensors or plain data "
                f"({what}). Unpickling arbitrary objects can run code, so wmenv loads with "
                "weights_only=True. Re-save it with wmenv.train.checkpoint.save_checkpoint, which stores "
                "only tensors and plain data."
            ) from err
        detail = re.search(r"WeightsUnpickler error: \s*(.+)", msg)
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a torch checkpoint file "
            f"({detail.group(1).strip()[:200] if detail else msg[:200]}); use an intact copy"
        ) from err
    except Exception as err:  # noqa: BLE001 - weights_only loading runs no code: any failure is a bad file
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(err).__name__}: {str(err)[:300]}); "
            "use an intact copy or resume from an earlier checkpoint"
        ) from err
    _check_loaded(data, path)
    if expected_family is not None and data["family"] != expected_family:
        raise CheckpointError(
            f"checkpoint {path} is of family {data['family']!r}, expected {expected_family!r} "
            f"(model {data['model_name']!r}); load it with the matching model"
        )
    return data


def _str_keyed(obj: Any) -> bool:
    return isinstance(obj, dict) and all(isinstance(k, str) for k in obj)


def _check_loaded(data: Any, path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``data`` has the keys and field types of a checkpoint."""
    if not isinstance(data, dict) or "format_version" not in data:
        raise CheckpointError(
            f"{path} is not a wmenv checkpoint (no 'format_version' key); "
            "it must be written by save_checkpoint"
        )
    version = data["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        written_by = data.get("wmenv_version")
        raise CheckpointError(
            f"checkpoint {path} has format_version {str(version)[:50]}, this wmenv "
            f"({wmenv_version()}) reads format_version {FORMAT_VERSION}; load it with the wmenv version "
            f"that wrote it ({written_by if isinstance(written_by, str) else 'unknown'})"
        )
    missing = {"model_name", "family", "config", "model", "observation_space", "action_space"} - set(data)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks keys {sorted(missing)}; it is incomplete")

    def bad(key: str, expected: str) -> CheckpointError:
        got = data[key]
        return CheckpointError(
            f"checkpoint {path}: {key!r} must be {expected}, got {type(got).__name__} {str(got)[:80]!r}; "
            "the file is damaged or was not written by save_checkpoint"
        )

    for key in ("model_name", "family", "wmenv_version", "config_class", "torch_version"):
        if key in data and not isinstance(data[key], str):
            raise bad(key, "a str")
    if not _str_keyed(data["config"]):
        raise bad("config", "a dict with str keys")
    model = data["model"]
    if not _str_keyed(model) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise bad("model", "a state dict (str → tensor)")
    if "optimizers" in data:
        opts = data["optimizers"]
        if not _str_keyed(opts) or not all(
            isinstance(o, dict)
            and isinstance(o.get("state"), dict)
            and isinstance(o.get("param_groups"), list)
            for o in opts.values()
        ):
            raise bad("optimizers", "a dict of optimizer state dicts (with 'state' and 'param_groups')")
    if "step" in data and (type(data["step"]) is not int or data["step"] < 0):
        raise bad("step", "a non-negative int")
    if "extra" in data:
        if not _str_keyed(data["extra"]):
            raise bad("extra", "a dict with str keys")
        snapshot = data["extra"].get("replay_snapshot")
        if snapshot is not None and (
            not isinstance(snapshot, str)
            or snapshot in ("", ".", "..")
            or any(c in snapshot for c in "/\\\0:")
        ):
            raise CheckpointError(
                f"checkpoint {path}: extra['replay_snapshot'] must be the name of a folder next to the "
                f"checkpoint, got {str(snapshot)[:80]!r}"
            )
    for key in ("observation_space", "action_space"):
        if not _str_keyed(data[key]):
            raise bad(key, "a dict describing a space")
        try:
            space_from_dict(data[key])
        except CheckpointError as err:
            raise CheckpointError(f"checkpoint {path}: {key}: {err}") from err


def check_state_dict(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str = "checkpoint"
) -> None:
    """Raise :class:`CheckpointError` naming every missing, unexpected or mis-shaped entry."""
    own = model.state_dict()
    problems = [f"{k}: missing from {where}" for k in own if k not in state]
    problems += [f"{k}: in {where} but not in the model" for k in state if k not in own]
    for k, v in state.items():
        if k in own and tuple(v.shape) != tuple(own[k].shape):
            problems.append(f"{k}: {where} {tuple(v.shape)} vs model {tuple(own[k].shape)}")
    if problems:
        shown = "; ".join(problems[:20]) + (f"; ... ({len(problems)} in all)" if len(problems) > 20 else "")
        raise CheckpointError(
            f"{where} does not fit {type(model).__name__}: {shown}. "
            "Build the model with the checkpoint's config "
            "(load_model does) or load a checkpoint of this architecture"
        )


def load_model(
    path: str | os.PathLike, expected_family: str | None = None, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a registered model from a checkpoint and load its weights (strictly).

    Returns:
        ``(model, meta)`` where ``meta`` is the checkpoint dict, plus ``"config_obj"`` (the rebuilt
        config), ``"observation_space_obj"`` and ``"action_space_obj"`` (Gymnasium spaces).

    Raises:
        CheckpointError: see :func:`load_checkpoint`; also a config the model's config class
            rejects and missing/unexpected/mis-shaped weights (each named).
        UnknownModelError: the checkpoint's model is not registered.
    """
    meta = load_checkpoint(path, expected_family=expected_family, map_location="cpu")
    return model_from_checkpoint(meta, device=device, path=path), meta


def model_from_checkpoint(
    meta: dict[str, Any], *, device: str | torch.device = "cpu", path: str | os.PathLike = "checkpoint"
) -> torch.nn.Module:
    """Build the registered model a loaded checkpoint dict describes and load its weights.

    Adds ``"config_obj"``, ``"observation_space_obj"`` and ``"action_space_obj"`` to ``meta``.
    """
    from wmenv.registry import get_model_spec

    spec = get_model_spec(meta["model_name"])
    try:
        config = config_from_dict(spec.config_cls, meta["config"])
    except (ConfigError, TypeError, ValueError, AttributeError, KeyError, RecursionError) as err:
        raise CheckpointError(
            f"checkpoint {path}: its config does not fit {spec.config_cls.__name__} ({err}); "
            "it was written by "
            f"wmenv {meta.get('wmenv_version')}"
        ) from err
    obs_space = space_from_dict(meta["observation_space"])
    act_space = space_from_dict(meta["action_space"])
    model = spec.build(config, obs_space, act_space)
    check_state_dict(model, meta["model"])
    model.load_state_dict(meta["model"], strict=True)
    meta["config_obj"], meta["observation_space_obj"], meta["action_space_obj"] = config, obs_space, act_space
    return model.to(device)
