"""The run-metadata schema: what every run directory records about how it was made.

Every producer (``wmenv train``, ``wmenv demo``, the World Models stages, the recipes, benchmark
agents' ``train()``) records one :class:`RunInfo` in its checkpoint (``extra["run"]``, loaded with
``weights_only=True``) and mirrors it as ``run.json`` beside it for people to read. Readers go
through :func:`read_run_info`, the one place that also understands run directories written before
this schema (version 1: ``user_state["args"]``, ``user_state["env_id"]``, ``summary.json``).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from wmenv.core.errors import CheckpointError, RunDirError

__all__ = ["RUN_SCHEMA_VERSION", "RUN_JSON", "RunInfo", "read_run_info", "write_run_json", "new_run_dir"]

RUN_SCHEMA_VERSION = 2
RUN_JSON = "run.json"


@dataclass(frozen=True)
class RunInfo:
    """How a run was made (plain data; JSON and ``weights_only`` checkpoints hold it as a dict).

    Attributes:
        model: registered model name (``wmenv list``).
        family: its family (checkpoints of another family are refused).
        env_id: the real env it learned from (``None``: offline data of unknown origin).
        env_kwargs: ``make_env`` arguments of that env (``pixels``, ``frame_skip``, ...).
        preset: model config preset.
        overrides: the user's model-config overrides (the resolved config is in the checkpoint).
        seed: run seed.
        max_episode_steps: the real env's time limit, the default horizon of imagination.
        schedule: collection schedule (``seed_steps``, ``collect_every``, ``collect_steps``, ``num_envs``).
        producer: what wrote the run (``"wmenv train"``, ``"wmenv demo"``, ...).
        wmenv_version: version that wrote it.
        schema_version: :data:`RUN_SCHEMA_VERSION`.
    """

    model: str
    family: str
    env_id: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    max_episode_steps: int | None = None
    schedule: dict[str, int] = field(default_factory=dict)
    producer: str = "wmenv"
    wmenv_version: str = ""
    schema_version: int = RUN_SCHEMA_VERSION

    @property
    def pixels(self) -> bool:
        """Whether the real env gives image observations (``make_env(..., pixels=True)``)."""
        return bool(self.env_kwargs.get("pixels", False))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "run metadata") -> RunInfo:
        """Validate and rebuild; :class:`CheckpointError` names the bad field."""
        if not isinstance(data, Mapping):
            raise CheckpointError(f"{where}: expected a dict, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != RUN_SCHEMA_VERSION:
            raise CheckpointError(
                f"{where}: run schema_version {version!r}, this wmenv reads {RUN_SCHEMA_VERSION}"
            )
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        checks = {
            "model": str, "family": str, "env_id": (str, type(None)), "env_kwargs": dict, "preset": (str, type(None)),
            "overrides": dict, "seed": int, "max_episode_steps": (int, type(None)), "schedule": dict,
            "producer": str, "wmenv_version": str,
        }
        for name, types in checks.items():
            if name in kwargs and not isinstance(kwargs[name], types):
                raise CheckpointError(
                    f"{where}: field {name!r} should be {types}, got {type(kwargs[name]).__name__}"
                )
        for name in ("model", "family"):
            if not kwargs.get(name):
                raise CheckpointError(f"{where}: field {name!r} is missing")
        return cls(**kwargs)


def _legacy(meta: Mapping[str, Any], run_dir: Path | None) -> RunInfo | None:
    """A :class:`RunInfo` from the layouts written before the schema existed (read here only)."""
    extra = meta.get("extra") if isinstance(meta.get("extra"), Mapping) else {}
    user = extra.get("user_state") if isinstance(extra.get("user_state"), Mapping) else {}
    base = {"model": str(meta.get("model_name", "")), "family": str(meta.get("family", "")),
            "producer": "wmenv (before run schema 2)", "wmenv_version": str(meta.get("wmenv_version", ""))}
    args = user.get("args") if isinstance(user.get("args"), Mapping) else {}
    if args.get("env"):  # `wmenv train` and the recipes' train_world_model
        kwargs = args.get("env_kwargs") or user.get("env_kwargs") or {}
        schedule = {k: int(args[k]) for k in ("seed_steps", "collect_every", "collect_steps", "num_envs")
                    if isinstance(args.get(k), int)}
        return RunInfo(**base, env_id=str(args["env"]), env_kwargs=dict(kwargs), preset=args.get("preset"),
                       overrides=dict(args.get("overrides") or {}), seed=int(args.get("seed", 0)), schedule=schedule)
    if user.get("env_id"):  # the World Models stage driver
        return RunInfo(**base, env_id=str(user["env_id"]), env_kwargs=dict(user.get("env_kwargs") or {}),
                       seed=int(user.get("seed", 0)))
    summary = run_dir / "summary.json" if run_dir is not None else None
    if summary is not None and summary.is_file():  # `wmenv demo`
        try:
            data = json.loads(summary.read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{summary} is not valid JSON ({err})") from err
        config = data.get("config") if isinstance(data.get("config"), Mapping) else {}
        if data.get("env_id"):
            return RunInfo(**base, env_id=str(data["env_id"]), env_kwargs=dict(config.get("env_kwargs") or {}),
                           preset=config.get("preset"), seed=int(data.get("seed", 0)))
    return None


def read_run_info(meta: Mapping[str, Any], run_dir: str | os.PathLike | None = None) -> RunInfo:
    """The run metadata of a loaded checkpoint dict (any schema wmenv has written).

    Raises:
        CheckpointError: a malformed record, or a run that records no env and no schema (with how to
            convert it: :meth:`wmenv.runs.Run.convert`).
    """
    extra = meta.get("extra")
    if isinstance(extra, Mapping) and "run" in extra:
        return RunInfo.from_dict(extra["run"], where=f"run metadata of {run_dir or 'the checkpoint'}")
    info = _legacy(meta, Path(run_dir) if run_dir is not None else None)
    if info is None:
        if not meta.get("model_name"):
            raise CheckpointError("the checkpoint names no model; it was not written by wmenv")
        info = RunInfo(model=str(meta["model_name"]), family=str(meta.get("family") or meta["model_name"]),
                       producer="unknown (no run record)", wmenv_version=str(meta.get("wmenv_version", "")))
    return info


def write_run_json(run_dir: str | os.PathLike, info: RunInfo, config: Mapping[str, Any] | None = None) -> Path:
    """Write ``run.json`` (the run record plus the resolved model config) atomically."""
    path = Path(run_dir) / RUN_JSON
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({**info.to_dict(), "config": dict(config or {})}, indent=2, default=str))
    os.replace(tmp, path)
    return path


def new_run_dir(root: str | os.PathLike = "runs", name: str = "run", *, run_dir: str | os.PathLike | None = None) -> Path:
    """Create a fresh run directory: ``run_dir`` when given (refused if it exists), else
    ``root/<YYYYmmdd-HHMMSS>_<name>`` (``-1``, ``-2``, ... when taken).

    Raises:
        RunDirError: ``run_dir`` exists (nothing is overwritten), or no fresh name was found.
    """
    if run_dir is not None:
        path = Path(run_dir)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunDirError(
                f"run dir {path} already exists; pass a new one, or resume it (wmenv train --resume {path})"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}"
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1000):
        path = root / (stem if i == 0 else f"{stem}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunDirError(f"could not create a fresh run dir under {root}")
