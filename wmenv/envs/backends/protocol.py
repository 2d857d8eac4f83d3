"""The evaluation protocol a real env was made with, as a plain dict a benchmark can write out.

Backends attach the dict to the outermost wrapper they return as ``env.wmenv_protocol``.
:func:`describe_protocol` finds it through any wrappers a user adds later and falls back to what
Gymnasium's ``env.spec`` says for envs that were not made by ``make_env``.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym

PROTOCOL_ATTR = "wmenv_protocol"


def attach_protocol(env: gym.Env, protocol: dict[str, Any]) -> gym.Env:
    """Stores ``protocol`` on ``env`` (the outermost wrapper) and returns ``env``."""
    setattr(env, PROTOCOL_ATTR, dict(protocol))
    return env


def jsonable(value: Any) -> Any:
    """Returns ``value`` with anything that is not JSON-friendly replaced by its ``repr``.

    Used for the free-form ``kwargs`` entry of a protocol so that results files never fail to
    write because an option was a callable or an array.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return repr(value)


def describe_protocol(env: gym.Env) -> dict[str, Any]:
    """Returns the protocol dict of an env (a copy; safe to modify and to serialize as JSON).

    For envs from ``make_env`` it holds at least ``backend`` and ``env_id`` plus the settings
    that change results: e.g. ``frameskip``, ``repeat_action_probability``, ``noop_max`` and
    ``max_episode_frames`` for ALE; ``action_repeat``, ``pixels``, ``image_size`` for dm_control.

    Args:
        env: Any Gymnasium env, wrapped or not.

    Returns:
        The stored protocol dict, or ``{"backend": None, "env_id": ..., "max_episode_steps": ...,
        "kwargs": ...}`` built from ``env.spec`` when the env was not made by ``make_env``.
    """
    try:
        protocol = env.get_wrapper_attr(PROTOCOL_ATTR)
    except AttributeError:
        spec = env.spec
        return {
            "backend": None,
            "env_id": spec.id if spec is not None else type(env.unwrapped).__name__,
            "max_episode_steps": spec.max_episode_steps if spec is not None else None,
            "kwargs": copy.deepcopy(dict(spec.kwargs)) if spec is not None else {},
        }
    return copy.deepcopy(protocol)
