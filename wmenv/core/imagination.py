"""The one batched imagination core every environment face is a thin layer over.

:class:`ImaginationCore` holds a batch of ``N`` model states, steps all of them with a single
model call, checks actions and model outputs, projects observations into the declared space,
truncates at the imagination horizon and resets finished members individually from a
:class:`~wmenv.core.protocol.StartStates` source. It never loops over members in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.data import Binary, Bounded, Composite, MultiCategorical, TensorSpec

from wmenv.core.errors import InvalidActionError, ModelOutputError, ResetNeededError
from wmenv.core.protocol import StartStates, WorldModel
from wmenv.core.specs import is_discrete, multi_nvec

__all__ = ["ImaginationCore", "ImaginedStep"]

Obs = torch.Tensor | TensorDictBase


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
        self.shape = tuple(spec.shape)

    def __call__(self, obs: Obs, n: int, what: str = "observation") -> Obs:
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
                {k: p(obs[k], n, f"{what}[{k!r}]") for k, p in self.children.items()}, batch_size=[n]
            )
        if not isinstance(obs, torch.Tensor):
            raise ModelOutputError(f"{what}: expected a tensor, got {type(obs).__name__}")
        if obs.shape != (n, *self.shape):
            raise ModelOutputError(
                f"{what}: expected shape {(n, *self.shape)} (batch, *spec.shape), got {tuple(obs.shape)}"
            )
        if obs.is_floating_point() and not bool(torch.isfinite(obs).all()):
            bad = (~torch.isfinite(obs)).reshape(n, -1).any(-1).nonzero().squeeze(-1).tolist()
            raise ModelOutputError(f"{what}: model returned NaN/inf for batch members {bad[:10]}")
        if self.low is not None:
            if self.integer and obs.is_floating_point():
                obs = obs.round()
            obs = torch.maximum(torch.minimum(obs.to(self.low.dtype), self.high), self.low)
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
        self._action_shape = (self.num_envs, *self.action_spec.shape)
        self._discrete = is_discrete(self.action_spec)
        self._act_low = self._act_high = None
        if self._discrete:
            self._act_high = self._discrete_high(self.action_spec).to(self.device)
        elif isinstance(self.action_spec, Bounded):
            self._act_low = self.action_spec.space.low.to(self.device, self.action_spec.dtype)
            self._act_high = self.action_spec.space.high.to(self.device, self.action_spec.dtype)
        self._state: TensorDictBase | None = None
        self._obs: Obs | None = None
        self.elapsed = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._all = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        self._zeros_bool = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

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
    def state(self) -> TensorDictBase:
        """The current batch of model states."""
        if self._state is None:
            raise ResetNeededError("no state yet: call reset() first")
        return self._state

    def check_action(self, action: Any) -> torch.Tensor:
        """Validate a batch of actions and return it as a tensor on the core's device.

        Raises:
            InvalidActionError: wrong shape, dtype or range, or NaN/inf.
        """
        if not isinstance(action, torch.Tensor):
            try:
                action = torch.as_tensor(action)
            except (TypeError, ValueError, RuntimeError) as err:
                raise InvalidActionError(
                    f"action must be array-like of shape {self._action_shape}, got {type(action).__name__}: {err}"
                ) from err
        if not self.validate_actions:
            return action.to(self.device, self.action_spec.dtype)
        if tuple(action.shape) != self._action_shape:
            raise InvalidActionError(
                f"expected actions of shape {self._action_shape} (num_envs, *action_shape), got {tuple(action.shape)}"
            )
        if self._discrete:
            if action.is_floating_point() or action.is_complex() or action.dtype == torch.bool:
                raise InvalidActionError(
                    f"expected integer actions for a discrete action space, got dtype {action.dtype}"
                )
            action = action.to(self.device, torch.int64)
            ok = (action >= 0) & (action <= self._act_high)
        else:
            if action.dtype == torch.bool or action.is_complex():
                raise InvalidActionError(f"expected real-valued actions, got dtype {action.dtype}")
            action = action.to(self.device, self.action_spec.dtype)
            if self._act_low is not None:
                ok = (action >= self._act_low - 1e-5) & (action <= self._act_high + 1e-5)
                action = torch.maximum(torch.minimum(action, self._act_high), self._act_low)
            else:
                ok = torch.isfinite(action)
        if not bool(ok.all()):
            bad = (~ok).reshape(self.num_envs, -1).any(-1).nonzero().squeeze(-1)
            i = int(bad[0])
            if self._discrete:
                expected = f"integers in [0, {self._act_high.tolist()}]"
            elif self._act_low is not None:
                expected = f"finite values in [{self._act_low.tolist()}, {self._act_high.tolist()}]"
            else:
                expected = "finite values"
            raise InvalidActionError(
                f"expected actions {expected}; env {i} got {action[i].tolist()} "
                f"({bad.numel()} of {self.num_envs} members out of range or NaN)"
            )
        return action

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
        context = self.start_states.sample(k, generator=self.generator, seed=seed, options=options)
        if isinstance(context, TensorDictBase):
            context = context.to(self.device)
        out = self.model.initial_state(context, generator=self.generator)
        self._check_output(out, k, ("state", "observation"), "initial_state")
        obs = self._project(out["observation"], k, "initial_state observation")
        state = out["state"]
        if full:
            self._state, self._obs = state, obs
            self.elapsed = torch.zeros_like(self.elapsed)
        else:
            # Out of place: earlier observations handed out must never change under the caller.
            new_state = self._state.clone()
            new_state[mask] = state
            new_obs = self._obs.clone()
            new_obs[mask] = obs
            self._state, self._obs = new_state, new_obs
            self.elapsed = self.elapsed.masked_fill(mask, 0)
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
        self._check_output(out, n, ("state", "observation", "reward", "terminated"), "step")
        reward = out["reward"]
        terminated = out["terminated"]
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
        if not bool(torch.isfinite(reward).all()):
            bad = (~torch.isfinite(reward)).nonzero().squeeze(-1).tolist()
            raise ModelOutputError(f"step reward: model returned NaN/inf for batch members {bad[:10]}")
        reward = reward.to(torch.float32)
        terminated = terminated.to(torch.bool)
        obs = self._project(out["observation"], n, "step observation")
        self._state = out["state"]
        self._obs = obs
        self.elapsed = self.elapsed + 1
        if self.max_episode_steps is not None:
            truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        else:
            truncated = self._zeros_bool
        if "truncated" in out.keys():  # a model may end episodes itself (e.g. the callables API)
            truncated = truncated | (out["truncated"].reshape(n).to(torch.bool) & ~terminated)
        result = ImaginedStep(obs, reward, terminated, truncated, info=out.get("info", None))
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
