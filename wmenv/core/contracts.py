"""What a family's pieces must offer, as small Protocols (the typed side of ``wmenv.registry.ModelSpec``).

- :class:`TrainableModel`: what :class:`~wmenv.train.trainer.Trainer` trains (``loss(batch)``).
- :class:`ActingModel`: a model with a policy of its own in the real env (``ModelSpec.policy``).
- :class:`ImaginingModel`: the :class:`~wmenv.core.protocol.WorldModel` protocol plus the optional
  attributes the faces and :func:`wmenv.open_run` read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from tensordict import TensorDictBase

__all__ = ["TrainableModel", "ActingModel", "BatchPolicy", "ImaginingModel"]


@runtime_checkable
class TrainableModel(Protocol):
    """``loss(batch)`` over replay sequences ``[B, T]``: a TensorDict (or mapping) of scalars; keys starting
    with ``loss_`` are summed for one backward pass, the others are logged. Optional:
    ``optim_groups() -> dict[str, dict]`` and ``after_update(step)``."""

    def loss(self, batch: TensorDictBase) -> TensorDictBase | Mapping[str, torch.Tensor]: ...


@runtime_checkable
class BatchPolicy(Protocol):
    """``policy(obs (N, ...) NumPy) -> actions (N, ...) NumPy``; may have ``reset(mask=None)``."""

    def __call__(self, observation: Any) -> Any: ...


@runtime_checkable
class ActingModel(Protocol):
    """A trained model that acts in the real env (Dreamer's actor, PlaNet's planner)."""

    def make_policy(self, explore: bool = False, seed: int | None = None) -> BatchPolicy: ...


@runtime_checkable
class ImaginingModel(Protocol):
    """A world model the faces step (see :class:`wmenv.core.protocol.WorldModel` for the semantics).

    Optional attributes read when present: ``device`` (where inputs are put; default CPU) and
    ``context_length`` (real steps burned in at each reset; :meth:`wmenv.runs.Run.start_states`
    defaults to it, else 8; families that start from one observation set 1).
    """

    observation_spec: Any
    action_spec: Any

    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase: ...

    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase: ...
