"""The public factory of real environments: ``make_env`` and its backend registry.

Example:
    >>> from wmenv.envs.make import make_env, describe_protocol
    >>> env = make_env("cartpole-swingup", pixels=True, action_repeat=2)  # dm_control, 64x64
    >>> env = make_env("Pong-v5", protocol="atari100k")                  # ALE
    >>> describe_protocol(env)["repeat_action_probability"]
    0.0
"""

from __future__ import annotations

from wmenv.envs.backends import (
    EnvBackendSpec,
    describe_protocol,
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
