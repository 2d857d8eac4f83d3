"""Raw MuJoCo backend: any MJCF file as a Gymnasium env, on Gymnasium's ``MujocoEnv``.

``make_env("path/to/model.xml")`` gives an env whose

- observation is ``concat(qpos, qvel)``, float64 (as in Gymnasium's MuJoCo tasks);
- action is ``data.ctrl``, a float32 ``Box`` over the actuators' ``ctrlrange`` (every actuator
  must be ctrl-limited);
- reward is ``reward_fn(model, data, action)`` if given, else ``-ctrl_cost_weight * sum(action**2)``
  (``ctrl_cost_weight`` defaults to 0, so the default reward is 0: a raw model has no task);
- ``terminated`` is ``termination_fn(model, data)`` if given, else always False; ``truncated``
  comes from Gymnasium's ``TimeLimit`` after ``max_episode_steps``;
- reset adds uniform noise in ``[-reset_noise_scale, reset_noise_scale]`` to ``qpos`` and Gaussian
  noise of that scale to ``qvel``, drawn from the env's seeded ``np_random``.

The env is built through ``gymnasium.make`` on an unregistered ``EnvSpec``, so it gets the usual
``TimeLimit``, ``OrderEnforcing`` and ``PassiveEnvChecker`` wrappers and a real ``env.spec``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.envs.registration import EnvSpec
from gymnasium.spaces import Box
from gymnasium.wrappers import AddRenderObservation

from wmenv.core.errors import ConfigError, InvalidActionError, UnknownEnvError, UnsupportedSpaceError
from wmenv.envs.backends.options import require_int
from wmenv.envs.backends.protocol import attach_protocol, jsonable
from wmenv.envs.backends.registry import EnvBackendSpec

NAME = "mujoco"
DEFAULT_IMAGE_SIZE = 64
_UNSAFE_ID_CHARS = re.compile(r"[^\w.]")
RewardFn = Callable[[Any, Any, np.ndarray], float]
"""``reward_fn(model: mujoco.MjModel, data: mujoco.MjData, action) -> float``, after the step."""
TerminationFn = Callable[[Any, Any], bool]
"""``termination_fn(model: mujoco.MjModel, data: mujoco.MjData) -> bool``, after the step."""


class MJCFEnv(MujocoEnv):
    """A Gymnasium env over an arbitrary MJCF model (see the module docstring for the contract)."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"]}  # render_fps: per instance

    def __init__(
        self,
        model_path: str,
        frame_skip: int = 1,
        reward_fn: RewardFn | None = None,
        ctrl_cost_weight: float = 0.0,
        termination_fn: TerminationFn | None = None,
        reset_noise_scale: float = 0.01,
        render_mode: str | None = None,
        image_size: int = DEFAULT_IMAGE_SIZE,
        camera_id: int | None = None,
    ) -> None:
        """Loads the model.

        Args:
            model_path: Absolute path of the MJCF file.
            frame_skip: Physics steps per ``step()``; ``dt = model.opt.timestep * frame_skip``.
            reward_fn: Optional reward ``(model, data, action) -> float``.
            ctrl_cost_weight: Weight of the control cost used when ``reward_fn`` is None.
            termination_fn: Optional ``(model, data) -> bool``; True ends the episode.
            reset_noise_scale: Scale of the reset noise on ``qpos`` and ``qvel``.
            render_mode: ``None``, ``"rgb_array"``, ``"depth_array"`` or ``"human"``.
            image_size: Width and height of rendered frames.
            camera_id: Camera to render from (``None``: MuJoCo's free camera).
        """
        super().__init__(
            model_path,
            frame_skip,
            observation_space=None,
            render_mode=render_mode,
            width=image_size,
            height=image_size,
            camera_id=camera_id,
        )
        self.metadata = {**type(self).metadata, "render_fps": int(np.round(1.0 / self.dt))}
        size = self.model.nq + self.model.nv
        self.observation_space = Box(-np.inf, np.inf, shape=(size,), dtype=np.float64)
        self._reward_fn = reward_fn
        self._ctrl_cost_weight = float(ctrl_cost_weight)
        self._termination_fn = termination_fn
        self._reset_noise_scale = float(reset_noise_scale)

    def _set_action_space(self) -> Box:
        if self.model.nu == 0:
            raise UnsupportedSpaceError(
                f"MJCF model {self.fullpath!r} has no actuators, so there is no action space; "
                "add <actuator> elements (e.g. <motor joint='...' ctrlrange='-1 1'/>)."
            )
        unlimited = [
            self.model.actuator(i).name or str(i)
            for i in range(self.model.nu)
            if not self.model.actuator_ctrllimited[i]
        ]
        if unlimited:
            raise UnsupportedSpaceError(
                f"actuators {unlimited} of {self.fullpath!r} have no ctrlrange, expected every actuator "
                "to be ctrl-limited; add ctrlrange='low high' to them."
            )
        low, high = self.model.actuator_ctrlrange.copy().astype(np.float32).T
        self.action_space = Box(low=low, high=high, dtype=np.float32)
        return self.action_space

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float64)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Applies ``action`` as ``data.ctrl`` for ``frame_skip`` physics steps."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape or not np.all(np.isfinite(action)):
            raise InvalidActionError(
                f"expected a finite action of shape {self.action_space.shape}, got shape {action.shape} "
                f"with values {action!r}; pass an element of env.action_space."
            )
        self.do_simulation(action, self.frame_skip)
        ctrl_cost = float(np.sum(np.square(action)))
        if self._reward_fn is not None:
            reward = float(self._reward_fn(self.model, self.data, action))
        else:
            reward = -self._ctrl_cost_weight * ctrl_cost if self._ctrl_cost_weight else 0.0
        terminated = bool(self._termination_fn(self.model, self.data)) if self._termination_fn else False
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, False, {"ctrl_cost": ctrl_cost}

    def reset_model(self) -> np.ndarray:
        """Sets a noisy initial state drawn from ``self.np_random`` and returns the observation."""
        scale = self._reset_noise_scale
        qpos = self.init_qpos + self.np_random.uniform(-scale, scale, size=self.model.nq)
        qvel = self.init_qvel + scale * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)
        return self._get_obs()


