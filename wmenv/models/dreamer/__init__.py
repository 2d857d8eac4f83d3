"""Dreamer V1/V2/V3: RSSM world model, actor-critic in imagination, and the WorldModel adapter.

Registered models: ``dreamer`` (= ``dreamerv3``), ``dreamerv1``, ``dreamerv2``, ``dreamerv3``
(world model + actor + critic, a :class:`DreamerAgent`) and ``dreamer-wm`` (= ``dreamerv3-wm``),
``dreamerv2-wm``, ``dreamerv1-wm`` (world model only).
Every spec's ``to_world_model`` is :func:`to_world_model`; the agents' ``policy`` is
:func:`wmenv.registry.make_policy` (greedy or exploring ``DreamerPolicy``).
"""

from __future__ import annotations

import gymnasium as gym

from wmenv.models.dreamer.adapter import DreamerImagination, to_world_model
from wmenv.models.dreamer.agent import DreamerAgent, DreamerPolicy
from wmenv.models.dreamer.config import BehaviorConfig, DreamerConfig, KLConfig, OptimConfig, RSSMConfig
from wmenv.models.dreamer.model import DreamerWorldModel, open_loop_error
from wmenv.registry import ModelSpec, make_policy, register_model

__all__ = [
    "DreamerConfig",
    "RSSMConfig",
    "KLConfig",
    "OptimConfig",
    "BehaviorConfig",
    "DreamerWorldModel",
    "DreamerAgent",
    "DreamerPolicy",
    "DreamerImagination",
    "to_world_model",
    "open_loop_error",
    "build_agent",
    "build_world_model",
]


def build_agent(config: DreamerConfig, observation_space: gym.Space, action_space: gym.Space) -> DreamerAgent:
    """Registry build function: world model + actor + critic."""
    return DreamerAgent(config, observation_space, action_space)


def build_world_model(
    config: DreamerConfig, observation_space: gym.Space, action_space: gym.Space
) -> DreamerWorldModel:
    """Registry build function: world model only."""
    return DreamerWorldModel(config, observation_space, action_space)


_AGENT = {"to_world_model": to_world_model, "policy": make_policy}
_WORLD_MODEL = {"to_world_model": to_world_model}
for _name, _version, _desc, _aliases in (
    ("dreamerv3", "v3", "DreamerV3: discrete RSSM, symlog, two-hot heads, actor-critic", ()),
    ("dreamerv2", "v2", "DreamerV2: discrete RSSM, KL balancing 0.8, actor-critic", ("dreamer-v2",)),
    ("dreamerv1", "v1", "DreamerV1: Gaussian RSSM, free nats 3, actor-critic", ("dreamer-v1",)),
):
    register_model(
        ModelSpec(
            _name,
            DreamerConfig,
            build_agent,
            family="dreamer",
            aliases=_aliases,
            description=_desc,
            config_overrides={"version": _version},
            **_AGENT,
        ),
        replace=True,
    )
register_model(
    ModelSpec(
        "dreamer",
        DreamerConfig,
        build_agent,
        family="dreamer",
        aliases=("dreamer-v3",),
        description="Dreamer (V3 recipe): world model + actor + critic",
        **_AGENT,
    ),
    replace=True,
)
register_model(
    ModelSpec(
        "dreamer-wm",
        DreamerConfig,
        build_world_model,
        family="dreamer",
        aliases=("dreamer-world-model", "dreamerv3-wm"),
        description="Dreamer (V3 recipe) world model only: encoder, RSSM, decoder, reward, continue",
        **_WORLD_MODEL,
    ),
    replace=True,
)
for _name, _version, _desc in (
    ("dreamerv2-wm", "v2", "DreamerV2 world model only (discrete latents, KL balancing 0.8)"),
    ("dreamerv1-wm", "v1", "DreamerV1 world model only (Gaussian latents, free nats 3)"),
):
    register_model(
        ModelSpec(
            _name,
            DreamerConfig,
            build_world_model,
            family="dreamer",
            description=_desc,
            config_overrides={"version": _version},
            **_WORLD_MODEL,
        ),
        replace=True,
    )
