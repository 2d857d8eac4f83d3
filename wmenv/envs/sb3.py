"""``WorldModelSB3VecEnv``: ``N`` imagined envs as a Stable-Baselines3 ``VecEnv``, one forward pass."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from wmenv.core.imagination import check_options, check_seed
from wmenv.core.protocol import StartStates
from wmenv.core.specs import spec_to_space
from wmenv.envs.boundary import RENDER_FPS, FrameRenderer, build_core, check_render_mode, index_obs, to_numpy

__all__ = ["WorldModelSB3VecEnv"]


class WorldModelSB3VecEnv(VecEnv):
    """A Stable-Baselines3 ``VecEnv`` over the batched imagination core.

    Follows SB3's conventions: members auto-reset within the step that ends them; their last
    observation is in ``infos[i]["terminal_observation"]`` and an imagination-horizon cut is
    flagged by ``infos[i]["TimeLimit.truncated"]`` so on-policy algorithms bootstrap from it.

    Args:
        model: a ``wmenv.core.WorldModel``.
        start_states: start-state source (real data).
        num_envs: number of imagined envs ``N``.
        max_episode_steps: imagination horizon.
        seed: seed of the core's generator.
        device: torch device of the core (default: the model's).
        render_mode: ``None`` or ``"rgb_array"``: ``get_images()`` then returns one ``(H, W, 3)``
            uint8 frame per member (``render()`` tiles them, ``VecVideoRecorder`` records them).
    """

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
        self.render_mode = check_render_mode(render_mode, type(self).__name__)
        seed = check_seed(seed)
        self.core = build_core(model, start_states, num_envs, max_episode_steps=max_episode_steps, device=device)
        super().__init__(
            self.core.num_envs, spec_to_space(self.core.observation_spec), spec_to_space(self.core.action_spec)
        )
        self.metadata["render_fps"] = RENDER_FPS  # VecEnv.__init__ set the render modes
        self._renderer = FrameRenderer(self.core)
        self.max_episode_steps = max_episode_steps
        self._actions: Any = None
        if seed is not None:
            self.seed(seed)

    def reset(self) -> Any:
        """Reset every member; uses the seed given to :meth:`seed` once, as SB3 does."""
        seed = self._seeds[0]
        obs = self.core.reset(seed=seed, options=self._options[0] or None)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return to_numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions)")
        out = self.core.step(self._actions, autoreset="same_step")
        self._actions = None
        obs = to_numpy(out.observation)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if out.reset_mask is None:  # nobody finished
            return obs, out.reward.cpu().numpy(), np.zeros(self.num_envs, dtype=bool), infos
        dones = out.reset_mask.cpu().numpy()
        final = to_numpy(out.final_observation)
        truncated = out.truncated.cpu().numpy()
        for i in np.flatnonzero(dones):  # only the members that finished
            infos[i]["terminal_observation"] = index_obs(final, int(i))
            infos[i]["TimeLimit.truncated"] = bool(truncated[i])
        return obs, out.reward.cpu().numpy(), dones, infos

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the core's generator at the next reset (one generator drives all members).

        Raises:
            InvalidArgumentError: ``seed`` is not ``None`` or an integer ``>= 0``.
        """
        seed = check_seed(seed)
        if seed is None:
            return [None] * self.num_envs
        self._seeds = [seed + i for i in range(self.num_envs)]
        return self._seeds

    def set_options(self, options: list[dict] | dict | None = None) -> None:
        """Options for the next reset (SB3 API); each must be a dict or ``None``.

        Raises:
            ArgumentTypeError: an option set that is not a dict.
        """
        if isinstance(options, list | tuple):
            for i, o in enumerate(options):
                check_options(o, f"options[{i}]")
        else:
            check_options(options)
            options = None if options is None else dict(options)
        super().set_options(options)

    def close(self) -> None:
        """Nothing to close: no subprocesses, one model."""

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One ``(H, W, 3)`` uint8 frame per member with ``render_mode="rgb_array"``; otherwise
        ``[None] * num_envs`` with a warning, as SB3's ``DummyVecEnv`` does."""
        if self.render_mode != "rgb_array":
            warnings.warn(
                f"get_images() needs render_mode='rgb_array' in WorldModelSB3VecEnv(...), got {self.render_mode!r}; "
                "returning no images",
                stacklevel=2,
            )
            return [None] * self.num_envs
        return list(self._renderer.frames())

    # The VecEnv attribute API: all members share one core, so attributes are the face's own.
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]
