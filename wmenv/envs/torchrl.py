"""``WorldModelTorchRLEnv``: the imagination core as a TorchRL ``EnvBase`` with ``batch_size=[N]``.

Built on TorchRL's own ``EnvBase`` (``_reset`` / ``_step`` / ``_set_seed``) so that
``check_env_specs``, ``env.rollout`` and the data collectors work unchanged. TorchRL's
``ModelBasedEnvBase`` expects a ``TensorDictModule`` world model and leaves resets to the
caller; our protocol carries resets from real start states, so ``EnvBase`` fits better.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from wmenv.core.errors import InvalidActionError, MissingActionError
from wmenv.core.imagination import ImaginedStep, check_seed
from wmenv.core.protocol import StartStates
from wmenv.envs.boundary import RENDER_FPS, RENDER_MODES, FrameRenderer, build_core, check_render_mode

__all__ = ["WorldModelTorchRLEnv"]

# TensorDict's validation-free constructor (private; TorchRL's GymLikeEnv uses it the same way).
# Without it (another tensordict version) every step takes the checked constructor.
_UNCHECKED_TD = getattr(TensorDict, "_new_unsafe", None)


class WorldModelTorchRLEnv(EnvBase):
    """``N`` imagined envs as one batched TorchRL environment.

    Observations live under ``"observation"`` (or, for composite observation specs, under
    each sub-key at the root). Partial resets use TorchRL's ``"_reset"`` mask. The action must
    be a tensor under ``"action"``: a missing entry raises :class:`~wmenv.core.errors.MissingActionError`,
    a non-tensor one (strings, ``NonTensorData``) :class:`~wmenv.core.errors.InvalidActionError`.

    Rendering: with ``render_mode="rgb_array"``, ``render()`` returns ``(N, H, W, 3)`` uint8
    frames (NumPy), so ``torchrl.record.PixelRenderTransform`` and ``VideoRecorder`` work.

    Args:
        model: a ``wmenv.core.WorldModel``.
        start_states: start-state source (real data).
        num_envs: batch size ``N``.
        max_episode_steps: imagination horizon.
        seed: seed of the core's generator.
        device: torch device (default: the model's).
        render_mode: ``None`` or ``"rgb_array"``.
    """

    metadata: dict[str, Any] = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS}

    def __init__(
        self,
        model: Any,
        start_states: StartStates,
        num_envs: int = 16,
        *,
        max_episode_steps: int | None = None,
        seed: int | None = None,
        device: torch.device | str | None = None,
        render_mode: str | None = None,
    ) -> None:
        render_mode = check_render_mode(render_mode, type(self).__name__)
        seed = check_seed(seed)
        core = build_core(model, start_states, num_envs, max_episode_steps=max_episode_steps, device=device)
        n = core.num_envs
        super().__init__(device=core.device, batch_size=torch.Size([n]))
        self.core = core
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self._renderer = FrameRenderer(core)
        obs_spec = core.observation_spec
        self._composite_obs = isinstance(obs_spec, Composite)
        if self._composite_obs:
            self.observation_spec = Composite(
                {k: v.expand(n, *v.shape) for k, v in obs_spec.items()}, shape=(n,), device=core.device
            )
        else:
            self.observation_spec = Composite(
                observation=obs_spec.expand(n, *obs_spec.shape).to(core.device), shape=(n,), device=core.device
            )
        self.action_spec = core.action_spec.expand(n, *core.action_spec.shape).to(core.device)
        self.reward_spec = Unbounded(shape=(n, 1), dtype=torch.float32, device=core.device)
        self.done_spec = Composite(
            done=Categorical(2, shape=(n, 1), dtype=torch.bool, device=core.device),
            terminated=Categorical(2, shape=(n, 1), dtype=torch.bool, device=core.device),
            truncated=Categorical(2, shape=(n, 1), dtype=torch.bool, device=core.device),
            shape=(n,),
            device=core.device,
        )
        self._validated = False
        if seed is not None:
            self.set_seed(seed)

    def _obs_td(self, obs: torch.Tensor | TensorDictBase) -> dict[str, Any]:
        if self._composite_obs:
            return dict(obs.items())
        return {"observation": obs}

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys():
            mask = self.core.check_mask(tensordict.get("_reset"), "'_reset'")
            if self.core._state is None:
                mask = None
        obs = self.core.reset(mask)
        n = self.core.num_envs
        false = torch.zeros(n, 1, dtype=torch.bool, device=self.device)
        return TensorDict(
            {**self._obs_td(obs), "done": false, "terminated": false.clone(), "truncated": false.clone()},
            batch_size=self.batch_size,
            device=self.device,
        )

    def _next_td(self, out: ImaginedStep, obs: torch.Tensor | TensorDictBase) -> TensorDictBase:
        terminated = out.terminated.unsqueeze(-1)
        truncated = out.truncated.unsqueeze(-1)
        source = {
            **self._obs_td(obs),
            "reward": out.reward.unsqueeze(-1),
            "done": terminated | truncated,
            "terminated": terminated,
            "truncated": truncated,
        }
        if self._validated:
            # As TorchRL's own GymLikeEnv does: once a checked construction has kept every value
            # as it came (same device, shapes), later steps skip the per-entry validation.
            return _UNCHECKED_TD(source, batch_size=self.batch_size, device=self.device)
        td = TensorDict(source, batch_size=self.batch_size, device=self.device)
        self._validated = _UNCHECKED_TD is not None and all(td.get(k) is v for k, v in source.items())
        return td

    def _action(self, tensordict: TensorDictBase) -> torch.Tensor:
        """The ``"action"`` tensor of an input TensorDict (one type test on the hot path)."""
        action = tensordict.get("action", None)
        if isinstance(action, torch.Tensor):
            return action
        spec = self.core.action_spec
        expected = f"a {spec.dtype} tensor of shape {self.core._action_shape} (num_envs, *action_shape)"
        if "action" not in tensordict.keys():
            keys = sorted(str(k) for k in tensordict.keys(include_nested=True, leaves_only=True))
            raise MissingActionError(
                f"step: the input TensorDict has no 'action' entry; expected 'action': {expected}, got keys {keys}"
            )
        raise InvalidActionError(
            f"action must be {expected}, got {type(action).__name__}"
            + (f" holding {type(action.data).__name__}" if hasattr(action, "data") else "")
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        out = self.core.step(self._action(tensordict))
        return self._next_td(out, out.observation)

    def render(self) -> np.ndarray | None:
        """``(N, H, W, 3)`` uint8 frames of the current observations with ``render_mode="rgb_array"``
        (``None`` otherwise)."""
        if self.render_mode is None:
            return None
        return self._renderer.frames()

    def step_and_maybe_reset(self, tensordict: TensorDictBase) -> tuple[TensorDictBase, TensorDictBase]:
        """TorchRL's step-and-reset with the base class's generic per-step processing skipped.

        As TorchRL's batched envs do (``ParallelEnv``, ``EnvPoolEnv``), this overrides the base
        method for speed: ``_step`` already emits complete, correctly shaped outputs, so the
        step goes straight to ``step_mdp``, and the base class's own ``maybe_reset`` runs only
        when a member finished (so resets keep TorchRL's exact semantics). Inputs that need the
        general machinery (partial ``"_step"``, a preset ``"next"``, another device, hooks,
        type checks) take the base path.
        """
        keys = tensordict.keys()
        if (
            "_step" in keys or "next" in keys or tensordict.device != self.device or self.run_type_checks
            or getattr(self, "_post_step_mdp_hooks", None) is not None or self.__dict__.get("_torchrl_native_autoreset", False)
            or self.__dict__.get("_compiled_step_and_maybe_reset") is not None
        ):
            return super().step_and_maybe_reset(tensordict)
        self._assert_tensordict_shape(tensordict)
        out = self.core.step(self._action(tensordict))
        next_td = self._next_td(out, out.observation)
        tensordict.set("next", next_td)
        tensordict_ = self._step_mdp(tensordict)
        if bool(next_td.get("done").any()):
            tensordict_ = self.maybe_reset(tensordict_)
        return tensordict, tensordict_

    def _step_proc_data(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        # EnvBase reshapes rewards and fills in missing done keys here; ``_step`` already emits
        # ``reward`` as (N, 1) and all three done keys, so only the optional type checks remain.
        if self.run_type_checks:
            return super()._step_proc_data(next_tensordict)
        return next_tensordict

    def _set_seed(self, seed: int | None) -> None:
        self.core.seed(seed)
