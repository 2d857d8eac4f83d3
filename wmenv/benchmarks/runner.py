"""Run agents in the real env over seeds x episodes and write reports.

Seeds. Seed ``s`` evaluates ``episodes`` episodes whose resets use seeds
``s * EPISODE_SEED_STRIDE + i`` (``i = 0 .. episodes-1``), so different seeds never share an episode.
Without training, every seed evaluates the same loaded agent; with ``train_epochs`` / ``train_steps``
each seed trains a fresh agent (seed ``s``) first, so seeds are independent training runs.

Overwriting. A directory that already holds results (``benchmark_results.json`` or
``combined_benchmark_results.json``) is never written into silently: :class:`RunDirError` is raised
unless ``overwrite=True``, which replaces the result files (and nothing else) in place.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from wmenv.benchmarks.adapters import (
    get_agent,
    get_agent_factory,
    is_trainable,
    make_real_env,
    resolve_agent_name,
)
from wmenv.benchmarks.metrics import summarize_runs
from wmenv.benchmarks.reporting import COMBINED_JSON, RESULT_FILES, write_combined, write_report
from wmenv.core.errors import CheckpointError, ConfigError, RunDirError, WMEnvError

__all__ = [
    "EPISODE_SEED_STRIDE",
    "agent_traits",
    "describe_env",
    "existing_results",
    "run_benchmark",
    "run_multi_agent",
]

EPISODE_SEED_STRIDE = 10_000


class AgentOutputError(WMEnvError, RuntimeError):
    """An agent's ``evaluate`` returned malformed results."""


PROTOCOL_KEYS = (
    "env_id",
    "backend",
    "frameskip",
    "repeat_action_probability",
    "noop_max",
    "max_episode_frames",
    "max_episode_steps",
)
"""Keys every results protocol has (``None`` when an env does not have the setting)."""


def describe_env(env: Any) -> dict[str, Any]:
    """The evaluation protocol of a real env (``wmenv_protocol`` from ``make_env``, else ``env.spec``).

    Returns:
        :data:`PROTOCOL_KEYS` plus whatever else the backend reports (``protocol``, ``pixels``, ...).
    """
    from wmenv.envs.make import describe_protocol

    proto: dict[str, Any] = dict.fromkeys(PROTOCOL_KEYS)
    proto.update(describe_protocol(env))
    return proto


def _accepts_progress(evaluate: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(evaluate).parameters
    except (TypeError, ValueError):
        return False
    return "progress" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def agent_traits(name: str, **factory_kwargs: Any) -> tuple[bool, bool]:
    """``(trainable, requires_checkpoint)`` of a registered agent.

    Read from the factory when it is a class; otherwise an instance is built with ``factory_kwargs``.
    """
    factory = get_agent_factory(name)
    probe: Any = factory if isinstance(factory, type) else factory(**factory_kwargs)
    traits = is_trainable(probe), bool(getattr(probe, "requires_checkpoint", False))
    if not isinstance(factory, type) and hasattr(probe, "close"):
        probe.close()
    return traits


def _wmenv_version() -> str | None:
    try:
        return importlib.metadata.version("wmenv")
    except importlib.metadata.PackageNotFoundError:
        return None


def existing_results(out_dir: str | Path) -> list[Path]:
    """Result files already present in ``out_dir`` (its own and its agents' subdirectories)."""
    out = Path(out_dir)
    names = (RESULT_FILES["json"], COMBINED_JSON)
    return sorted(p for n in names for p in [out / n, *out.glob(f"*/{n}")] if p.is_file())


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    found = existing_results(out_dir)
    if found and not overwrite:
        raise RunDirError(
            f"{out_dir} already holds benchmark results ({', '.join(str(p) for p in found[:3])}); "
            "choose another --out-dir or pass --overwrite to replace them"
        )


def _validate_run(seeds: Sequence[int], episodes: int) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"seeds must be a non-empty list of distinct non-negative ints, got {seeds}")
    if not 1 <= episodes <= EPISODE_SEED_STRIDE:
        raise ConfigError(f"episodes must be in [1, {EPISODE_SEED_STRIDE}], got {episodes}")
    return seeds


def _episode_results(result: Mapping[str, Any], episodes: int, name: str) -> tuple[list[float], list[int]]:
    try:
        returns = [float(x) for x in result["episode_returns"]]
        lengths = [int(x) for x in result["episode_lengths"]]
    except (KeyError, TypeError, ValueError) as err:
        raise AgentOutputError(
            f"agent {name!r}.evaluate must return {{'episode_returns': [...], 'episode_lengths': [...]}}, "
            f"got {result!r:.200}"
        ) from err
    if len(returns) != episodes or len(lengths) != episodes or not np.all(np.isfinite(returns)):
        raise AgentOutputError(
            f"agent {name!r} returned {len(returns)} returns / {len(lengths)} lengths for {episodes} "
            "episodes (or non-finite returns)"
        )
    return returns, lengths


def _close(adapter: Any) -> None:
    if adapter is not None and hasattr(adapter, "close"):
        adapter.close()


