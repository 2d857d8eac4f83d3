"""PlaNet (Hafner et al. 2019): Gaussian RSSM world model + CEM planning in latent space.

Registered model ``planet`` (family ``"planet"``): :func:`build_agent` gives a :class:`PlanetAgent`
whose ``make_policy()`` plans in the real env; ``get_model_spec("planet").to_world_model`` is
:func:`to_world_model` (the model as a :class:`wmenv.core.WorldModel` for every env face).

Train on Pendulum with planner-driven collection::

    OMP_NUM_THREADS=1 wmenv train planet --env Pendulum-v1 --preset small --seed-steps 1000 \\
        --collect-every 500 --collect-steps 1000 --steps 2000
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from wmenv.models.planet.adapter import LatentPlanner, PlanetImagination, to_world_model
from wmenv.models.planet.agent import PlanetAgent
from wmenv.models.planet.config import PlanetConfig, PlanetRSSMConfig
from wmenv.models.planet.loss import gaussian_nll, overshooting_kl
from wmenv.models.planet.model import PlanetWorldModel
from wmenv.nn.planning import CEMConfig
from wmenv.registry import ModelSpec, make_policy, register_model

__all__ = [
    "PlanetConfig",
    "PlanetRSSMConfig",
    "CEMConfig",
    "PlanetWorldModel",
    "PlanetAgent",
    "PlanetImagination",
    "LatentPlanner",
    "to_world_model",
    "build_agent",
    "gaussian_nll",
    "overshooting_kl",
]


def build_agent(config: PlanetConfig, observation_space: gym.Space, action_space: gym.Space) -> PlanetAgent:
    """Registry build function: world model + CEM planner."""
    return PlanetAgent(config, observation_space, action_space)


def _trainer_hint(preset: str) -> dict[str, Any]:
    """TrainerConfig suggestions for ``wmenv train planet`` (the paper: batch 50 x 50 steps)."""
    if preset in ("debug", "tiny"):
        return {"seq_len": 16, "batch_size": 8, "lr": 1e-3}
    if preset == "small":
        return {"seq_len": 32, "batch_size": 16, "lr": 1e-3, "grad_clip": 1000.0}
    return {"seq_len": 50, "batch_size": 50, "lr": 1e-3, "grad_clip": 1000.0}


register_model(
    ModelSpec(
        "planet", PlanetConfig, build_agent, family="planet", aliases=("planet-cem",),
        description="PlaNet: Gaussian RSSM world model, variational bound (free nats), CEM planning",
        default_preset="tiny", to_world_model=to_world_model, policy=make_policy, trainer_defaults=_trainer_hint,
    ),
    replace=True,
)
