"""Gymnasium registration: ``gym.make("wmenv/WorldModel-v0", ...)`` and ``gym.make_vec(...)``.

Scripts that only call ``gym.make(env_id, **kwargs)`` (CleanRL) can use a world model
unchanged. The entry point takes either a ready ``WorldModel`` (``model=``, ``start_states=``)
or a checkpoint path (``checkpoint=``), which is loaded with its replay data as start states.
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` returns the batched
:class:`~wmenv.envs.vector.WorldModelVectorEnv` (one forward pass, no copies of the model).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

__all__ = ["ENV_ID", "register_envs", "make_world_model_env", "make_world_model_vector_env"]

ENV_ID = "wmenv/WorldModel-v0"


def _resolve(kwargs: dict[str, Any]) -> dict[str, Any]:
    checkpoint = kwargs.pop("checkpoint", None)
    if checkpoint is not None:
        from wmenv.envs.loading import load_imagination

        model, start_states = load_imagination(
            checkpoint,
            observation_mode=kwargs.pop("observation_mode", None),
            context_length=kwargs.pop("context_length", None),
            device=kwargs.pop("device", None),
        )
        kwargs.setdefault("model", model)
        kwargs.setdefault("start_states", start_states)
    if "model" not in kwargs:
        raise TypeError(f"gym.make({ENV_ID!r}) needs model= (a WorldModel) with start_states=, or checkpoint=")
    return kwargs


def make_world_model_env(**kwargs: Any) -> gym.Env:
    """Entry point of ``wmenv/WorldModel-v0`` (a :class:`~wmenv.envs.gymnasium.WorldModelEnv`)."""
    from wmenv.envs.gymnasium import WorldModelEnv

    kwargs = _resolve(dict(kwargs))
    kwargs.pop("render_mode", None) if kwargs.get("render_mode") is None else None
    model = kwargs.pop("model")
    return WorldModelEnv(model, **kwargs)


def make_world_model_vector_env(num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    """Vector entry point of ``wmenv/WorldModel-v0`` (a batched ``WorldModelVectorEnv``)."""
    from wmenv.envs.vector import WorldModelVectorEnv

    kwargs = _resolve(dict(kwargs))
    kwargs.pop("render_mode", None)
    model = kwargs.pop("model")
    return WorldModelVectorEnv(model, num_envs=num_envs, **kwargs)


def register_envs() -> None:
    """Register ``wmenv/WorldModel-v0`` with Gymnasium (idempotent)."""
    if ENV_ID in gym.registry:
        return
    gym.register(
        id=ENV_ID,
        entry_point=make_world_model_env,
        vector_entry_point=make_world_model_vector_env,
        disable_env_checker=True,
        order_enforce=False,
    )
