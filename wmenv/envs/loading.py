"""From a checkpoint to imagination: the trained model as a ``WorldModel`` plus real start states.

A run directory written by :class:`wmenv.train.Trainer` holds ``checkpoint.pt`` and the replay
snapshot it names; episodes start from slices of that real data. This is what
``gym.make("wmenv/WorldModel-v0", checkpoint=...)`` and :func:`make_imagination_env` use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from wmenv.core.errors import CheckpointError, ConfigError
from wmenv.core.protocol import ReplayStartStates, StartStates

__all__ = ["load_imagination", "make_imagination_env", "resolve_checkpoint", "FACES"]

FACES = ("gymnasium", "vector", "torchrl", "sb3")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file from a file path or a run directory holding ``checkpoint.pt``."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoint.pt"
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p} (give a checkpoint.pt file or a run directory holding one)")
    return p


def load_imagination(
    checkpoint: str | os.PathLike,
    *,
    observation_mode: str | None = None,
    context_length: int | None = None,
    device: str | torch.device | None = None,
    replay_dir: str | os.PathLike | None = None,
    **adapter_kwargs: Any,
) -> tuple[Any, StartStates]:
    """Load a trained model as a ``WorldModel`` and its replay data as start states.

    Args:
        checkpoint: ``checkpoint.pt`` or a run directory.
        observation_mode: ``"latent"`` or ``"decoded"`` (default: the family's default).
        context_length: steps of real context burned in at each reset (default 8, or 1 for
            families that start from one observation).
        device: torch device (default CPU).
        replay_dir: replay snapshot to start from (default: the one the checkpoint names).
        **adapter_kwargs: passed to the family's ``to_world_model``.

    Returns:
        ``(world_model, start_states)``.

    Raises:
        CheckpointError: missing or unreadable checkpoint or replay snapshot, or a family with
            no world-model adapter.
    """
    from wmenv.registry import get_model_spec
    from wmenv.train.checkpoint import load_model
    from wmenv.train.replay import load_replay, replay_as_tensordict

    path = resolve_checkpoint(checkpoint)
    model, meta = load_model(path, device=device or "cpu")
    model.eval()
    spec = get_model_spec(meta["model_name"])
    to_world_model = spec.extras.get("world_model")
    if to_world_model is None:
        raise CheckpointError(f"model {meta['model_name']!r} has no world-model adapter; it cannot be imagined in")
    if observation_mode is not None:
        adapter_kwargs["observation_mode"] = observation_mode
    try:
        world_model = to_world_model(model, **adapter_kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build the {meta['model_name']} world model from {path}: {err}") from err
    if replay_dir is None:
        snapshot = (meta.get("extra") or {}).get("replay_snapshot")
        if not snapshot:
            raise CheckpointError(
                f"{path} names no replay snapshot to start imagined episodes from; pass replay_dir="
            )
        replay_dir = path.parent / snapshot
    replay = load_replay(replay_dir)
    data = replay_as_tensordict(replay).clone()
    ctx = context_length if context_length is not None else int(getattr(world_model, "context_length", 8))
    return world_model, ReplayStartStates(data, context_length=ctx)


def make_imagination_env(
    checkpoint: str | os.PathLike,
    face: str = "gymnasium",
    *,
    num_envs: int = 16,
    max_episode_steps: int | None = 64,
    observation_mode: str | None = None,
    context_length: int | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    **face_kwargs: Any,
) -> Any:
    """One call from a checkpoint to an env face for an RL library.

    Args:
        checkpoint: ``checkpoint.pt`` or a run directory from ``wmenv train`` / ``wmenv demo``.
        face: ``"gymnasium"`` (``WorldModelEnv``), ``"vector"``, ``"torchrl"`` or ``"sb3"``.
        num_envs: batch size of the vector faces.
        max_episode_steps: imagination horizon.
        observation_mode: ``"latent"`` or ``"decoded"``.
        context_length: steps of real context per reset.
        seed: seed of the env's generator.
        device: torch device.
        **face_kwargs: passed to the face (e.g. ``autoreset_mode``).
    """
    from wmenv.envs.gymnasium import WorldModelEnv
    from wmenv.envs.sb3 import WorldModelSB3VecEnv
    from wmenv.envs.torchrl import WorldModelTorchRLEnv
    from wmenv.envs.vector import WorldModelVectorEnv

    if face not in FACES:
        raise ConfigError(f"unknown face {face!r}; expected one of {list(FACES)}")
    model, start = load_imagination(
        checkpoint, observation_mode=observation_mode, context_length=context_length, device=device
    )
    if face == "gymnasium":
        return WorldModelEnv(model, start, max_episode_steps=max_episode_steps, seed=seed, device=device, **face_kwargs)
    cls = {"vector": WorldModelVectorEnv, "torchrl": WorldModelTorchRLEnv, "sb3": WorldModelSB3VecEnv}[face]
    return cls(model, start, num_envs, max_episode_steps=max_episode_steps, seed=seed, device=device, **face_kwargs)
