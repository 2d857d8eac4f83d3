"""Real environments behind one factory: Gymnasium, ALE, dm_control and raw MuJoCo backends.

``make_env(env_id, backend="auto", **kwargs)`` returns a Gymnasium env from whichever backend
claims ``env_id``; ``describe_protocol(env)`` returns the settings a benchmark must report.
Backend modules (``gymnasium``, ``ale``, ``dmc``, ``mujoco``) import their simulators lazily.

MuJoCo-based rendering (dm_control pixels, MuJoCo tasks with ``pixels=True``) needs an OpenGL
context; ``MUJOCO_GL`` defaults to ``egl`` (headless) here unless it is already set, before any
backend imports ``mujoco``.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from wmenv.envs.backends.protocol import describe_protocol  # noqa: E402
from wmenv.envs.backends.registry import (  # noqa: E402
    EnvBackendSpec,
    get_env_backend_spec,
    list_env_backends,
    list_envs,
    make_env,
    register_env_backend,
    resolve_env_backend,
)

__all__ = [
    "EnvBackendSpec",
    "describe_protocol",
    "get_env_backend_spec",
    "list_env_backends",
    "list_envs",
    "make_env",
    "register_env_backend",
    "resolve_env_backend",
]
