"""Environment faces over the one imagination core, and real environments from one factory."""

from wmenv.envs.gymnasium import WorldModelEnv
from wmenv.envs.registration import ENV_ID, register_envs
from wmenv.envs.sb3 import WorldModelSB3VecEnv
from wmenv.envs.torchrl import WorldModelTorchRLEnv
from wmenv.envs.vector import WorldModelVectorEnv

register_envs()

__all__ = [
    "WorldModelEnv",
    "WorldModelVectorEnv",
    "WorldModelTorchRLEnv",
    "WorldModelSB3VecEnv",
    "ENV_ID",
    "register_envs",
]
