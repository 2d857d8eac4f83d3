"""Ha & Schmidhuber "World Models" (2018): ConvVAE / MLP VAE (V), MDN-RNN (M), linear controller (C).

Registered model ``world-models`` (alias ``ha``): :func:`build_agent` gives a
:class:`WorldModelsAgent`; ``get_model_spec("world-models").to_world_model`` is
:func:`to_world_model` (the MDN-RNN dream as a :class:`wmenv.core.WorldModel`). Benchmark agent
``world-models`` (alias ``ha``). Train with ``python -m wmenv.models.ha.train --stage vae|mdnrnn|controller|all``.
"""

from __future__ import annotations

import gymnasium as gym

from wmenv.models.ha.adapter import WorldModelsImagination, to_world_model
from wmenv.models.ha.agent import STAGES, StageOrderError, WorldModelsAgent, WorldModelsPolicy
from wmenv.models.ha.benchmark import WorldModelsBenchmarkAgent
from wmenv.models.ha.config import (
    CMAConfig,
    ControllerConfig,
    MDNRNNConfig,
    ScheduleConfig,
    VAEConfig,
    WorldModelsConfig,
)
from wmenv.models.ha.model import MDNRNN, MLPVAE, ConvVAE, LinearController
from wmenv.models.ha.train import run_stages
from wmenv.registry import ModelSpec, register_model

__all__ = [
    "WorldModelsConfig",
    "VAEConfig",
    "MDNRNNConfig",
    "ControllerConfig",
    "CMAConfig",
    "ScheduleConfig",
    "ConvVAE",
    "MLPVAE",
    "MDNRNN",
    "LinearController",
    "WorldModelsAgent",
    "WorldModelsPolicy",
    "WorldModelsImagination",
    "StageOrderError",
    "STAGES",
    "to_world_model",
    "build_agent",
]


def build_agent(
    config: WorldModelsConfig, observation_space: gym.Space, action_space: gym.Space
) -> WorldModelsAgent:
    """Registry build function: V + M + C."""
    return WorldModelsAgent(config, observation_space, action_space)


def _trainer_hint(preset: str) -> dict[str, object]:
    """TrainerConfig suggestions for the generic ``wmenv train`` (it trains the current gradient stage)."""
    return {"lr": 1e-3, "seq_len": 16 if preset not in ("debug", "tiny") else 4, "grad_clip": 100.0}


register_model(
    ModelSpec(
        "world-models", WorldModelsConfig, build_agent, family="world-models", aliases=("ha",),
        description="Ha & Schmidhuber World Models: VAE + MDN-RNN + CMA-ES linear controller (dream training)",
        default_preset="tiny", to_world_model=to_world_model, trainer_defaults=_trainer_hint,
        stages=STAGES, run_stages=run_stages, benchmark_agent=WorldModelsBenchmarkAgent,
    ),
    replace=True,
)
