"""The one batched imagination core every environment face is a thin layer over.

:class:`ImaginationCore` holds a batch of ``N`` model states, steps all of them with a single
model call, checks actions and model outputs, projects observations into the declared space,
truncates at the imagination horizon and resets finished members individually from a
:class:`~wmenv.core.protocol.StartStates` source. It never loops over members in Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.data import Binary, Bounded, Composite, MultiCategorical, TensorSpec

from wmenv.core.errors import InvalidActionError, ModelOutputError, ResetNeededError
from wmenv.core.protocol import StartStates, WorldModel
from wmenv.core.specs import is_discrete, multi_nvec, numpy_dtype

__all__ = ["ImaginationCore", "ImaginedStep"]

Obs = torch.Tensor | TensorDictBase

# Same-size unsigned view of each signed integer dtype (native byte order).
_UNSIGNED = {np.dtype(f"i{k}"): np.dtype(f"u{k}") for k in (1, 2, 4, 8)}


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
            raise ModelOutputError(f"{what}: expected a tensor, got {type(obs).__name__}")
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
                raise TypeError(
                    f"world model {type(model).__name__} lacks {attr!r}; a WorldModel needs observation_spec, "
                    "action_spec, initial_state(context, generator=) and step(state, action, generator=). "
                    "For plain callables use WorldModelEnv(model, reset_fn=..., transition_fn=...)."
                )
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.model = model
        self.start_states = start_states
        self.num_envs = int(num_envs)
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
            try:
                action = np.asarray(action)
            except (TypeError, ValueError) as err:
                raise InvalidActionError(
                    f"action must be array-like of shape {self._action_shape}, got {type(action).__name__}: {err}"
                ) from err
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

    # ------------------------------------------------------------------ API
    def seed(self, seed: int | None) -> None:
        """Seed the core's generator (``None`` draws a fresh non-deterministic seed)."""
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def reset(
        self,
        mask: torch.Tensor | None = None,
        *,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Obs:
        """Start new episodes for all members, or for those in ``mask``, from real start states.

        Args:
            mask: ``(N,)`` bool; ``None`` resets every member.
            seed: reseeds the generator first (full reproducibility of what follows).
            options: forwarded to the start-state source.

        Returns:
            The full batch of current observations.
        """
        if seed is not None:
            self.seed(seed)
        full = mask is None or self._state is None
        if full:
            mask = self._all
        else:
            mask = torch.as_tensor(mask, dtype=torch.bool, device=self.device).reshape(self.num_envs)
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
        """
        if self._state is None:
            raise ResetNeededError("step() called before reset(): call reset() first")
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
        if reward.shape != (n,):
            if reward.shape == (n, 1):
                reward = reward.squeeze(-1)
            else:
                raise ModelOutputError(f"step reward: expected shape ({n},), got {tuple(reward.shape)}")
        if terminated.shape != (n,):
            if terminated.shape == (n, 1):
                terminated = terminated.squeeze(-1)
            else:
                raise ModelOutputError(f"step terminated: expected shape ({n},), got {tuple(terminated.shape)}")
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
        if reward.dtype != torch.float32:
            reward = reward.to(torch.float32)
        if terminated.dtype != torch.bool:
            terminated = terminated.to(torch.bool)
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
                truncated = truncated | (entries["truncated"].reshape(n).to(torch.bool) & ~terminated)
            info = entries.get("info", None)
        result = ImaginedStep(obs, reward, terminated, truncated, info=info)
        if reset_mask is not None:
            reset_mask = torch.as_tensor(reset_mask, dtype=torch.bool, device=self.device)
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
        elif autoreset is not None:
            raise ValueError(f"autoreset must be 'same_step' or None, got {autoreset!r}")
        return result
