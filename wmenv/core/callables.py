"""The seed's callables API as an adapter onto the protocol.

Users with their own model need not inherit from anything: they give a ``reset_fn`` and a
``transition_fn`` and this adapter turns them into a :class:`~wmenv.core.protocol.WorldModel`
(and its own :class:`~wmenv.core.protocol.StartStates`) with a batch of one.

``reset_fn(model, seed=None, options=None) -> {"state", "observation"}``
``transition_fn(model, state, action) -> {"state", "observation", "reward", "terminated"}``
(optionally ``"truncated"`` and ``"info"``). ``action_transform_fn(model, action)`` maps the
library's action (a Python int for ``Discrete``, a NumPy array otherwise) to the model's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase

from wmenv.core.errors import ArgumentTypeError, InvalidArgumentError, ModelOutputError
from wmenv.core.imagination import as_array
from wmenv.core.specs import space_to_spec, torch_dtype

__all__ = ["CallableWorldModel"]

_RESET_KEYS = ("state", "observation")
_STEP_KEYS = ("state", "observation", "reward", "terminated")


def _as_batched(value: Any, space: gym.Space, what: str) -> torch.Tensor | TensorDictBase:
    """Turn one observation (NumPy, torch, scalar or dict) into a batch of one in torch."""
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(value, Mapping):
            raise ModelOutputError(f"{what}: expected a dict with keys {list(space.spaces)}, got {type(value).__name__}")
        return TensorDict({k: _as_batched(value[k], s, f"{what}[{k!r}]") for k, s in space.spaces.items()},
                          batch_size=[1])
    expected = f"a numeric array of shape {tuple(space.shape)} for {space}"
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.is_complex():
            raise ModelOutputError(f"{what}: expected {expected}, got a tensor of dtype {t.dtype}")
    else:
        arr = as_array(value, what, expected, ModelOutputError)
        if arr.dtype.kind not in "biuf":
            raise ModelOutputError(f"{what}: expected {expected}, got {type(value).__name__} of dtype {arr.dtype}")
        t = torch.as_tensor(arr.astype(arr.dtype.newbyteorder("="), copy=False))
    if space.dtype is not None:
        t = t.to(torch_dtype(space.dtype))
    if tuple(t.shape) != tuple(space.shape):
        if t.numel() == int(np.prod(space.shape)) and t.dim() == len(space.shape) + 1 and t.shape[0] == 1:
            t = t[0]
        else:
            raise ModelOutputError(f"{what}: expected shape {tuple(space.shape)}, got {tuple(t.shape)}")
    return t.unsqueeze(0)


def _scalar(value: Any, what: str, flag: bool) -> torch.Tensor:
    """One reward (``flag=False``) or ``terminated`` / ``truncated`` flag (``flag=True``) as a
    ``(1,)`` float32 / bool tensor.

    Rewards must be real numbers; flags bools, or numbers that are exactly 0 or 1: neither a
    string (``"no"`` is truthy) nor a probability (``0.3``) is silently read as ``True``.
    """
    expected = "a bool (or 0/1)" if flag else "a real number (float or int)"
    if isinstance(value, str | bytes) or value is None:
        raise ModelOutputError(f"{what}: expected {expected}, got {type(value).__name__} {value!r}"[:300])
    arr = as_array(value, what, expected, ModelOutputError)
    if arr.size != 1 or arr.dtype.kind not in ("biuf" if flag else "iuf"):
        got = f"an array of shape {arr.shape}" if arr.size != 1 else f"dtype {arr.dtype}"
        raise ModelOutputError(f"{what}: expected {expected}, got {type(value).__name__} ({got})")
    x = arr.reshape(1)
    if not flag:
        return torch.from_numpy(x.astype(np.float32))
    if x.dtype.kind != "b" and x[0] not in (0, 1):
        raise ModelOutputError(f"{what}: expected {expected}, got {x[0].item()!r}; return a bool (e.g. prob > 0.5)")
    return torch.from_numpy(x.astype(bool))


def _info(out: Mapping[str, Any], fn_name: str) -> dict[str, Any]:
    info = out.get("info")
    if info is not None and not isinstance(info, Mapping):
        raise ModelOutputError(f"{fn_name} info: expected a dict (or no 'info' key), got {type(info).__name__}")
    return dict(info or {})


def _check_keys(out: Any, keys: tuple[str, ...], fn_name: str) -> Mapping[str, Any]:
    if not isinstance(out, Mapping):
        raise ModelOutputError(
            f"{fn_name} must return a dict with keys {list(keys)}, got {type(out).__name__}"
        )
    missing = [k for k in keys if k not in out]
    if missing:
        raise ModelOutputError(f"{fn_name} must return a dict with keys {list(keys)}; got {sorted(out)} "
                               f"(missing {missing})")
    return out


class CallableWorldModel:
    """Adapter for ``reset_fn`` / ``transition_fn`` callables (a batch of one).

    Args:
        model: the user's model object, passed back to the callables untouched.
        observation_space: Gymnasium space of one observation.
        action_space: Gymnasium space of one action.
        reset_fn: ``reset_fn(model, seed=None, options=None) -> {"state", "observation"}``.
        transition_fn: ``transition_fn(model, state, action) -> {"state", "observation",
            "reward", "terminated"}`` (optional ``"truncated"``, ``"info"``).
        action_transform_fn: ``action_transform_fn(model, action) -> model_action``.
    """

    def __init__(
        self,
        model: Any,
        observation_space: gym.Space,
        action_space: gym.Space,
        reset_fn: Callable[..., Mapping[str, Any]],
        transition_fn: Callable[..., Mapping[str, Any]],
        action_transform_fn: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        if not isinstance(observation_space, gym.Space) or not isinstance(action_space, gym.Space):
            raise ArgumentTypeError(
                "the callables API needs observation_space= and action_space= as gymnasium spaces, got "
                f"{type(observation_space).__name__} and {type(action_space).__name__}"
            )
        for name, fn in (("reset_fn", reset_fn), ("transition_fn", transition_fn),
                         ("action_transform_fn", action_transform_fn)):
            if not callable(fn) and not (fn is None and name == "action_transform_fn"):
                raise ArgumentTypeError(f"{name} must be a callable, got {type(fn).__name__}")
        self.model = model
        self.observation_space = observation_space
        self.action_space = action_space
        self.observation_spec = space_to_spec(observation_space)
        self.action_spec = space_to_spec(action_space)
        self.reset_fn = reset_fn
        self.transition_fn = transition_fn
        self.action_transform_fn = action_transform_fn
        self._user_state: Any = None
        self._pending: tuple[int | None, Mapping[str, Any] | None] = (None, None)
        self.last_info: dict[str, Any] = {}

    # StartStates: remember seed/options for the reset_fn, which is the initial distribution.
    def sample(
        self,
        batch_size: int,
        *,
        generator: torch.Generator,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TensorDictBase:
        if batch_size != 1:
            raise InvalidArgumentError(
                f"the callables API steps one env at a time (got a batch of {batch_size}); "
                "implement the batched WorldModel protocol to use vector faces"
            )
        self._pending = (seed, options)
        return TensorDict({}, batch_size=[1])

    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        seed, options = self._pending
        self._pending = (None, None)
        out = _check_keys(self.reset_fn(self.model, seed=seed, options=options), _RESET_KEYS, "reset_fn")
        self._user_state = out["state"]
        self.last_info = _info(out, "reset_fn")
        obs = _as_batched(out["observation"], self.observation_space, "reset_fn observation")
        return TensorDict({"state": TensorDict({}, [1]), "observation": obs}, batch_size=[1])

    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        a = action[0].cpu()
        user_action: Any = int(a) if isinstance(self.action_space, gym.spaces.Discrete) else a.numpy()
        if self.action_transform_fn is not None:
            user_action = self.action_transform_fn(self.model, user_action)
        out = _check_keys(
            self.transition_fn(self.model, self._user_state, user_action), _STEP_KEYS, "transition_fn"
        )
        self._user_state = out["state"]
        self.last_info = _info(out, "transition_fn")
        obs = _as_batched(out["observation"], self.observation_space, "transition_fn observation")
        reward = _scalar(out["reward"], "transition_fn reward", flag=False)
        terminated = _scalar(out["terminated"], "transition_fn terminated", flag=True)
        result = {"state": TensorDict({}, [1]), "observation": obs, "reward": reward, "terminated": terminated}
        if "truncated" in out:
            result["truncated"] = _scalar(out["truncated"], "transition_fn truncated", flag=True)
        return TensorDict(result, batch_size=[1])
