"""Gymnasium registration: ``gym.make("wmenv/WorldModel-v0", ...)`` and ``gym.make_vec(...)``.

Scripts that only call ``gym.make(env_id, **kwargs)`` (CleanRL) can use a world model
unchanged. The entry points (:func:`wmenv.runs.make_registered_env`, named by string so this
module imports nothing above the faces) take either a ready ``WorldModel`` (``model=``,
``start_states=``) or a run directory (``checkpoint=``), opened with :func:`wmenv.open_run`: its
replay data gives the start states and its real env's time limit the default horizon.
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` returns the batched
:class:`~wmenv.envs.vector.WorldModelVectorEnv` (one forward pass, no copies of the model).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym

from wmenv.core.errors import ConfigError

__all__ = ["ENV_ID", "register_envs", "register_env", "unregister_env", "bound_envs", "user_registry_path",
           "register_user_envs"]

ENV_ID = "wmenv/WorldModel-v0"
_ID = re.compile(r"(wmenv/)?[A-Za-z0-9_.-]+-v\d+")


def register_envs() -> None:
    """Register ``wmenv/WorldModel-v0`` and the ids bound in the user registry (idempotent)."""
    register_user_envs()
    if ENV_ID in gym.registry:
        return
    gym.register(
        id=ENV_ID,
        entry_point="wmenv.runs:make_registered_env",
        vector_entry_point="wmenv.runs:make_registered_vector_env",
        disable_env_checker=True,
        order_enforce=False,
    )


# ---------------------------------------------------------------------------------- bound ids
def user_registry_path() -> Path:
    """The file that keeps ids bound with ``wmenv register`` (``$WMENV_CONFIG_DIR/envs.json``, default
    ``$XDG_CONFIG_HOME/wmenv/envs.json`` or ``~/.config/wmenv/envs.json``)."""
    root = os.environ.get("WMENV_CONFIG_DIR")
    if root:
        return Path(root) / "envs.json"
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "wmenv" / "envs.json"


def _full_id(env_id: str) -> str:
    if not isinstance(env_id, str) or not _ID.fullmatch(env_id):
        raise ConfigError(
            f"env id must look like 'wmenv/Name-v0' or 'Name-v0' (letters, digits, '_', '-', '.'; a version), "
            f"got {env_id!r}"
        )
    return env_id if env_id.startswith("wmenv/") else f"wmenv/{env_id}"


def register_env(env_id: str, checkpoint: str | os.PathLike, *, persist: bool = False, replace: bool = False,
                 **defaults: Any) -> str:
    """Bind an id to a run directory, so ``gym.make(id)`` needs no arguments (CleanRL ``--env-id``, rl-zoo3,
    TorchRL ``GymEnv``).

    Args:
        env_id: ``"wmenv/CartPoleDream-v0"`` or ``"CartPoleDream-v0"`` (put in the ``wmenv`` namespace).
        checkpoint: the run directory (or its ``checkpoint.pt``); stored as an absolute path.
        persist: also write the binding to :func:`user_registry_path`, so every later
            ``import wmenv`` (or ``gym.make("wmenv:wmenv/CartPoleDream-v0")``) registers it.
        replace: rebind an id that is already bound.
        **defaults: default ``gym.make`` arguments (``observation_mode="latent"``, ``max_episode_steps=...``).

    Returns:
        The full id.
    """
    full = _full_id(env_id)
    path = Path(checkpoint).expanduser().resolve()
    if not path.exists():
        raise ConfigError(f"checkpoint {checkpoint} does not exist; pass a run directory or its checkpoint.pt")
    try:
        json.dumps(defaults)
    except TypeError as err:
        raise ConfigError(f"register_env defaults must be plain data (JSON), got {defaults!r}: {err}") from err
    if full == ENV_ID:
        raise ConfigError(f"{ENV_ID} is the generic id (pass checkpoint= to gym.make); choose another id")
    if full in gym.registry and not replace and gym.registry[full].kwargs.get("checkpoint") != str(path):
        raise ConfigError(f"{full} is already bound to {gym.registry[full].kwargs.get('checkpoint')}; "
                          "pass replace=True (CLI: --replace) to rebind it")
    _register_bound(full, {"checkpoint": str(path), **defaults})
    if persist:
        entries = _read_user_registry()
        entries[full] = {"checkpoint": str(path), **defaults}
        target = user_registry_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(entries, indent=2, sort_keys=True))
        os.replace(tmp, target)
    return full


def unregister_env(env_id: str) -> None:
    """Remove a bound id from Gymnasium's registry and from the user registry file."""
    full = _full_id(env_id)
    gym.registry.pop(full, None)
    entries = _read_user_registry()
    if entries.pop(full, None) is not None:
        user_registry_path().write_text(json.dumps(entries, indent=2, sort_keys=True))


def bound_envs() -> dict[str, dict[str, Any]]:
    """The ids bound in the user registry file and their ``gym.make`` arguments."""
    return _read_user_registry()


def _register_bound(full: str, kwargs: dict[str, Any]) -> None:
    gym.registry.pop(full, None)
    gym.register(id=full, entry_point="wmenv.runs:make_registered_env",
                 vector_entry_point="wmenv.runs:make_registered_vector_env", kwargs=kwargs,
                 disable_env_checker=True, order_enforce=False)


def _read_user_registry() -> dict[str, dict[str, Any]]:
    path = user_registry_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        warnings.warn(f"ignoring the unreadable wmenv env registry {path}: {err}", stacklevel=2)
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict) and "checkpoint" in v}


def register_user_envs() -> list[str]:
    """Register every id of the user registry file (``import wmenv`` does this)."""
    added = []
    for full, kwargs in _read_user_registry().items():
        try:
            _register_bound(_full_id(full), dict(kwargs))
            added.append(full)
        except ConfigError:
            continue
    return added
