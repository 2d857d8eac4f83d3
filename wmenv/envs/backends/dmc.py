"""DeepMind Control Suite backend: ``"walker-walk"``-style ids as Gymnasium envs.

The suite env from ``dm_control.suite.load`` is converted to Gymnasium by Shimmy's maintained
``DmControlCompatibilityV0`` (seeded reset: the task's random state comes from the seed; episodes
end with ``truncated=True`` at the suite's time limit, 1000 control steps for every benchmark
task). Everything else is a Gymnasium wrapper:

- ``action_repeat`` -> ``RepeatAction`` (rewards summed, stops early at the episode end);
- state observations -> ``FlattenObservation`` + ``DtypeObservation``: the observation dict
  concatenated in the space's key order, float32 ``Box``;
- ``pixels=True`` -> ``AddRenderObservation``: uint8 ``(image_size, image_size, 3)`` frames from
  ``camera_id`` (default 2 for quadruped, else 0, as in Dreamer);
- actions -> float32 ``Box`` in ``[-1, 1]`` (``RescaleAction`` for the few tasks with other
  bounds, ``TransformAction`` for the dtype).

Ids: ``"domain-task"`` for any task in ``suite.ALL_TASKS`` (``"walker-walk"``,
``"ball_in_cup-catch"``), the alias ``"cup-catch"``, and the prefixed forms ``"dmc/walker-walk"`` and
``"dm_control/walker-walk-v0"``. Pixel rendering uses ``MUJOCO_GL=egl`` unless the variable is set.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box
from gymnasium.wrappers import (
    AddRenderObservation,
    DtypeObservation,
    FlattenObservation,
    RepeatAction,
    RescaleAction,
    TransformAction,
)

from wmenv.core.errors import ConfigError, UnknownEnvError, UnsupportedSpaceError
from wmenv.envs.backends.options import require_int
from wmenv.envs.backends.protocol import attach_protocol, jsonable
from wmenv.envs.backends.registry import EnvBackendSpec

NAME = "dmc"
DOMAIN_ALIASES = {"cup": "ball_in_cup"}
DEFAULT_IMAGE_SIZE = 64
_CAMERA_BY_DOMAIN = {"quadruped": 2}
_ID_PATTERN = re.compile(r"^(?:dmc/|dm_control/)?([A-Za-z_]+)-(\w+?)(-v0)?$")
_VERSION_TASK = re.compile(r"^v\d+$")


def load_suite() -> ModuleType:
    """Imports ``dm_control.suite``, defaulting ``MUJOCO_GL`` to ``egl`` for headless rendering."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    return importlib.import_module("dm_control.suite")


def parse_task(env_id: str) -> tuple[str, str] | None:
    """Returns ``(domain, task)`` for an accepted id of a suite task, else None.

    The cheap syntactic test runs first so that ids such as ``"CartPole-v1"`` never import
    dm_control.
    """
    match = _ID_PATTERN.match(env_id)
    if match is None or _VERSION_TASK.match(match.group(2)):
        return None
    if match.group(3) and not env_id.startswith("dm_control/"):
        return None
    domain = DOMAIN_ALIASES.get(match.group(1), match.group(1))
    task = match.group(2)
    if (domain, task) not in load_suite().ALL_TASKS:
        return None
    return domain, task


def list_envs() -> list[str]:
    """Returns ``"domain-task"`` for every task in ``dm_control.suite.ALL_TASKS`` plus the aliases."""
    ids = {f"{domain}-{task}" for domain, task in load_suite().ALL_TASKS}
    for alias, domain in DOMAIN_ALIASES.items():
        ids.update(
            f"{alias}-{env_id.split('-', 1)[1]}" for env_id in list(ids) if env_id.startswith(f"{domain}-")
        )
    return sorted(ids)


def matches(env_id: str) -> bool:
    """Whether ``env_id`` names a dm_control suite task."""
    return parse_task(env_id) is not None