def _evaluate_seed(
    adapter: Any, name: str, seed: int, episodes: int, update: Callable[[int], Any]
) -> dict[str, Any]:
    base = seed * EPISODE_SEED_STRIDE
    if _accepts_progress(adapter.evaluate):
        result = adapter.evaluate(episodes, seed=base, progress=update)
    else:
        result = adapter.evaluate(episodes, seed=base)
        update(episodes)
    returns, lengths = _episode_results(result, episodes, name)
    return {"seed": seed, "episode_seed_base": base, "episode_returns": returns, "episode_lengths": lengths}


def run_benchmark(
    agent: str,
    env_id: str,
    seeds: Sequence[int],
    episodes: int,
    out_dir: str | Path,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    preset: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    agent_kwargs: Mapping[str, Any] | None = None,
    train_epochs: int | None = None,
    train_steps: int | None = None,
    progress: bool = True,
    bootstrap_reps: int = 2000,
) -> dict[str, Any]:
    """Evaluates one registered agent in the real env and writes the five report files.

    Args:
        agent: Registered agent name (or alias), see ``wmenv.benchmarks.adapters.list_agents``.
        env_id: Real env id (``"CartPole-v1"``, ``"ALE/Pong-v5"``, ``"Pong-v5"``, ...).
        seeds: Distinct non-negative run seeds.
        episodes: Episodes per seed.
        out_dir: Where the result files go (see module docstring on overwriting).
        checkpoint: Weights passed to ``load_checkpoint``; must exist.
        device: Torch device for the agent.
        overwrite: Replace results already in ``out_dir``.
        preset: Passed to the agent factory (model-size preset of a family).
        env_kwargs: Extra ``make_env`` arguments.
        agent_kwargs: Extra factory arguments.
        train_epochs: Train a fresh agent per seed for this many epochs before evaluating.
        train_steps: Train a fresh agent per seed for this many real-env steps before evaluating.
        progress: Show a tqdm bar over seeds x episodes.
        bootstrap_reps: Bootstrap replicates for the confidence intervals over seeds.

    Returns:
        The results dict written to ``benchmark_results.json`` plus ``"files"`` (paths written).

    Raises:
        UnknownNameError: Unknown agent or env id.
        CheckpointError: ``checkpoint`` missing, or the agent needs one and none was given.
        ConfigError: Bad seeds / episodes, or training asked of an agent without ``train``.
        RunDirError: ``out_dir`` holds results and ``overwrite`` is false.
    """
    from tqdm.auto import tqdm

    name = resolve_agent_name(agent)
    seeds = _validate_run(seeds, episodes)
    out = Path(out_dir)
    if checkpoint is not None and not Path(checkpoint).exists():
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} of agent {name!r} does not exist")
    training = train_epochs is not None or train_steps is not None
    if training and checkpoint is not None:
        raise ConfigError("give either a checkpoint to evaluate or a training budget, not both")
    _check_out_dir(out, overwrite)
    env_kwargs = dict(env_kwargs or {})
    env = make_real_env(env_id, **env_kwargs)  # validates the env id before any agent work
    try:
        protocol = describe_env(env)
    finally:
        env.close()
    kwargs = dict(env_id=env_id, device=device, env_kwargs=env_kwargs, **dict(agent_kwargs or {}))
    if preset is not None:
        kwargs["preset"] = preset

    def build(seed: int) -> Any:
        adapter = get_agent(name, **kwargs)
        if training:
            if not is_trainable(adapter):
                raise ConfigError(f"agent {name!r} has no train() method; evaluate it with a checkpoint")
            adapter.train(
                steps=train_steps, epochs=train_epochs, seed=seed, log_dir=str(out / f"train_seed{seed}")
            )
        elif checkpoint is not None:
            adapter.load_checkpoint(checkpoint)
        elif getattr(adapter, "requires_checkpoint", False):
            raise CheckpointError(f"agent {name!r} needs a checkpoint (--checkpoint PATH) or training")
        return adapter

    per_seed: list[dict[str, Any]] = []
    start = time.perf_counter()
    adapter: Any = None
    try:
        with tqdm(
            total=len(seeds) * episodes, desc=f"{name} | {env_id}", unit="ep", disable=not progress
        ) as bar:
            for seed in seeds:
                if training or adapter is None:  # untrained: one agent for all seeds
                    _close(adapter)
                    bar.set_postfix_str(f"training seed {seed}" if training else "loading")
                    adapter = build(seed)
                    bar.set_postfix_str("")
                per_seed.append(_evaluate_seed(adapter, name, seed, episodes, bar.update))
    finally:
        _close(adapter)
    wall = time.perf_counter() - start

    means = [float(np.mean(r["episode_returns"])) for r in per_seed]
    agg = summarize_runs(means, reps=bootstrap_reps, seed=0)
    agg["per_seed_means"] = means
    pool = np.concatenate([r["episode_returns"] for r in per_seed])
    agg["all_episodes"] = dict(count=int(pool.size), mean=float(pool.mean()), std=float(pool.std()))
    protocol.update(
        episodes=episodes,
        seeds=seeds,
        episode_seed_rule=f"seed * {EPISODE_SEED_STRIDE} + episode_index",
        wmenv_version=_wmenv_version(),
        device=device,
        checkpoint=None if checkpoint is None else str(checkpoint),
        agent=name,
        preset=preset,
        trained_here=training,
        train_epochs=train_epochs,
        train_steps=train_steps,
    )
    results: dict[str, Any] = {
        "format_version": 1,
        "agent": name,
        "env_id": env_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "protocol": protocol,
        "per_seed": per_seed,
        "aggregate": agg,
    }
    files = write_report(results, out)
    return {**results, "files": {k: str(v) for k, v in files.items()}}


