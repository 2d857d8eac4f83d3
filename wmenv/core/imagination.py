"""The one batched imagination core every environment face is a thin layer over.

:class:`ImaginationCore` holds a batch of ``N`` model states, steps all of them with a single
model call, checks actions and model outputs, projects observations into the declared space,
truncates at the imagination horizon and resets finished members individually from a
:class:`~wmenv.core.protocol.StartStates` source. It never loops over members in Python.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase, is_tensor_collection
from torchrl.data import Binary, Bounded, Composite, MultiCategorical, TensorSpec

from wmenv.core.errors import (
    ArgumentTypeError,
    InvalidActionError,
    InvalidArgumentError,
    ModelOutputError,
    ResetNeededError,
    WMEnvError,
)
from wmenv.core.protocol import StartStates, WorldModel
from wmenv.core.specs import is_discrete, multi_nvec, numpy_dtype

__all__ = [
    "ImaginationCore", "ImaginedStep", "as_array", "check_count", "check_options", "check_seed", "torch_seed",
]

Obs = torch.Tensor | TensorDictBase

# Same-size unsigned view of each signed integer dtype (native byte order).
_UNSIGNED = {np.dtype(f"i{k}"): np.dtype(f"u{k}") for k in (1, 2, 4, 8)}

# Values NumPy turns into an array without walking an unknown object's sequence protocol.
_SCALARS = (bool, int, float, complex, np.generic)
# torch.Generator.manual_seed takes seeds below 2**64; bigger ones are folded (see torch_seed).
_TORCH_SEED_LIMIT = 2**64


def _show(value: Any, limit: int = 60) -> str:
    """A short ``repr`` of a user value for error messages (never the whole of a big object)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_array(
    value: Any, what: str, expected: str, error: type[WMEnvError] = InvalidActionError
) -> np.ndarray:
    """``value`` as a NumPy array, refusing what NumPy cannot safely convert.

    ``np.asarray`` walks the sequence protocol of any object it does not know, which never ends
    for objects whose ``__getitem__`` always succeeds (a TensorDict's ``NonTensorData`` grows
    memory until the machine runs out). Only arrays, scalars, lists/tuples and objects exporting
    an array interface are converted; anything else raises ``error`` naming ``what``.
    """
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, _SCALARS):
        return np.asarray(value)
    if is_tensor_collection(value):
        raise error(f"{what} must be {expected}, got {type(value).__name__} (a TensorDict/tensorclass): {_show(value)}")
    if isinstance(value, list | tuple) or any(
        hasattr(value, a) for a in ("__array__", "__array_interface__", "__array_struct__")
    ):
        try:
            return np.asarray(value)
        except Exception as err:  # noqa: BLE001 - ragged lists, objects whose conversion fails
            raise error(f"{what} must be {expected}, got {type(value).__name__} that NumPy cannot convert: {err}") from err
    raise error(f"{what} must be {expected}, got {type(value).__name__}: {_show(value)}")


def _is_int(value: Any) -> bool:
    """An integer that is not a bool (NumPy and 0-d torch integers count)."""
    if isinstance(value, bool | np.bool_):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def check_count(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """A positive integer argument (``num_envs``, ``max_episode_steps``) as an ``int``.

    Raises:
        ArgumentTypeError: not an integer (floats such as ``2.5``, strings, bools).
        InvalidArgumentError: ``< 1``.
    """
    if value is None and allow_none:
        return None
    expected = "a positive int" + (" or None" if allow_none else "")
    if not _is_int(value):
        raise ArgumentTypeError(f"{name} must be {expected}, got {type(value).__name__} {_show(value)}")
    value = operator.index(value)
    if value < 1:
        raise InvalidArgumentError(f"{name} must be >= 1 ({expected}), got {value}")
    return value


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """A seed as Gymnasium accepts it: ``None`` or an integer ``>= 0`` (any size).

    Raises:
        ArgumentTypeError: not an integer (``"abc"``, ``1.5``, ``True``).
        InvalidArgumentError: negative, as ``gymnasium.utils.seeding.np_random`` refuses it.
    """
    if seed is None:
        return None
    if not _is_int(seed):
        raise ArgumentTypeError(f"{name} must be a non-negative int or None, got {type(seed).__name__} {_show(seed)}")
    seed = operator.index(seed)
    if seed < 0:
        raise InvalidArgumentError(f"{name} must be >= 0 (as Gymnasium requires), got {seed}")
    return seed


def torch_seed(seed: int) -> int:
    """A non-negative seed in the range ``torch.Generator.manual_seed`` takes.

    Seeds below ``2**64`` are used as they are (so existing seeded runs are unchanged); bigger
    ones, which Gymnasium accepts, are folded deterministically through NumPy's ``SeedSequence``.
    """
    if seed < _TORCH_SEED_LIMIT:
        return seed
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])