def make(
    env_id: str,
    *,
    pixels: bool = False,
    image_size: int = DEFAULT_IMAGE_SIZE,
    camera_id: int | None = None,
    action_repeat: int = 1,
    render_mode: str | None = "rgb_array",
    task_kwargs: dict[str, Any] | None = None,
    environment_kwargs: dict[str, Any] | None = None,
    visualize_reward: bool = False,
) -> gym.Env:
    """Makes a dm_control suite task as a Gymnasium env.

    Args:
        env_id: ``"domain-task"`` (``"walker-walk"``, ``"cup-catch"``) or ``"dmc/domain-task"``.
        pixels: Observe rendered frames, uint8 ``(image_size, image_size, 3)``, instead of the
            flattened float32 state vector.
        image_size: Side of rendered frames (observations and ``render()``).
        camera_id: Camera to render from; default 2 for quadruped, else 0.
        action_repeat: Times each action is applied (Dreamer uses 2); rewards are summed.
        render_mode: ``"rgb_array"`` (default) or ``None``; pixels need ``"rgb_array"``.
        task_kwargs: Passed to ``suite.load`` (e.g. ``{"time_limit": 5}``); a ``"random"`` entry
            is replaced at the first ``reset(seed=...)``.
        environment_kwargs: Passed to ``suite.load`` (e.g. ``{"flat_observation": False}``).
        visualize_reward: Colour bodies by reward in rendered frames.

    Returns:
        The wrapped env (``terminated`` is False for suite tasks; ``truncated`` at the time limit,
        i.e. after ``ceil(1000 / action_repeat)`` steps), with a ``wmenv_protocol`` dict.

    Raises:
        UnknownEnvError: If the id is not a suite task (with close-match suggestions).
        ConfigError: Invalid ``image_size``, ``camera_id``, ``action_repeat`` or ``render_mode``.
    """
    parsed = parse_task(env_id)
    if parsed is None:
        raise UnknownEnvError(
            "dm_control task",
            env_id,
            list_envs(),
            hint="Use 'domain-task', e.g. 'walker-walk' or 'cup-catch'.",
        )
    domain, task = parsed
    require_int("image_size", image_size, minimum=1, example=DEFAULT_IMAGE_SIZE)
    require_int("action_repeat", action_repeat, minimum=1, example=2)
    camera_id = _CAMERA_BY_DOMAIN.get(domain, 0) if camera_id is None else camera_id
    require_int("camera_id", camera_id, minimum=-1, example=0)
    if render_mode not in (None, "rgb_array") or (pixels and render_mode is None):
        raise ConfigError(
            f"render_mode must be 'rgb_array' (or None without pixels), got {render_mode!r} "
            f"with pixels={pixels}; pass render_mode='rgb_array'."
        )

    from shimmy.dm_control_compatibility import DmControlCompatibilityV0

    suite_env = load_suite().load(
        domain,
        task,
        task_kwargs=task_kwargs,
        environment_kwargs=environment_kwargs,
        visualize_reward=visualize_reward,
    )
    step_limit = getattr(suite_env, "_step_limit", None)
    env: gym.Env = DmControlCompatibilityV0(
        suite_env,
        render_mode=render_mode,
        render_kwargs={"width": image_size, "height": image_size, "camera_id": camera_id},
    )
    if action_repeat > 1:
        env = RepeatAction(env, action_repeat)
    if pixels:
        env = AddRenderObservation(env, render_only=True)
    else:
        env = DtypeObservation(FlattenObservation(env), np.float32)
    env = _unit_float32_actions(env)
    return attach_protocol(
        env,
        {
            "backend": NAME,
            "env_id": f"{domain}-{task}",
            "domain": domain,
            "task": task,
            "pixels": bool(pixels),
            "image_size": image_size,
            "camera_id": camera_id,
            "action_repeat": action_repeat,
            "control_timestep": float(suite_env.control_timestep()),
            "max_episode_steps": (
                None
                if step_limit is None or math.isinf(step_limit)
                else math.ceil(step_limit / action_repeat)
            ),
            "task_kwargs": jsonable(task_kwargs or {}),
            "environment_kwargs": jsonable(environment_kwargs or {}),
        },
    )


def _unit_float32_actions(env: gym.Env) -> gym.Env:
    """Exposes the action space as float32 ``[-1, 1]``, rescaling only where the task's bounds differ."""
    space = env.action_space
    if not isinstance(space, Box):
        raise UnsupportedSpaceError(
            f"expected a Box action space from dm_control, got {space}; only suite tasks are supported."
        )
    if not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
        env = RescaleAction(env, -1.0, 1.0)
    inner_dtype = env.action_space.dtype
    unit = Box(-1.0, 1.0, shape=space.shape, dtype=np.float32)
    return TransformAction(env, lambda action: np.asarray(action, dtype=inner_dtype), unit)


SPEC = EnvBackendSpec(
    name=NAME,
    aliases=("dm_control", "dm-control", "dmcontrol"),
    description="DeepMind Control Suite tasks ('walker-walk', 'cup-catch'), state or 64x64 pixels.",
    make=make,
    list_envs=list_envs,
    matches=matches,
)
