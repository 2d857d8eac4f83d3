"""Gymnasium backend: registered ids, kwargs pass-through, pixel observations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.envs.make import describe_protocol, make_env


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "LunarLander-v3", "HalfCheetah-v5"])
@pytest.mark.usefixtures("scratch_cwd")
def test_check_env(env_id: str) -> None:
    env = make_env(env_id)
    check_env(env, skip_render_check=True)
    assert describe_protocol(env)["backend"] == "gymnasium"
    env.close()


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "LunarLanderContinuous-v3"])
def test_seeding_is_deterministic(
    env_id: str, rollout: Callable[..., Any], assert_same_rollout: Callable[..., None]
) -> None:
    a = rollout(make_env(env_id), seed=3, steps=20)
    b = rollout(make_env(env_id), seed=3, steps=20)
    assert_same_rollout(a, b)
    c = rollout(make_env(env_id), seed=4, steps=20)
    assert not np.array_equal(a[0][0], c[0][0])


def test_kwargs_reach_gymnasium_make() -> None:
    env = make_env("CartPole-v1", backend="gym", max_episode_steps=3)
    env.reset(seed=0)
    truncated = [env.step(0)[3] for _ in range(3)]
    assert truncated == [False, False, True]
    protocol = describe_protocol(env)
    assert protocol["max_episode_steps"] == 3
    assert protocol["kwargs"] == {"max_episode_steps": 3}


def test_pixels() -> None:
    env = make_env("CartPole-v1", pixels=True, image_size=32)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8
    assert obs in env.observation_space
    check_env(env, skip_render_check=True)
    protocol = describe_protocol(env)
    assert (protocol["pixels"], protocol["image_size"]) == (True, 32)


def test_pixels_need_rgb_array() -> None:
    with pytest.raises(
        ConfigError, match="pixels=True needs render_mode='rgb_array', got render_mode='human'"
    ):
        make_env("CartPole-v1", pixels=True, render_mode="human")


@pytest.mark.parametrize("image_size", [0, 2.5, True])
def test_bad_image_size(image_size: object) -> None:
    with pytest.raises(ConfigError, match="image_size must be an int >= 1"):
        make_env("CartPole-v1", pixels=True, image_size=image_size)


def test_unknown_id_with_explicit_backend() -> None:
    with pytest.raises(
        UnknownEnvError, match=r"unknown Gymnasium env id 'Pendulum-v9'; did you mean 'Pendulum-v1'"
    ):
        make_env("Pendulum-v9", backend="gymnasium")


@pytest.mark.usefixtures("scratch_cwd")
def test_car_racing_and_mujoco_pixels() -> None:
    env = make_env("CarRacing-v3")
    check_env(env, skip_render_check=True)
    env = make_env("HalfCheetah-v5", pixels=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3)
    assert obs.std() > 0
