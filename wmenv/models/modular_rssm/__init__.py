"""Modular RSSM: an RSSM world model with swappable encoder (conv/mlp/vit), backbone (gru/lstm/transformer)
and decoder (conv/mlp), every part built from the shared blocks of :mod:`wmenv.nn`.

Registered model ``modular-rssm`` (family ``"modular-rssm"``);
``get_model_spec("modular-rssm").to_world_model`` is :func:`to_world_model`. Example::

    wmenv train modular-rssm --env CartPole-v1 --preset tiny backbone=transformer transformer.heads=2
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from wmenv.models.modular_rssm.adapter import ModularRSSMImagination, to_world_model
from wmenv.models.modular_rssm.config import KLConfig, ModularRSSMConfig, TransformerConfig, ViTConfig
from wmenv.models.modular_rssm.model import ModularRSSMWorldModel, resolve_components
from wmenv.registry import ModelSpec, make_policy, register_model

__all__ = [
    "ModularRSSMConfig",
    "TransformerConfig",
    "ViTConfig",
    "KLConfig",
    "ModularRSSMWorldModel",
    "ModularRSSMImagination",
    "resolve_components",
    "to_world_model",
    "build_model",
]


def build_model(
    config: ModularRSSMConfig, observation_space: gym.Space, action_space: gym.Space
) -> ModularRSSMWorldModel:
    """Registry build function."""
    return ModularRSSMWorldModel(config, observation_space, action_space)


def _trainer_hint(preset: str) -> dict[str, Any]:
    """TrainerConfig suggestions for ``wmenv train modular-rssm``."""
    if preset in ("debug", "tiny"):
        return {"seq_len": 16, "batch_size": 8}
    return {"seq_len": 32, "batch_size": 16}


register_model(
    ModelSpec(
        "modular-rssm", ModularRSSMConfig, build_model, family="modular-rssm", aliases=("modular_rssm", "mrssm"),
        description="Modular RSSM: conv/mlp/vit encoder x gru/lstm/transformer backbone x conv/mlp decoder",
        default_preset="tiny", to_world_model=to_world_model, policy=make_policy, trainer_defaults=_trainer_hint,
    ),
    replace=True,
)
