"""The contract between a learned world model and the environment faces.

Everything is batched, in torch, with the state carried explicitly and every random draw
taken from an explicit :class:`torch.Generator`, so that ``reset(seed=...)`` makes imagined
trajectories reproducible.

Keys of the TensorDicts that cross the contract (``B`` is the batch of imagined envs):

``initial_state(context) ->``
    ``"state"``        model state, any nested TensorDict with batch size ``[B]``
    ``"observation"``  first observation, a tensor ``(B, *obs_shape)`` or, for composite
                       observation specs, a TensorDict with one entry per sub-spec
``step(state, action) ->``
    ``"state"``        next model state, same structure as the input state
    ``"observation"``  next observation (as above)
    ``"reward"``       ``(B,)`` float
    ``"terminated"``   ``(B,)`` bool, from the model's continue/termination head
    ``"truncated"``    optional ``(B,)`` bool, when the model itself ends an episode early
    ``"info"``         optional TensorDict of ``(B, ...)`` extras (e.g. uncertainty)

Optional, read when present: ``device`` (where the faces put inputs), ``context_length`` (real steps
burned in at each reset; :meth:`wmenv.runs.Run.start_states` defaults to it) and
``render_state(state) -> (B, H, W, 3) uint8`` (how ``render_mode="rgb_array"`` draws a state that is
not an image; see :class:`wmenv.envs.boundary.StateRenderer`). :mod:`wmenv.core.contracts` has the
matching Protocols.

Families with very different state fit the same two calls: an RSSM carries
``{"deter", "stoch"}``, an MDN-RNN ``{"z", "h", "c"}``, IRIS a token context and KV cache,
DIAMOND the last ``L`` frames and actions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import TensorSpec

__all__ = [
    "WorldModel",
    "StartStates",
    "CallableStartStates",
    "TensorDictStartStates",
    "ReplayStartStates",
]


@runtime_checkable
class WorldModel(Protocol):
    """A batched, TensorDict-in / TensorDict-out learned simulator.

    Attributes:
        observation_spec: spec of one observation (unbatched); a ``Composite`` for dict
            observations. The single source of truth; faces convert it to Gymnasium spaces.
        action_spec: spec of one action (unbatched). ``Categorical`` for discrete actions
            (integer index), ``Bounded`` for continuous ones.
    """

    observation_spec: TensorSpec
    action_spec: TensorSpec

    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """Build model state and the first observation from a batch of real context.

        Args:
            context: batch ``[B]`` of real data drawn by a :class:`StartStates` (one observation,
                or a short history ``(B, T, ...)`` of observations and actions).
            generator: the only source of randomness.

        Returns:
            TensorDict ``[B]`` with ``"state"`` and ``"observation"``.
        """
        ...

    def step(
        self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator
    ) -> TensorDictBase:
        """Advance every member of the batch by one step in a single forward pass.

        Args:
            state: model state ``[B]`` as returned by the previous call.
            action: ``(B, *action_shape)``; int64 indices for discrete actions.
            generator: the only source of randomness.

        Returns:
            TensorDict ``[B]`` with ``"state"``, ``"observation"``, ``"reward"`` ``(B,)``,
            ``"terminated"`` ``(B,)`` and optionally ``"info"``.
        """
        ...


class StartStates(Protocol):
    """Where imagined episodes start: real data, never noise by default."""

    def sample(
        self,
        batch_size: int,
        *,
        generator: torch.Generator,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TensorDictBase:
        """Draw ``batch_size`` contexts for :meth:`WorldModel.initial_state`.

        Args:
            batch_size: number of contexts.
            generator: seeded by the env's ``reset(seed=...)``.
            seed: the seed given to ``reset`` if any (for sources that want it verbatim).
            options: the ``options`` given to ``reset``.
        """
        ...


class CallableStartStates:
    """Start states from a callable initial distribution.

    Args:
        fn: ``fn(batch_size, generator) -> TensorDict`` with batch size ``[batch_size]``.
    """

    def __init__(self, fn: Callable[[int, torch.Generator], TensorDictBase]) -> None:
        self.fn = fn

    def sample(
        self,
        batch_size: int,
        *,
        generator: torch.Generator,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TensorDictBase:
        out = self.fn(batch_size, generator)
        if not isinstance(out, TensorDictBase) or out.batch_size[:1] != torch.Size([batch_size]):
            got = type(out).__name__ if not isinstance(out, TensorDictBase) else f"batch {out.batch_size}"
            raise TypeError(
                f"start-state callable must return a TensorDict with batch size [{batch_size}], got {got}"
            )
        return out


class TensorDictStartStates:
    """Start states drawn uniformly from the rows of a TensorDict of real data.

    Args:
        data: TensorDict with batch size ``[N, ...]``; each draw picks rows along dim 0.
            For example ``{"observation": (N, *obs_shape)}`` for single-observation contexts,
            or ``{"observation": (N, T, ...), "action": (N, T, ...)}`` for histories.
    """

    def __init__(self, data: TensorDictBase) -> None:
        if data.batch_size.numel() == 0 or data.batch_size[0] == 0:
            raise ValueError(f"start-state data must hold at least one row, got batch size {data.batch_size}")
        self.data = data

    def __len__(self) -> int:
        return int(self.data.batch_size[0])

    def sample(
        self,
        batch_size: int,
        *,
        generator: torch.Generator,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TensorDictBase:
        idx = torch.randint(len(self), (batch_size,), generator=generator, device=generator.device)
        return self.data[idx.to(self.data.device)]


class ReplayStartStates:
    """Start states drawn as short slices of real episodes stored in a replay buffer.

    Slices never cross an episode boundary: a context of length ``context_length`` ends at a
    uniformly drawn step ``t`` with at least ``context_length - 1`` steps of the same episode
    before it. The buffer's storage is read directly (no sampler state is touched), so drawing
    start states does not disturb training.

    Args:
        storage_td: TensorDict ``[N]`` of consecutive transitions (e.g. ``buffer[:]`` or the
            storage of a ``ReplayBuffer``) with an ``episode`` (int) key and the keys to return.
        context_length: steps of history per context (1 = a single observation).
        keys: keys to gather (default: all keys but ``("next", ...)``).
        end_bias: probability that a start is drawn among the contexts ending within ``end_window``
            steps before a real termination (0: uniform). Imagined episodes then often begin where
            real episodes ended, from real context, so a policy meets the failure states the world
            model has real data on (e.g. CartPole's track edge) instead of rarely reaching them.
        end_window: how many steps before a termination count as "near" it.
    """

    def __init__(
        self,
        storage_td: TensorDictBase,
        context_length: int = 1,
        keys: list[Any] | None = None,
        *,
        end_bias: float = 0.0,
        end_window: int = 20,
    ) -> None:
        if context_length < 1:
            raise ValueError(f"context_length must be >= 1, got {context_length}")
        if not 0.0 <= float(end_bias) <= 1.0 or int(end_window) < 1:
            raise ValueError(f"need 0 <= end_bias <= 1 and end_window >= 1, got {end_bias} and {end_window}")
        if "episode" not in storage_td.keys():
            raise KeyError("ReplayStartStates needs an 'episode' key in the stored transitions")
        self.context_length = context_length
        if keys is not None:
            storage_td = storage_td.select(*keys)
        self.data = storage_td
        ep = storage_td["episode"].reshape(-1)
        n = ep.shape[0]
        # valid end positions: the context_length - 1 previous steps belong to the same episode
        valid = torch.ones(n, dtype=torch.bool)
        valid[: context_length - 1] = False
        for k in range(1, context_length):
            valid[k:] &= ep[k:] == ep[:-k]
        self.valid_ends = valid.nonzero().squeeze(-1)
        if self.valid_ends.numel() == 0:
            raise ValueError(
                f"no episode in the replay data is at least {context_length} steps long; "
                "collect more data or lower context_length"
            )
        self.end_bias = float(end_bias)
        self.near_ends = self.valid_ends[:0]
        if self.end_bias > 0 and "terminated" in storage_td.keys():
            term = storage_td["terminated"].reshape(-1).bool()
            near = torch.zeros(n, dtype=torch.bool)
            for k in range(1, int(end_window) + 1):  # the k-th step before a termination, same episode
                near[:-k] |= term[k:] & (ep[:-k] == ep[k:])
            self.near_ends = self.valid_ends[near[self.valid_ends]]

    def sample(
        self,
        batch_size: int,
        *,
        generator: torch.Generator,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TensorDictBase:
        pick = torch.randint(
            self.valid_ends.numel(), (batch_size,), generator=generator, device=generator.device
        ).cpu()
        ends = self.valid_ends[pick]
        if self.end_bias > 0 and self.near_ends.numel():
            near = torch.rand(batch_size, generator=generator, device=generator.device).cpu() < self.end_bias
            alt = torch.randint(self.near_ends.numel(), (batch_size,), generator=generator,
                                device=generator.device).cpu()
            ends = torch.where(near, self.near_ends[alt], ends)
        if self.context_length == 1:
            return self.data[ends]
        offsets = torch.arange(-self.context_length + 1, 1)
        idx = ends[:, None] + offsets[None, :]  # (B, T)
        out = self.data[idx.reshape(-1)]
        return out.reshape(batch_size, self.context_length)


def as_tensordict(mapping: Mapping[str, Any] | TensorDictBase, batch_size: list[int]) -> TensorDictBase:
    """Wrap a mapping of tensors as a TensorDict with the given batch size."""
    if isinstance(mapping, TensorDictBase):
        return mapping
    return TensorDict(dict(mapping), batch_size=batch_size)
