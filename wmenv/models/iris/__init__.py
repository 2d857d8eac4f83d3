"""IRIS (Micheli, Alonso & Fleuret, ICLR 2023): a discrete-token world model.

A tokenizer (conv VQ autoencoder) turns each frame into ``K`` tokens, a GPT predicts the next
frame's tokens, the reward and the termination from the last ``L`` steps of ``[frame tokens,
action]``, and an actor-critic learns in the imagined frames. Registered model ``iris``::

    wmenv train iris --env MinAtar/Breakout-v1 --preset minatar --stage all --run-dir runs/iris-breakout
    run = wmenv.open_run("runs/iris-breakout")
    env = run.make_env("sb3", num_envs=64)        # imagined 10x10x4 frames (or observation_mode="latent")
    policy = run.policy()                          # the actor-critic in the real env

Image observations only (``uint8`` ``H x W x C`` or ``H x W``: MinAtar frames, 64x64x3 Atari or
``pixels=True`` envs); ``Discrete`` or 1-D ``Box`` actions. Presets ``tiny``, ``minatar``,
``atari100k`` (the paper's sizes, GPU-sized).
"""

from __future__ import annotations

import gymnasium as gym

from wmenv.models.iris.adapter import IRISImagination, to_world_model
from wmenv.models.iris.agent import ActorCritic, IRISPolicy
from wmenv.models.iris.config import (
    ActorCriticConfig,
    IRISConfig,
    ScheduleConfig,
    TokenizerConfig,
    WorldModelConfig,
)
from wmenv.models.iris.model import IRIS, MODES, StageOrderError
from wmenv.models.iris.tokenizer import Tokenizer
from wmenv.models.iris.train import STAGES, run_stages
from wmenv.models.iris.world_model import IRISWorldModel
from wmenv.registry import ModelSpec, make_policy, register_model

__all__ = [
    "IRISConfig", "TokenizerConfig", "WorldModelConfig", "ActorCriticConfig", "ScheduleConfig",
    "IRIS", "Tokenizer", "IRISWorldModel", "ActorCritic", "IRISPolicy", "IRISImagination",
    "StageOrderError", "STAGES", "MODES", "build", "to_world_model", "run_stages",
]


def build(config: IRISConfig, observation_space: gym.Space, action_space: gym.Space) -> IRIS:
    """Registry build function."""
    return IRIS(config, observation_space, action_space)


def _trainer_hint(preset: str) -> dict[str, object]:
    """TrainerConfig of the joint (un-staged) loop: sequences of the world model's context."""
    config = getattr(IRISConfig, preset, IRISConfig)()
    return {"seq_len": config.world_model.context_steps, "batch_size": config.schedule.world_model_batch}


register_model(
    ModelSpec(
        "iris", IRISConfig, build, family="iris",
        description="IRIS: VQ tokenizer + GPT world model over frame tokens + actor-critic in imagination",
        default_preset="tiny", to_world_model=to_world_model, policy=make_policy, trainer_defaults=_trainer_hint,
        stages=STAGES, run_stages=run_stages, observations=("image",),
    )
)