def matches(env_id: str) -> bool:
    """Whether ``env_id`` is a path ending in ``.xml``.

    Paths that do not exist are claimed too, so that ``make`` can say so and suggest the ``.xml``
    files beside them instead of a generic unknown-id error.
    """
    return env_id.lower().endswith(".xml")


def list_envs() -> list[str]:
    """Returns no ids: this backend makes envs from file paths, not from names."""
    return []


def make(
    env_id: str,
    *,
    frame_skip: int = 1,
    max_episode_steps: int | None = 1000,
    reward_fn: RewardFn | None = None,
    ctrl_cost_weight: float = 0.0,
    termination_fn: TerminationFn | None = None,
    reset_noise_scale: float = 0.01,
    pixels: bool = False,
    image_size: int = DEFAULT_IMAGE_SIZE,
    camera_id: int | None = None,
    render_mode: str | None = None,
) -> gym.Env:
    """Makes an env from an MJCF file.

    Args:
        env_id: Path of the ``.xml`` file.
        frame_skip: Physics steps per env step.
        max_episode_steps: ``TimeLimit`` in env steps (``None``: no limit).
        reward_fn: Optional ``(model, data, action) -> float``; default ``-ctrl_cost_weight*|a|^2``.
        ctrl_cost_weight: Weight of the default control-cost reward (default 0: reward 0).
        termination_fn: Optional ``(model, data) -> bool``.
        reset_noise_scale: Scale of the reset noise on ``qpos`` and ``qvel``.
        pixels: Observe rendered uint8 ``(image_size, image_size, 3)`` frames instead of the state.
        image_size: Side of rendered frames.
        camera_id: Camera to render from (``None``: MuJoCo's free camera).
        render_mode: Render mode; set to ``"rgb_array"`` when ``pixels=True``.

    Returns:
        The env made by ``gymnasium.make``, with a ``wmenv_protocol`` dict.

    Raises:
        UnknownEnvError: If the file does not exist (with close matches among ``.xml`` files beside it).
        UnsupportedSpaceError: If the model has no actuators or an actuator without ``ctrlrange``.
        ConfigError: Invalid option values.
    """
    path = Path(env_id).expanduser().resolve()
    if not path.is_file():
        siblings = [str(p) for p in path.parent.glob("*.xml")] if path.parent.is_dir() else []
        raise UnknownEnvError(
            "MJCF file", str(path), siblings, hint="Pass the path of an existing MuJoCo .xml model."
        )
    require_int("frame_skip", frame_skip, minimum=1, example=5)
    require_int("image_size", image_size, minimum=1, example=DEFAULT_IMAGE_SIZE)
    if max_episode_steps is not None:
        require_int("max_episode_steps", max_episode_steps, minimum=1, example=1000)
    if pixels:
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(
                f"pixels=True needs render_mode='rgb_array', got {render_mode!r}; drop render_mode."
            )
        render_mode = "rgb_array"
    env_kwargs = {
        "model_path": str(path),
        "frame_skip": frame_skip,
        "reward_fn": reward_fn,
        "ctrl_cost_weight": ctrl_cost_weight,
        "termination_fn": termination_fn,
        "reset_noise_scale": reset_noise_scale,
        "render_mode": render_mode,
        "image_size": image_size,
        "camera_id": camera_id,
    }
    spec = EnvSpec(
        id=f"mjcf/{_UNSAFE_ID_CHARS.sub('_', path.stem)}",
        entry_point=MJCFEnv,
        max_episode_steps=max_episode_steps,
        kwargs=env_kwargs,
    )
    env = gym.make(spec)
    if pixels:
        env = AddRenderObservation(env, render_only=True)
    return attach_protocol(
        env,
        {
            "backend": NAME,
            "env_id": str(path),
            "frame_skip": frame_skip,
            "dt": float(env.unwrapped.dt),
            "max_episode_steps": max_episode_steps,
            "reward": _describe_reward(reward_fn, ctrl_cost_weight),
            "pixels": bool(pixels),
            "image_size": image_size if pixels else None,
            "reset_noise_scale": reset_noise_scale,
            "kwargs": jsonable(
                {"reward_fn": reward_fn, "termination_fn": termination_fn, "camera_id": camera_id}
            ),
        },
    )


def _describe_reward(reward_fn: RewardFn | None, ctrl_cost_weight: float) -> str:
    if reward_fn is not None:
        return "reward_fn"
    return f"-{ctrl_cost_weight} * sum(action**2)" if ctrl_cost_weight else "0"


SPEC = EnvBackendSpec(
    name=NAME,
    aliases=("mjcf",),
    description="A raw MuJoCo MJCF .xml file: obs qpos+qvel, actions ctrl in ctrlrange.",
    make=make,
    list_envs=list_envs,
    matches=matches,
)
