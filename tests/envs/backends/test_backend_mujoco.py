"""Raw MuJoCo backend: an MJCF file the test writes, its spaces, reward, termination, seeding."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wmenv.core.errors import InvalidActionError, UnknownEnvError, UnsupportedSpaceError
from wmenv.envs.make import describe_protocol, make_env

_BODY = """
<mujoco model="{name}">
  <option timestep="0.01"/>
  <worldbody>
    <light pos="0 0 3"/>
    <geom type="plane" size="2 2 0.1"/>
    <body name="cart" pos="0 0 0.2">
      <joint name="slide" type="slide" axis="1 0 0" range="-1 1"/>
      <geom type="box" size="0.1 0.1 0.05" mass="1"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.5" size="0.03" mass="0.1"/>
      </body>
    </body>
  </worldbody>
  {actuators}
</mujoco>
"""
_ACTUATORS = (
    '<actuator><motor joint="slide" ctrlrange="-2 2"/><motor joint="hinge" ctrlrange="-0.5 0.5"/></actuator>'
)


def _write(directory: Path, name: str = "cartpole", actuators: str = _ACTUATORS) -> Path:
    path = directory / f"{name}.xml"
    path.write_text(_BODY.format(name=name, actuators=actuators))
    return path


@pytest.fixture
def model_path(scratch_cwd: Path) -> Path:
    return _write(scratch_cwd)


def test_check_env_and_spaces(model_path: Path) -> None:
    env = make_env(str(model_path))
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (4,)  # qpos (2) + qvel (2)
    np.testing.assert_array_equal(env.action_space.low, np.array([-2.0, -0.5], dtype=np.float32))
    np.testing.assert_array_equal(env.action_space.high, np.array([2.0, 0.5], dtype=np.float32))
    assert env.spec is not None and env.spec.id == "mjcf/cartpole"


def test_protocol_and_frame_skip(model_path: Path) -> None:
    env = make_env(model_path, backend="mjcf", frame_skip=5, max_episode_steps=50)
    protocol = describe_protocol(env)
    assert protocol["backend"] == "mujoco"
    assert protocol["env_id"] == str(model_path.resolve())
    assert protocol["dt"] == pytest.approx(0.05)
    assert protocol["max_episode_steps"] == 50
    assert protocol["reward"] == "0"
    assert describe_protocol(make_env(model_path, ctrl_cost_weight=0.1))["reward"] == "-0.1 * sum(action**2)"


def test_default_reward_is_zero_and_ctrl_cost_is_optional(model_path: Path) -> None:
    env = make_env(model_path)
    env.reset(seed=0)
    assert env.step(np.array([1.0, 0.5], dtype=np.float32))[1] == 0.0
    env = make_env(model_path, ctrl_cost_weight=0.5)
    env.reset(seed=0)
    assert env.step(np.array([1.0, 0.5], dtype=np.float32))[1] == pytest.approx(-0.5 * 1.25)


def test_reward_and_termination_callables(model_path: Path) -> None:
    def reward_fn(model: Any, data: Any, action: np.ndarray) -> float:
        return float(data.qpos[0])

    def termination_fn(model: Any, data: Any) -> bool:
        return bool(data.qpos[0] > 0.01)

    env = make_env(model_path, reward_fn=reward_fn, termination_fn=termination_fn, frame_skip=5)
    env.reset(seed=0)
    for _ in range(100):
        obs, reward, terminated, truncated, _ = env.step(np.array([2.0, 0.0], dtype=np.float32))
        assert reward == pytest.approx(obs[0])
        if terminated:
            break
    assert terminated and not truncated
    assert describe_protocol(env)["reward"] == "reward_fn"


def test_time_limit(model_path: Path) -> None:
    env = make_env(model_path, max_episode_steps=5)
    env.reset(seed=0)
    truncated = [env.step(env.action_space.sample())[3] for _ in range(5)]
    assert truncated == [False] * 4 + [True]


def test_seeded_reset_noise(
    model_path: Path, rollout: Callable[..., Any], assert_same_rollout: Callable[..., None]
) -> None:
    assert_same_rollout(
        rollout(make_env(model_path), seed=2, steps=10), rollout(make_env(model_path), seed=2, steps=10)
    )
    env = make_env(model_path)
    first, _ = env.reset(seed=2)
    other, _ = env.reset(seed=3)
    assert not np.array_equal(first, other)
    assert np.abs(first).max() <= 0.05
    quiet, _ = make_env(model_path, reset_noise_scale=0.0).reset(seed=2)
    np.testing.assert_array_equal(quiet, np.zeros(4))


def test_pixels(model_path: Path) -> None:
    env = make_env(model_path, pixels=True, image_size=32)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8
    assert obs.std() > 0


def test_bad_action_shape(model_path: Path) -> None:
    env = make_env(model_path).unwrapped
    env.reset(seed=0)
    with pytest.raises(
        InvalidActionError, match=r"expected a finite action of shape \(2,\), got shape \(3,\)"
    ):
        env.step(np.zeros(3))


def test_model_without_actuators(scratch_cwd: Path) -> None:
    path = _write(scratch_cwd, "passive", actuators="")
    with pytest.raises(UnsupportedSpaceError, match="has no actuators"):
        make_env(path)


def test_actuator_without_ctrlrange(scratch_cwd: Path) -> None:
    path = _write(
        scratch_cwd, "unlimited", actuators='<actuator><motor name="push" joint="slide"/></actuator>'
    )
    with pytest.raises(UnsupportedSpaceError, match=r"actuators \['push'\] .* have no ctrlrange"):
        make_env(path)


def test_missing_file_suggests_siblings(model_path: Path) -> None:
    missing = model_path.parent / "cartpol.xml"
    with pytest.raises(
        UnknownEnvError, match=r"unknown MJCF file .*cartpol.xml'; did you mean .*cartpole.xml'"
    ):
        make_env(str(missing))
