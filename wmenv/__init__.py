"""wmenv: train learned world models and use them as ordinary RL environments.

Public surface::

    import wmenv
    env = wmenv.make_env("CartPole-v1")                       # real envs, one factory
    model = wmenv.create_model("dreamer", env=env, preset="tiny")
    wmenv.list_models(); wmenv.get_model_spec("dreamerv3")

Faces over the one imagination core live in :mod:`wmenv.envs` (``WorldModelEnv``,
``WorldModelVectorEnv``, ``WorldModelTorchRLEnv``, ``WorldModelSB3VecEnv``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from wmenv.registry import ModelSpec, create_config, create_model, get_model_spec, list_models, register_model

try:
    __version__ = version("wmenv")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

__all__ = [
    "__version__",
    "ModelSpec",
    "create_config",
    "create_model",
    "get_model_spec",
    "list_models",
    "register_model",
    "make_env",
    "list_envs",
    "list_env_backends",
    "get_env_backend_spec",
]


def make_env(env_id: str, backend: str = "auto", **kwargs: Any) -> Any:
    """Make a real environment (Gymnasium, ALE, dm_control, MuJoCo); see :mod:`wmenv.envs.make`."""
    from wmenv.envs.make import make_env as _make_env

    return _make_env(env_id, backend=backend, **kwargs)


def list_envs(backend: str | None = None) -> list[str]:
    """Known real env ids (optionally of one backend)."""
    from wmenv.envs.make import list_envs as _list_envs

    return _list_envs(backend)


def list_env_backends() -> list[str]:
    """Names of the real-env backends."""
    from wmenv.envs.make import list_env_backends as _list

    return _list()


def get_env_backend_spec(name: str) -> Any:
    """The spec of a real-env backend, by name or alias."""
    from wmenv.envs.make import get_env_backend_spec as _get

    return _get(name)
