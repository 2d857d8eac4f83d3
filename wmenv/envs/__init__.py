"""Environment faces over the one imagination core, and real environments from one factory.

Names are imported lazily (``from wmenv.envs import WorldModelSB3VecEnv`` imports only that face).
Importing this package registers the Gymnasium id ``wmenv/WorldModel-v0`` and the user's bound ids.
"""

from __future__ import annotations

import importlib
from typing import Any

from wmenv.envs.registration import ENV_ID, register_env, register_envs

register_envs()

_LAZY = {
    "WorldModelEnv": "wmenv.envs.gymnasium",
    "WorldModelVectorEnv": "wmenv.envs.vector",
    "WorldModelTorchRLEnv": "wmenv.envs.torchrl",
    "WorldModelSB3VecEnv": "wmenv.envs.sb3",
    "LatentObservationWrapper": "wmenv.envs.latent",
}

__all__ = [*_LAZY, "ENV_ID", "register_envs", "register_env"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wmenv.envs' has no attribute {name!r}")