def _safe_dirname(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def run_multi_agent(
    agents: Sequence[str],
    env_id: str,
    seeds: Sequence[int],
    episodes: int,
    out_dir: str | Path,
    checkpoints: Mapping[str, str | Path] | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    preset: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    train_epochs: int | None = None,
    train_steps: int | None = None,
    progress: bool = True,
    bootstrap_reps: int = 2000,
) -> dict[str, Any]:
    """Benchmarks several agents into ``out_dir/<agent>/`` plus combined JSON/CSV at ``out_dir``.

    Per agent: with a checkpoint in ``checkpoints`` it is evaluated from it; else, when a training
    budget is given and it has ``train``, it is trained per seed then evaluated; else, if it does not
    need a checkpoint (``requires_checkpoint`` false, e.g. ``random``) it is evaluated as-is (noted
    as untrained); otherwise it is reported as ``skipped``. Typed wmenv errors of one agent mark it
    ``failed`` (with the message) and the others still run.

    Returns:
        The combined dict (``agents: {name: {status, trained, checkpoint, aggregate, note, ...}}``).
    """
    names = list(dict.fromkeys(resolve_agent_name(a) for a in agents))
    ckpts = {resolve_agent_name(k): Path(v) for k, v in (checkpoints or {}).items()}
    for agent_name, path in ckpts.items():
        if not path.exists():
            raise CheckpointError(f"checkpoint {str(path)!r} of agent {agent_name!r} does not exist")
    seeds = _validate_run(seeds, episodes)
    out = Path(out_dir)
    _check_out_dir(out, overwrite)
    training = train_epochs is not None or train_steps is not None
    common = dict(
        env_id=env_id,
        seeds=seeds,
        episodes=episodes,
        device=device,
        overwrite=overwrite,
        preset=preset,
        env_kwargs=env_kwargs,
        progress=progress,
        bootstrap_reps=bootstrap_reps,
    )
    entries: dict[str, dict[str, Any]] = {}
    protocol: dict[str, Any] = {}
    for name in names:
        entry: dict[str, Any] = {"status": "ok", "checkpoint": str(ckpts[name]) if name in ckpts else None}
        trainable, needs_ckpt = agent_traits(
            name,
            env_id=env_id,
            device=device,
            env_kwargs=dict(env_kwargs or {}),
            **({"preset": preset} if preset is not None else {}),
        )
        budget: dict[str, Any] = {}
        if name in ckpts:
            entry["trained"] = False
        elif training and trainable:
            budget, entry["trained"] = {"train_epochs": train_epochs, "train_steps": train_steps}, True
        elif needs_ckpt:
            entry.update(
                status="skipped",
                trained=False,
                note="needs a checkpoint (--checkpoint-map NAME=PATH)"
                + ("" if not training else " and has no train() method"),
            )
        else:
            entry["trained"] = False
            if training:
                entry["note"] = "no train() method: evaluated untrained"
        if entry["status"] == "ok":
            sub = out / _safe_dirname(name)
            try:
                res = run_benchmark(name, out_dir=sub, checkpoint=ckpts.get(name), **common, **budget)
            except WMEnvError as err:
                entry.update(status="failed", note=f"{type(err).__name__}: {err}")
            else:
                entry.update(results_dir=str(sub), aggregate=res["aggregate"])
                protocol = protocol or {
                    k: v for k, v in res["protocol"].items() if k not in ("agent", "checkpoint")
                }
        entries[name] = entry
    combined = {
        "format_version": 1,
        "env_id": env_id,
        "seeds": seeds,
        "episodes": episodes,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": protocol,
        "agents": entries,
    }
    files = write_combined(combined, out)
    return {**combined, "files": {k: str(v) for k, v in files.items()}}


def parse_seeds(text: str) -> list[int]:
    """``"N"`` -> ``0..N-1``; ``"0,1,2"`` -> exactly those; ``"7,"`` -> just seed 7.

    Raises:
        argparse.ArgumentTypeError: Malformed, negative, duplicate or empty.
    """
    text = text.strip()
    try:
        if "," not in text:
            count = int(text)
            if count < 1:
                raise ValueError
            return list(range(count))
        parts = text[:-1].split(",") if text.endswith(",") else text.split(",")
        seeds = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid seeds {text!r}: expected a count N >= 1 (seeds 0..N-1) or a comma list like 0,1,2"
        ) from None
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"invalid seeds {text!r}: seeds must be distinct and >= 0")
    return seeds


def default_device() -> str:
    """``"cuda"`` when a CUDA device is available, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
