"""Diffusion world models: DIAMOND (Alonso et al. 2024) and two variants from one config.

Registered models (family ``"diamond"``), all imagining in pixel space (``observations=("image",)``):

- ``diamond``: EDM objective + DIAMOND's U-Net denoiser (3 Euler steps per imagined frame);
- ``ddpm``: DDPM objective (``eps``-prediction, linear ``beta`` schedule) + the same U-Net, DDIM sampling;
- ``dit``: EDM objective + a diffusion transformer (adaLN-Zero) denoiser.

Each is a :class:`DiamondAgent`: the denoiser, a reward/termination model (CNN + LSTM) and an
actor-critic trained in imagination. Train with the staged loop (collect -> world model ->
actor-critic, repeated; :mod:`wmenv.models.diamond.train`)::

    wmenv train diamond --env MinAtar/Breakout-v1 --preset tiny --stage all --run-dir runs/diamond-smoke

then ``wmenv.open_run(run_dir).make_env("sb3", num_envs=64)`` imagines with the trained model
(:func:`to_world_model`), ``run.policy()`` acts in the real env, and
``wmenv benchmark -a diamond -g ENV -c RUN_DIR`` (or ``--steps N``: train with the staged loop first)
judges it there.
"""

from __future__ import annotations

import gymnasium as gym

from wmenv.models.diamond.adapter import DiamondImagination, to_world_model
from wmenv.models.diamond.agent import PHASES, ActorCritic, DiamondAgent, DiamondPolicy, lambda_returns
from wmenv.models.diamond.benchmark import DiamondBenchmarkAgent, benchmark_agent_for
from wmenv.models.diamond.config import (
    ActorCriticConfig,
    DDPMConfig,
    DiamondConfig,
    DiTConfig,
    EDMConfig,
    OptimConfig,
    RewardEndConfig,
    ScheduleConfig,
    UNetConfig,
)
from wmenv.models.diamond.model import DiamondWorldModel, FrameCodec, RewardEndModel
from wmenv.models.diamond.train import STAGES, run_stages, stage_driver
from wmenv.registry import ModelSpec, make_policy, register_model

__all__ = [
    "DiamondConfig", "UNetConfig", "DiTConfig", "EDMConfig", "DDPMConfig", "RewardEndConfig", "ActorCriticConfig",
    "OptimConfig", "ScheduleConfig", "DiamondWorldModel", "FrameCodec", "RewardEndModel", "ActorCritic",
    "DiamondAgent", "DiamondPolicy", "DiamondImagination", "PHASES", "STAGES", "build_agent", "lambda_returns",
    "run_stages", "stage_driver", "to_world_model", "VARIANTS", "DiamondBenchmarkAgent", "benchmark_agent_for",
]

#: name -> (config overrides, aliases, description)
VARIANTS: dict[str, tuple[dict[str, str], tuple[str, ...], str]] = {
    "diamond": ({"objective": "edm", "denoiser": "unet"}, ("diamond-edm",),
                "DIAMOND: EDM diffusion U-Net over the last L frames + reward/end CNN-LSTM + actor-critic in imagination"),
    "ddpm": ({"objective": "ddpm", "denoiser": "unet"}, ("diamond-ddpm",),
             "DIAMOND with a DDPM objective (eps-prediction, DDIM few-step sampling) and the same U-Net"),
    "dit": ({"objective": "edm", "denoiser": "dit"}, ("diamond-dit",),
            "DIAMOND with a diffusion-transformer (DiT, adaLN-Zero) denoiser under the EDM objective"),
}


def build_agent(config: DiamondConfig, observation_space: gym.Space, action_space: gym.Space) -> DiamondAgent:
    """Registry build function: world model + actor-critic (frames only: vector spaces raise
    :class:`~wmenv.core.errors.UnsupportedSpaceError`)."""
    return DiamondAgent(config, observation_space, action_space)


def _trainer_hint(preset: str) -> dict[str, object]:
    """TrainerConfig suggestions for the generic (unstaged) ``wmenv train``: the schedule's batch shape."""
    from wmenv.config import make_preset

    s = make_preset(DiamondConfig, preset).schedule
    return {"batch_size": s.batch_size, "seq_len": s.seq_len}


for _name, (_overrides, _aliases, _description) in VARIANTS.items():
    register_model(
        ModelSpec(
            _name, DiamondConfig, build_agent, family="diamond", aliases=_aliases, description=_description,
            config_overrides=_overrides, default_preset="tiny", to_world_model=to_world_model, policy=make_policy,
            trainer_defaults=_trainer_hint, stages=STAGES, run_stages=stage_driver(_name),
            benchmark_agent=benchmark_agent_for(_name), observations=("image",),
        )
    )
