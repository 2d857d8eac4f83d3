"""dm_control backend: ids and aliases, state and pixel observations, action repeat, seeding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.envs.make import describe_protocol, make_env


def test_state_check_env() -> None:
    env = make_env("cartpole-swingup")
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (5,) and env.observation_space.dtype == np.float32
    assert env.action_space.dtype == np.float32
    np.testing.assert_array_equal(env.action_space.low, [-1.0])
    np.testing.assert_array_equal(env.action_space.high, [1.0])
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    env.close()


def test_pixels_check_env() -> None:
    env = make_env("cartpole-swingup", pixels=True)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert obs.std() > 0  # a real frame, not a blank buffer
    env.close()


@pytest.mark.parametrize(
    ("env_id", "domain", "task"),
    [
        ("cup-catch", "ball_in_cup", "catch"),
        ("ball_in_cup-catch", "ball_in_cup", "catch"),
        ("dmc/walker-walk", "walker", "walk"),
        ("dm_control/walker-walk-v0", "walker", "walk"),
        ("cartpole-swingup_sparse", "cartpole", "swingup_sparse"),
    ],
)
def test_id_forms(env_id: str, domain: str, task: str) -> None:
    protocol = describe_protocol(make_env(env_id))
    assert (protocol["backend"], protocol["domain"], protocol["task"]) == ("dmc", domain, task)
    assert protocol["env_id"] == f"{domain}-{task}"


def test_protocol_dict() -> None:
    protocol = describe_protocol(make_env("cup-catch", action_repeat=2))
    assert protocol == {
        "backend": "dmc",
        "env_id": "ball_in_cup-catch",
        "domain": "ball_in_cup",
        "task": "catch",
        "pixels": False,
        "image_size": 64,
        "camera_id": 0,
        "action_repeat": 2,
        "control_timestep": 0.02,
        "max_episode_steps": 500,
        "task_kwargs": {},
        "environment_kwargs": {},
    }


def test_quadruped_uses_camera_2_and_unit_actions() -> None:
    env = make_env("quadruped-walk")
    assert describe_protocol(env)["camera_id"] == 2
    np.testing.assert_array_equal(env.action_space.low, -np.ones(12, dtype=np.float32))
    env.reset(seed=0)
    obs, *_ = env.step(np.ones(12, dtype=np.float32))
    assert obs in env.observation_space


def test_action_repeat_sums_rewards_and_matches_repeated_steps() -> None:
    repeated, single = make_env("cartpole-swingup", action_repeat=2), make_env("cartpole-swingup")
    obs_r, _ = repeated.reset(seed=1)
    obs_s, _ = single.reset(seed=1)
    np.testing.assert_array_equal(obs_r, obs_s)
    action = np.array([0.7], dtype=np.float32)
    for _ in range(3):
        obs_r, reward_r, *_ = repeated.step(action)
        total = 0.0
        for _ in range(2):
            obs_s, reward_s, *_ = single.step(action)
            total += float(reward_s)
        np.testing.assert_array_equal(obs_r, obs_s)
        assert reward_r == pytest.approx(total)


def test_truncated_at_time_limit_divided_by_action_repeat() -> None:
    env = make_env("cartpole-swingup", action_repeat=2, task_kwargs={"time_limit": 0.1})  # 10 control steps
    env.reset(seed=0)
    flags = [env.step(env.action_space.sample())[2:4] for _ in range(5)]
    assert flags[-1] == (False, True)
    assert all(flag == (False, False) for flag in flags[:-1])
    assert describe_protocol(env)["max_episode_steps"] == 5


def test_seeding_is_deterministic(
    rollout: Callable[..., Any], assert_same_rollout: Callable[..., None]
) -> None:
    a = rollout(make_env("walker-walk"), seed=7, steps=10)
    b = rollout(make_env("walker-walk"), seed=7, steps=10)
    assert_same_rollout(a, b)
    c = rollout(make_env("walker-walk"), seed=8, steps=10)
    assert not np.array_equal(a[0][0], c[0][0])


def test_unknown_task_suggests_close_matches() -> None:
    with pytest.raises(
        UnknownEnvError, match=r"unknown dm_control task 'walker-wlak'; did you mean 'walker-walk'"
    ):
        make_env("walker-wlak", backend="dm-control")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixels": True, "render_mode": None}, "render_mode must be 'rgb_array'"),
        ({"action_repeat": 0}, "action_repeat must be an int >= 1, got 0"),
        ({"image_size": -1}, "image_size must be an int >= 1, got -1"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_env("cartpole-swingup", **kwargs)
