"""MLP world model: the smallest complete family (deterministic, vector observations, does not act).

Registered model ``mlp-wm`` (family ``"mlp"``, alias ``"mlp"``). Example::

    wmenv train mlp-wm --env CartPole-v1 --preset tiny --steps 500

The walk-through of this folder is ``docs/adding_a_family.md``.
"""

from __future__ import annotations

from wmenv.models.mlp.adapter import MLPImagination, to_world_model
from wmenv.models.mlp.config import MLPWorldModelConfig
from wmenv.models.mlp.model import MLPWorldModel
from wmenv.registry import ModelSpec, register_model

__all__ = ["MLPWorldModelConfig", "MLPWorldModel", "MLPImagination", "to_world_model"]

register_model(
    ModelSpec(
        "mlp-wm", MLPWorldModelConfig, MLPWorldModel, family="mlp", aliases=("mlp",),
        description="deterministic MLP world model: next observation (residual), reward, termination",
        to_world_model=to_world_model,
        trainer_defaults=lambda preset: {"seq_len": 8, "batch_size": 16 if preset in ("debug", "tiny") else 64},
        envs=(), observations=("vector",),
    )
)
