"""ALE backend: id forms, protocol presets and the protocol dict, preprocessing options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.envs.make import describe_protocol, make_env


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "Pong-v5"])
def test_check_env(env_id: str) -> None:
    env = make_env(env_id)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 1) and obs.dtype == np.uint8
    assert describe_protocol(env)["env_id"] == "ALE/Pong-v5"
    env.close()


def test_default_protocol_dict() -> None:
    env = make_env("Pong-v5")
    assert describe_protocol(env) == {
        "backend": "ale",
        "env_id": "ALE/Pong-v5",
        "game": "pong",
        "protocol": "default",
        "preprocess": True,
        "frameskip": 4,
        "repeat_action_probability": 0.25,
        "noop_max": 30,
        "max_episode_frames": 108_000,
        "max_episode_steps": 27_000,
        "screen_size": 84,
        "grayscale": True,
        "frame_stack": 1,
        "terminal_on_life_loss": False,
        "full_action_space": False,
        "budget_agent_steps": None,
        "kwargs": {},
    }
    # The wrapper skips frames; the emulator itself steps one frame at a time.
    assert env.unwrapped._frameskip == 1
    assert env.unwrapped.spec.kwargs["repeat_action_probability"] == 0.25


def test_atari100k_protocol() -> None:
    env = make_env("ALE/Pong-v5", protocol="atari100k")
    protocol = describe_protocol(env)
    assert protocol["repeat_action_probability"] == 0.0
    assert (protocol["screen_size"], protocol["grayscale"]) == (64, False)
    assert protocol["budget_agent_steps"] == 100_000
    assert env.unwrapped.spec.kwargs["repeat_action_probability"] == 0.0
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3)


def test_explicit_options_override_the_preset() -> None:
    env = make_env(
        "Pong-v5", protocol="atari100k", repeat_action_probability=0.1, screen_size=48, grayscale=True
    )
    protocol = describe_protocol(env)
    assert (protocol["repeat_action_probability"], protocol["screen_size"]) == (0.1, 48)
    assert env.observation_space.shape == (48, 48, 1)


def test_v4_ids_keep_their_sticky_default_and_stack_frames() -> None:
    env = make_env("PongNoFrameskip-v4", frame_stack=4)
    assert describe_protocol(env)["repeat_action_probability"] == 0.0
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84, 1)


def test_max_episode_frames_truncates_in_agent_steps() -> None:
    env = make_env("Pong-v5", noop_max=0, max_episode_frames=40)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(10)]
    assert flags[-1] == (False, True)
    assert all(flag == (False, False) for flag in flags[:-1])
    assert describe_protocol(env)["max_episode_steps"] == 10


def test_seeding_is_deterministic_with_sticky_actions(
    rollout: Callable[..., Any], assert_same_rollout: Callable[..., None]
) -> None:
    a = rollout(make_env("Pong-v5", screen_size=32), seed=5, steps=30)
    b = rollout(make_env("Pong-v5", screen_size=32), seed=5, steps=30)
    assert_same_rollout(a, b)


def test_without_preprocessing() -> None:
    env = make_env("Pong-v5", preprocess=False, frameskip=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (210, 160, 3)
    assert env.unwrapped._frameskip == 2
    protocol = describe_protocol(env)
    assert (protocol["noop_max"], protocol["screen_size"], protocol["max_episode_steps"]) == (0, None, 54_000)


def test_preprocessing_options_need_preprocess() -> None:
    with pytest.raises(ConfigError, match=r"\['screen_size'\] only apply with preprocess=True"):
        make_env("Pong-v5", preprocess=False, screen_size=64)


def test_unknown_game_suggests_close_matches() -> None:
    with pytest.raises(
        UnknownEnvError, match=r"unknown ALE env id 'ALE/Pongg-v5'; did you mean 'ALE/Pong-v5'"
    ):
        make_env("ALE/Pongg-v5", backend="atari")


def test_unknown_protocol() -> None:
    with pytest.raises(UnknownEnvError, match=r"unknown ALE protocol 'atari-100k'; did you mean 'atari100k'"):
        make_env("Pong-v5", protocol="atari-100k")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"repeat_action_probability": 1.5},
            r"repeat_action_probability must be a number in \[0, 1\], got 1.5",
        ),
        ({"frameskip": 0}, "frameskip must be an int >= 1, got 0"),
        ({"max_num_frames_per_episode": 10}, "pass max_episode_frames=10 instead"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_env("Pong-v5", **kwargs)
