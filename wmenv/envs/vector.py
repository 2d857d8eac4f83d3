"""``WorldModelVectorEnv``: ``N`` imagined envs as a ``gymnasium.vector.VectorEnv``, one forward pass."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from wmenv.core.errors import InvalidArgumentError
from wmenv.core.imagination import check_options, check_seed
from wmenv.core.protocol import StartStates
from wmenv.core.specs import spec_to_space
from wmenv.envs.boundary import (
    RENDER_FPS,
    RENDER_MODES,
    FrameRenderer,
    build_core,
    check_render_mode,
    index_obs,
    to_numpy,
)

__all__ = ["WorldModelVectorEnv"]

_MODES = {
    "next_step": AutoresetMode.NEXT_STEP, "nextstep": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP, "samestep": AutoresetMode.SAME_STEP,
}


class WorldModelVectorEnv(gym.vector.VectorEnv):
    """A batch of imagined environments stepped with one model call per step.

    Autoreset follows Gymnasium's modes, declared in ``metadata["autoreset_mode"]``:

    * ``"next_step"`` (default, as ``SyncVectorEnv``): a member that ended on step ``t``
      is reset on step ``t+1``, which returns its first observation, reward 0 and no
      termination (its action is ignored).
    * ``"same_step"``: finished members are reset within the same step; their last
      observation is in ``infos["final_obs"]`` (object array, ``None`` elsewhere) with the
      mask ``infos["_final_obs"]``.

    Args:
        model: a ``wmenv.core.WorldModel``.
        start_states: start-state source (real data).
        num_envs: number of imagined envs ``N``.
        max_episode_steps: imagination horizon.
        autoreset_mode: ``"next_step"`` or ``"same_step"`` (or an ``AutoresetMode``).
        seed: seed for the first reset without an explicit seed.
        device: torch device of the core (default: the model's).
        render_mode: ``None`` or ``"rgb_array"``: ``render()`` then returns a tuple of ``N``
            ``(H, W, 3)`` uint8 frames (see :mod:`wmenv.envs.boundary`).
    """

    metadata: dict[str, Any] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS,
    }

    def __init__(
        self,
        model: Any,
        start_states: StartStates,
        num_envs: int = 16,
        *,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        seed: int | None = None,
        device: torch.device | str | None = None,
        render_mode: str | None = None,
    ) -> None:
        render_mode = check_render_mode(render_mode, type(self).__name__)
        seed = check_seed(seed)
        self.core = build_core(model, start_states, num_envs, max_episode_steps=max_episode_steps, device=device)
        num_envs = self.core.num_envs
        mode = _MODES.get(str(autoreset_mode).lower().replace("-", "_")) if not isinstance(
            autoreset_mode, AutoresetMode) else autoreset_mode
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise InvalidArgumentError(
                f"autoreset_mode must be 'next_step' or 'same_step' (or AutoresetMode.NEXT_STEP / SAME_STEP), "
                f"got {autoreset_mode!r}"
            )
        self.autoreset_mode = mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.num_envs = num_envs
        self.single_observation_space = spec_to_space(self.core.observation_spec)
        self.single_action_space = spec_to_space(self.core.action_spec)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self._renderer = FrameRenderer(self.core)
        self._initial_seed = seed
        self._autoreset = np.zeros(num_envs, dtype=bool)  # next-step mode: members to reset on the next step
        self._any_autoreset = False

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset all members (or ``options["reset_mask"]``) from real start states.

        A list of seeds is accepted for compatibility: one generator drives the batch, so the
        list as a whole seeds it (same list → same trajectories).

        Raises:
            InvalidArgumentError: a seed that is not ``None`` or an integer ``>= 0``, ``options``
                that is not a dict or ``None``, or a ``reset_mask`` that is not ``N`` bools.
        """
        if isinstance(seed, list | tuple):
            seeds = [check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]
            seed = None if all(s is None for s in seeds) else hash(tuple(-1 if s is None else s for s in seeds)) & 0x7FFFFFFF
        seed = check_seed(seed)
        if seed is None and self._initial_seed is not None:
            seed, self._initial_seed = self._initial_seed, None
        check_options(options)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is not None:
            mask = self.core.check_mask(mask, "options['reset_mask']")
            obs = self.core.reset(mask, seed=seed, options=options)
            self._autoreset = self._autoreset & ~mask.cpu().numpy()
        else:
            obs = self.core.reset(seed=seed, options=options)
            self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._any_autoreset = bool(self._autoreset.any())
        return to_numpy(obs), {}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every member in one forward pass."""
        infos: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            mask = self._autoreset if self._any_autoreset else None
            out = self.core.step(actions, reset_mask=None if mask is None else torch.from_numpy(mask))
            obs = to_numpy(out.observation)
            terminated, truncated = out.terminated.cpu().numpy(), out.truncated.cpu().numpy()
            self._autoreset = terminated | truncated
            self._any_autoreset = np.count_nonzero(self._autoreset) > 0
        else:
            out = self.core.step(actions, autoreset="same_step")
            obs = to_numpy(out.observation)
            terminated, truncated = out.terminated.cpu().numpy(), out.truncated.cpu().numpy()
            if out.reset_mask is not None:
                mask = out.reset_mask.cpu().numpy()
                final = to_numpy(out.final_observation)
                final_obs = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(mask):  # only the members that finished
                    final_obs[i] = index_obs(final, int(i))
                infos["final_obs"] = final_obs
                infos["_final_obs"] = mask
                infos["final_info"] = {}
                infos["_final_info"] = mask
        return obs, out.reward.cpu().numpy().astype(np.float64), terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One ``(H, W, 3)`` uint8 frame per member with ``render_mode="rgb_array"`` (else ``None``)."""
        if self.render_mode is None:
            return None
        return tuple(self._renderer.frames())

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to close: no subprocesses, one model."""