def check_options(options: Any, name: str = "options") -> None:
    """``options`` of ``reset`` must be a dict (any mapping) or ``None``."""
    if options is not None and not isinstance(options, Mapping):
        raise ArgumentTypeError(f"{name} must be a dict or None, got {type(options).__name__} {_show(options)}")


@dataclass
class ImaginedStep:
    """One batched transition, all tensors on the core's device.

    Attributes:
        observation: ``(N, *obs_shape)`` (or TensorDict) after any autoreset.
        reward: ``(N,)`` float32.
        terminated: ``(N,)`` bool.
        truncated: ``(N,)`` bool (imagination horizon reached and not terminated).
        final_observation: observation before the autoreset (same-step mode), else ``None``.
        reset_mask: ``(N,)`` bool, members reset during this call, or ``None``.
        info: extras returned by the model (TensorDict ``[N]``) or ``None``.
    """

    observation: Obs
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_observation: Obs | None = None
    reset_mask: torch.Tensor | None = None
    info: TensorDictBase | None = None


def _model_device(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device(getattr(model, "device", "cpu"))


class _Projector:
    """Projects model observations into their declared spec (clamp, round, cast).

    Every call returns a fresh tensor, so callers may hand it out without aliasing model state.
    """

    def __init__(self, spec: TensorSpec, device: torch.device) -> None:
        self.spec = spec
        self.children = (
            {k: _Projector(v, device) for k, v in spec.items()} if isinstance(spec, Composite) else None
        )
        self.dtype = spec.dtype if self.children is None else None
        self.integer = self.dtype is not None and not self.dtype.is_floating_point and self.dtype != torch.bool
        self.low = self.high = None
        if isinstance(spec, Bounded):
            self.low = spec.space.low.to(device)
            self.high = spec.space.high.to(device)
            if self.dtype is not None and self.dtype.is_floating_point:
                self.low, self.high = self.low.to(self.dtype), self.high.to(self.dtype)
            else:
                self.low, self.high = self.low.float(), self.high.float()
        # clamp() arguments: Python scalars when one bound holds for every entry (cheapest), else tensors
        self.bounds: tuple[Any, Any] | None = None
        if self.low is not None:
            lo, hi = self.low.flatten(), self.high.flatten()
            uniform = lo.numel() > 0 and bool((lo == lo[0]).all()) and bool((hi == hi[0]).all())
            self.bounds = (lo[0].item(), hi[0].item()) if uniform else (self.low, self.high)
        self.shape = tuple(spec.shape)

    def fast(self, obs: torch.Tensor) -> torch.Tensor:
        """Projection of a float tensor already known to have the right shape and dtype."""
        return obs.clone() if self.bounds is None else obs.clamp(*self.bounds)

    def float_leaves(self, obs: Obs) -> list[torch.Tensor]:
        """The floating-point tensors of an (already shape-checked) observation."""
        if self.children is not None:
            return [t for k, p in self.children.items() for t in p.float_leaves(obs[k])]
        return [obs] if obs.is_floating_point() else []

    def __call__(self, obs: Obs, n: int, what: str = "observation", check_finite: bool = True) -> Obs:
        if self.children is not None:
            if not isinstance(obs, TensorDictBase):
                raise ModelOutputError(
                    f"{what}: expected a TensorDict with keys {sorted(self.children)} for a composite "
                    f"observation spec, got {type(obs).__name__}"
                )
            missing = set(self.children) - set(obs.keys())
            if missing:
                raise ModelOutputError(f"{what}: missing keys {sorted(missing)}; got {sorted(obs.keys())}")
            return obs.__class__(
                {k: p(obs[k], n, f"{what}[{k!r}]", check_finite) for k, p in self.children.items()}, batch_size=[n]
            )
        if not isinstance(obs, torch.Tensor):
            raise ModelOutputError(
                f"{what}: expected a torch tensor of shape {(n, *self.shape)} and dtype {self.dtype}, "
                f"got {type(obs).__name__}"
            )
        if obs.is_complex():
            raise ModelOutputError(
                f"{what}: expected a real (float, integer or bool) tensor for dtype {self.dtype}, got dtype {obs.dtype}"
            )
        if obs.shape != (n, *self.shape):
            raise ModelOutputError(
                f"{what}: expected shape {(n, *self.shape)} (batch, *spec.shape), got {tuple(obs.shape)}"
            )
        if check_finite and obs.is_floating_point() and not bool(torch.isfinite(obs).all()):
            bad = (~torch.isfinite(obs)).reshape(n, -1).any(-1).nonzero().squeeze(-1).tolist()
            raise ModelOutputError(f"{what}: model returned NaN/inf for batch members {bad[:10]}")
        if self.low is not None:
            if self.integer and obs.is_floating_point():
                obs = obs.round()
            obs = obs.to(self.low.dtype).clamp(*self.bounds)
            return obs.to(self.dtype) if obs.dtype != self.dtype else obs
        return obs.to(self.dtype) if obs.dtype != self.dtype else obs.clone()


class ImaginationCore:
    """A batch of ``num_envs`` imagined environments driven by one world model.

    Args:
        model: any object following :class:`~wmenv.core.protocol.WorldModel`.
        start_states: where episodes start (real data or a callable distribution).
        num_envs: batch size ``N``.
        max_episode_steps: imagination horizon; members reaching it are truncated.
        device: torch device (default: the model's).
        validate_actions: check action shape, dtype, range and NaNs on every step.
    """

    def __init__(
        self,
        model: WorldModel,
        start_states: StartStates,
        num_envs: int = 1,
        *,
        max_episode_steps: int | None = None,
        device: torch.device | str | None = None,
        validate_actions: bool = True,
    ) -> None:
        for attr in ("observation_spec", "action_spec", "initial_state", "step"):
            if not hasattr(model, attr):
                raise ArgumentTypeError(
                    f"world model {type(model).__name__} lacks {attr!r}; a WorldModel needs observation_spec, "
                    "action_spec, initial_state(context, generator=) and step(state, action, generator=). "
                    "For plain callables use WorldModelEnv(model, reset_fn=..., transition_fn=...)."
                )
        num_envs = check_count(num_envs, "num_envs")
        max_episode_steps = check_count(max_episode_steps, "max_episode_steps", allow_none=True)
        if not callable(getattr(start_states, "sample", None)):
            raise ArgumentTypeError(
                f"start_states must have a sample(batch_size, generator=, seed=, options=) method (a "
                f"wmenv.core.StartStates), got {type(start_states).__name__}"
            )
        self.model = model
        self.start_states = start_states
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.observation_spec: TensorSpec = model.observation_spec
        self.action_spec: TensorSpec = model.action_spec
        self.generator = torch.Generator(self.device)
        self.generator.seed()
        self.validate_actions = validate_actions
        self._project = _Projector(self.observation_spec, self.device)
        # The common case (one float tensor) gets an inlined fast path in step().
        self._plain_obs = self._project.children is None and self._project.dtype.is_floating_point
        self._obs_shape = (self.num_envs, *self._project.shape)
        self._action_shape = (self.num_envs, *self.action_spec.shape)
        self._discrete = is_discrete(self.action_spec)
        self._act_low = self._act_high = None
        if self._discrete:
            self._act_high = self._discrete_high(self.action_spec).to(self.device)
        elif isinstance(self.action_spec, Bounded):
            self._act_low = self.action_spec.space.low.to(self.device, self.action_spec.dtype)
            self._act_high = self.action_spec.space.high.to(self.device, self.action_spec.dtype)
        # NumPy copies of the bounds (the Gymnasium / SB3 faces hand the core NumPy actions), and
        # the single upper bound of Discrete / MultiBinary actions as a Python int.
        self._act_low_np = None if self._act_low is None else self._act_low.cpu().numpy()
        self._act_high_np = None if self._act_high is None else self._act_high.cpu().numpy()
        self._on_cpu = self.device.type == "cpu"
        self._act_dtype = torch.int64 if self._discrete else self.action_spec.dtype
        self._act_np_dtype = numpy_dtype(self._act_dtype)
        self._act_high_int = (
            int(self._act_high.max()) if self._discrete and bool((self._act_high == self._act_high.max()).all()) else None
        )
        self._state: TensorDictBase | None = None
        self._obs: Obs | None = None
        # Episode lengths without a per-step tensor op: a Python step counter, and the counter's
        # value when each member's episode started (changes only at resets).
        self._t = 0
        self._start = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._min_start = 0  # earliest start: the horizon test is skipped while it cannot fire
        self._all = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _discrete_high(spec: TensorSpec) -> torch.Tensor:
        if isinstance(spec, Binary):
            return torch.as_tensor(1)
        if isinstance(spec, MultiCategorical):
            return torch.as_tensor(multi_nvec(spec)).reshape(spec.shape) - 1
        return torch.as_tensor(spec.space.n - 1)

    @property
    def observation(self) -> Obs:
        """The current batch of observations (after the last reset or step)."""
        if self._obs is None:
            raise ResetNeededError("no observation yet: call reset() before reading observations")
        return self._obs

    @property
    def elapsed(self) -> torch.Tensor:
        """``(N,)`` steps taken in each member's current episode."""
        return self._t - self._start

    @property
    def state(self) -> TensorDictBase:
        """The current batch of model states."""
        if self._state is None:
            raise ResetNeededError("no state yet: call reset() first")
        return self._state

    def check_action(self, action: Any) -> torch.Tensor:
        """Validate a batch of actions and return it as a tensor on the core's device.

        NumPy input (what the Gymnasium and SB3 faces receive) is checked in NumPy and torch
        input in torch, so a valid action costs a handful of cheap comparisons and one
        conversion; the detailed diagnosis only runs when something is wrong.

        Raises:
            InvalidActionError: wrong shape, dtype or range, or NaN/inf.
        """
        if isinstance(action, torch.Tensor):
            kind = (
                "f" if action.is_floating_point() else "c" if action.is_complex()
                else "b" if action.dtype == torch.bool else "i"
            )
            low, high = self._act_low, self._act_high
        else:
            if type(action) is not np.ndarray:
                action = as_array(action, "action", f"a numeric array of shape {self._action_shape}")
            kind = action.dtype.kind
            if kind not in "iufbc":
                raise InvalidActionError(
                    f"action must be a numeric array of shape {self._action_shape}, got dtype {action.dtype}"
                )
            low, high = self._act_low_np, self._act_high_np
        if not self.validate_actions:
            return self._to_torch(action)
        if tuple(action.shape) != self._action_shape:
            raise InvalidActionError(
                f"expected actions of shape {self._action_shape} (num_envs, *action_shape), got {tuple(action.shape)}"
            )
        if self._discrete:
            if kind not in "iu":
                raise InvalidActionError(
                    f"expected integer actions for a discrete action space, got dtype {action.dtype}"
                )
            if self._act_high_int is not None and isinstance(action, torch.Tensor):  # one bound for all
                lo, hi = torch.aminmax(action)
                ok = lo.item() >= 0 and hi.item() <= self._act_high_int
            elif self._act_high_int is not None and action.size <= 16:  # small batches: Python is cheaper
                flat = action.ravel().tolist()
                ok = min(flat) >= 0 and max(flat) <= self._act_high_int
            elif self._act_high_int is not None and action.dtype in _UNSIGNED:
                # seen as unsigned, negative integers are huge: one reduction checks both bounds
                ok = action.view(_UNSIGNED[action.dtype]).max() <= self._act_high_int
            elif self._act_high_int is not None:  # unsigned, or non-native byte order
                ok = action.min() >= 0 and action.max() <= self._act_high_int
            else:
                ok = bool((action >= 0).all()) and bool((action <= high).all())
            if not ok:
                self._raise_bad_action(action)
            return self._to_torch(action)
        if kind in "bc":
            raise InvalidActionError(f"expected real-valued actions, got dtype {action.dtype}")
        if low is not None:
            if not (bool((action >= low).all()) and bool((action <= high).all())):
                # Out of the exact range (or NaN): clamp float noise at the bounds, refuse the rest.
                action = self._to_torch(action)
                ok = (action >= self._act_low - 1e-5) & (action <= self._act_high + 1e-5)
                if not bool(ok.all()):
                    self._raise_bad_action(action)
                return torch.maximum(torch.minimum(action, self._act_high), self._act_low)
        elif not math.isfinite(float(action.sum())):
            self._raise_bad_action(action)
        return self._to_torch(action)

    def _to_torch(self, action: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The action as the spec's dtype on the core's device; NumPy input is copied, so a
        model that keeps the action never shares memory with the caller's buffer."""
        if isinstance(action, torch.Tensor):
            return action.to(self.device, self._act_dtype)
        t = torch.from_numpy(np.array(action, dtype=self._act_np_dtype))
        return t if self._on_cpu else t.to(self.device)

    def _raise_bad_action(self, action: Any) -> None:
        """Name the first offending member and what was expected."""
        if isinstance(action, np.ndarray):  # torch takes native byte order only
            action = action.astype(action.dtype.newbyteorder("="), copy=False)
        action = torch.as_tensor(action)
        if self._discrete:
            ok = (action >= 0) & (action <= self._act_high.to(action.device))
            expected = f"integers in [0, {self._act_high.tolist()}]"
        elif self._act_low is not None:
            low, high = self._act_low.to(action.device), self._act_high.to(action.device)
            ok = (action >= low - 1e-5) & (action <= high + 1e-5)
            expected = f"finite values in [{self._act_low.tolist()}, {self._act_high.tolist()}]"
        else:
            ok = torch.isfinite(action)
            expected = "finite values"
        bad = (~ok).reshape(self.num_envs, -1).any(-1).nonzero().squeeze(-1)
        i = int(bad[0])
        raise InvalidActionError(
            f"expected actions {expected}; env {i} got {action[i].tolist()} "
            f"({bad.numel()} of {self.num_envs} members out of range or NaN)"
        )

    def _check_output(self, out: Any, n: int, keys: tuple[str, ...], where: str) -> None:
        if not isinstance(out, TensorDictBase | Mapping):
            raise ModelOutputError(f"{where} must return a TensorDict with keys {list(keys)}, got {type(out).__name__}")
        missing = [k for k in keys if k not in out.keys()]
        if missing:
            raise ModelOutputError(f"{where} returned keys {sorted(out.keys())}; missing {missing}")

    # The checks below run only when the cheap test on the hot path (type, shape, dtype) fails.
    def check_mask(self, mask: Any, what: str = "reset_mask") -> torch.Tensor:
        """A ``(N,)`` bool mask on the core's device; ``(N, 1)`` and 0/1 integers are accepted."""
        n = self.num_envs
        if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.shape == (n,):
            return mask.to(self.device)
        expected = f"a bool array of shape ({n},) (one entry per env)"
        m = mask if isinstance(mask, torch.Tensor) else as_array(mask, what, expected, InvalidArgumentError)
        if tuple(m.shape) not in ((n,), (n, 1)):
            raise InvalidArgumentError(f"{what} must be {expected}, got shape {tuple(m.shape)}")
        if m.dtype not in (torch.bool, np.bool_):
            if isinstance(m, np.ndarray) and m.dtype.kind not in "iuf":
                raise InvalidArgumentError(f"{what} must be {expected}, got dtype {m.dtype}")
            m = torch.as_tensor(m) if isinstance(m, np.ndarray) else m
            if m.is_complex() or not bool(((m == 0) | (m == 1)).all()):
                raise InvalidArgumentError(f"{what} must be {expected} (or 0/1 values), got dtype {m.dtype} "
                                           f"with values {_show(m.flatten().tolist())}")
        return torch.as_tensor(m).to(self.device, torch.bool).reshape(n)

    @staticmethod
    def _check_reward(reward: Any, n: int) -> torch.Tensor:
        """The model's reward as a ``(N,)`` float32 tensor, or a ModelOutputError naming what came."""
        if not isinstance(reward, torch.Tensor):
            raise ModelOutputError(
                f"step reward: expected a float tensor of shape ({n},), got {type(reward).__name__} {_show(reward)}"
            )
        if reward.shape != (n,):
            if reward.shape != (n, 1):
                raise ModelOutputError(f"step reward: expected shape ({n},), got {tuple(reward.shape)}")
            reward = reward.squeeze(-1)
        if reward.dtype == torch.bool or reward.is_complex():
            raise ModelOutputError(
                f"step reward: expected a float32 (or other real float/integer) tensor, got dtype {reward.dtype}"
            )
        return reward.to(torch.float32)

    @staticmethod
    def _check_flag(flag: Any, n: int, what: str) -> torch.Tensor:
        """A ``terminated`` / ``truncated`` output as a ``(N,)`` bool tensor.

        Bool tensors pass as they are; integer or float tensors only if every value is 0 or 1
        (a probability such as 0.3 is refused rather than silently read as ``True``).
        """
        if not isinstance(flag, torch.Tensor):
            raise ModelOutputError(
                f"{what}: expected a bool tensor of shape ({n},), got {type(flag).__name__} {_show(flag)}"
            )
        if flag.shape != (n,):
            if flag.shape != (n, 1):
                raise ModelOutputError(f"{what}: expected shape ({n},), got {tuple(flag.shape)}")
            flag = flag.squeeze(-1)
        if flag.dtype == torch.bool:
            return flag
        if flag.is_complex():
            raise ModelOutputError(f"{what}: expected a bool tensor, got dtype {flag.dtype}")
        ok = (flag == 0) | (flag == 1)
        if not bool(ok.all()):
            bad = (~ok).nonzero().squeeze(-1)
            i = int(bad[0])
            raise ModelOutputError(
                f"{what}: expected bool (or 0/1) values, got dtype {flag.dtype} with {flag[i].item()} for batch "
                f"member {i} ({bad.numel()} of {n} members not 0/1); threshold probabilities in the model "
                "(e.g. continue_prob < 0.5)"
            )
        return flag.to(torch.bool)

    # ------------------------------------------------------------------ API
    def seed(self, seed: int | None) -> None:
        """Seed the core's generator (``None`` draws a fresh non-deterministic seed).

        Seeds are what Gymnasium accepts: ``None`` or any integer ``>= 0``; seeds of ``2**64``
        and above are folded into the generator's range deterministically (:func:`torch_seed`).

        Raises:
            ArgumentTypeError: not an integer. InvalidArgumentError: negative.
        """
        seed = check_seed(seed)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(torch_seed(seed))

    def reset(
        self,
        mask: torch.Tensor | None = None,
        *,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Obs:
        """Start new episodes for all members, or for those in ``mask``, from real start states.

        Args:
            mask: ``(N,)`` bool (or 0/1); ``None`` resets every member.
            seed: reseeds the generator first (full reproducibility of what follows); ``None``
                or an integer ``>= 0``.
            options: forwarded to the start-state source; a dict or ``None``.

        Returns:
            The full batch of current observations.

        Raises:
            InvalidArgumentError: a bad ``mask``, ``seed`` or ``options`` (``ArgumentTypeError``
                for a wrong type).
            ModelOutputError: ``initial_state`` returned something other than the protocol says.
        """
        if mask is not None:
            mask = self.check_mask(mask, "reset_mask")
        check_options(options)
        if seed is not None:
            seed = check_seed(seed)
            self.seed(seed)
        full = mask is None or self._state is None
        if full:
            mask = self._all
        k = self.num_envs if full else int(mask.sum())
        if k == 0:
            return self.observation
        full = full or k == self.num_envs  # everyone: no clone-and-scatter (same rows, same order)
        context = self.start_states.sample(k, generator=self.generator, seed=seed, options=options)
        if isinstance(context, TensorDictBase) and context.device != self.device:
            context = context.to(self.device)
        out = self.model.initial_state(context, generator=self.generator)
        self._check_output(out, k, ("state", "observation"), "initial_state")
        obs = self._project(out["observation"], k, "initial_state observation")
        state = out["state"]
        if not isinstance(state, TensorDictBase) or state.batch_size[:1] != (k,):
            got = f"batch size {list(state.batch_size)}" if isinstance(state, TensorDictBase) else type(state).__name__
            raise ModelOutputError(f"initial_state state: expected a TensorDict with batch size [{k}], got {got}")
        if full:
            self._state, self._obs = state, obs
            self._start = torch.full_like(self._start, self._t)
            self._min_start = self._t
        else:
            # Out of place: earlier observations handed out must never change under the caller.
            new_state = self._state.clone()
            new_state[mask] = state
            new_obs = self._obs.clone()
            new_obs[mask] = obs
            self._state, self._obs = new_state, new_obs
            self._start = self._start.masked_fill(mask, self._t)
            self._min_start = int(self._start.min())
        return self._obs

    def step(self, action: Any, *, autoreset: str | None = None, reset_mask: torch.Tensor | None = None) -> ImaginedStep:
        """Step every member with one model call.

        Args:
            action: ``(N, *action_shape)``; validated unless ``validate_actions=False``.
            autoreset: ``"same_step"`` resets finished members right away and reports their
                last observation in ``final_observation``; ``None`` leaves them as they are.
            reset_mask: ``(N,)`` bool of members to reset instead of step (next-step autoreset):
                they emit their reset observation with reward 0 and no termination.

        Returns:
            The batched transition.

        Raises:
            InvalidActionError: a bad action. InvalidArgumentError: a bad ``reset_mask`` or
                ``autoreset``. ModelOutputError: the model's output breaks the protocol (missing
                keys; wrong type, shape or dtype; NaN/inf; ``terminated`` not bool or 0/1).
        """
        if self._state is None:
            raise ResetNeededError("step() called before reset(): call reset() first")
        if reset_mask is not None:
            reset_mask = self.check_mask(reset_mask, "reset_mask")
        elif autoreset is not None and autoreset != "same_step":
            raise InvalidArgumentError(f"autoreset must be 'same_step' or None, got {_show(autoreset)}")
        action = self.check_action(action)
        n = self.num_envs
        out = self.model.step(self._state, action, generator=self.generator)
        try:  # one pass over the entries is cheaper than four TensorDict look-ups
            entries = dict(out.items())
            reward, terminated, raw_obs, state = (
                entries["reward"], entries["terminated"], entries["observation"], entries["state"]
            )
        except (KeyError, TypeError, AttributeError):
            self._check_output(out, n, ("state", "observation", "reward", "terminated"), "step")
            raise
        # Type, shape and dtype in one cheap test each; the full check runs only when it fails.
        if type(reward) is not torch.Tensor or reward.shape != (n,) or reward.dtype != torch.float32:
            reward = self._check_reward(reward, n)
        if type(terminated) is not torch.Tensor or terminated.shape != (n,) or terminated.dtype != torch.bool:
            terminated = self._check_flag(terminated, n, "step terminated")
        # NaN and inf survive a sum: one reduction per tensor checks the whole batch. Only when
        # it fails (or overflows) does the per-member diagnosis below run.
        if (
            self._plain_obs and type(raw_obs) is torch.Tensor and raw_obs.shape == self._obs_shape
            and raw_obs.dtype == self._project.dtype
        ):
            obs = self._project.fast(raw_obs)
            finite = math.isfinite((reward if n == 1 else reward.sum()).item()) and math.isfinite(raw_obs.sum().item())
        else:
            obs = self._project(raw_obs, n, "step observation", check_finite=False)
            finite = all(math.isfinite(t.sum().item()) for t in (reward, *self._project.float_leaves(raw_obs)))
        if not finite:
            if not bool(torch.isfinite(reward).all()):
                bad = (~torch.isfinite(reward)).nonzero().squeeze(-1).tolist()
                raise ModelOutputError(f"step reward: model returned NaN/inf for batch members {bad[:10]}")
            self._project(raw_obs, n, "step observation")  # raises, naming the members
        self._state = state
        self._obs = obs
        self._t += 1
        horizon = self.max_episode_steps
        if horizon is not None and self._t - self._min_start >= horizon:
            truncated = (self._start <= self._t - horizon) & ~terminated
        else:  # no member can have reached the horizon yet
            truncated = torch.zeros(n, dtype=torch.bool, device=self.device)
        info = None
        if len(entries) > 4:  # optional outputs
            if "truncated" in entries:  # a model may end episodes itself (e.g. the callables API)
                truncated = truncated | (self._check_flag(entries["truncated"], n, "step truncated") & ~terminated)
            info = entries.get("info", None)
        result = ImaginedStep(obs, reward, terminated, truncated, info=info)
        if reset_mask is not None:
            if bool(reset_mask.any()):
                result.observation = self.reset(reset_mask)
                result.reward = reward.masked_fill(reset_mask, 0.0)
                result.terminated = terminated & ~reset_mask
                result.truncated = truncated & ~reset_mask
                result.reset_mask = reset_mask
        elif autoreset == "same_step":
            done = terminated | truncated
            if bool(done.any()):
                result.final_observation = obs
                result.observation = self.reset(done)
                result.reset_mask = done
        return result
