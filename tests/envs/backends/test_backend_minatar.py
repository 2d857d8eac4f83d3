"""MinAtar backend: ids and aliases, uint8 HWC frames, seeding, options, protocol, collector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import wmenv
from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.envs.backends import minatar as backend
from wmenv.envs.make import describe_protocol, make_env, resolve_env_backend

GAMES = {"Asterix": 4, "Breakout": 4, "Freeway": 7, "Seaquest": 10, "SpaceInvaders": 6}


@pytest.mark.parametrize(("game", "channels"), GAMES.items())
def test_spaces_and_check_env(game: str, channels: int) -> None:
    env = make_env(f"MinAtar/{game}-v1")
    assert env.observation_space == gym.spaces.Box(0, 1, (10, 10, channels), np.uint8)
    assert isinstance(env.action_space, gym.spaces.Discrete)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (10, 10, channels) and obs in env.observation_space
    assert set(np.unique(obs)) <= {0, 1} and info == {}
    obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert obs.dtype == np.uint8 and isinstance(reward, float)
    assert isinstance(terminated, bool) and truncated is False
    check_env(env.unwrapped)
    env.close()


def test_action_sets() -> None:
    assert make_env("MinAtar/Breakout-v1").action_space.n == 3
    assert make_env("MinAtar/Breakout-v0").action_space.n == 6
    assert make_env("MinAtar/SpaceInvaders-v1").action_space.n == 4


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("minatar-breakout", "MinAtar/Breakout-v1"),
        ("MinAtar-Breakout", "MinAtar/Breakout-v1"),
        ("minatar-space_invaders", "MinAtar/SpaceInvaders-v1"),
        ("minatar-spaceinvaders", "MinAtar/SpaceInvaders-v1"),
        ("minatar-space-invaders", "MinAtar/SpaceInvaders-v1"),
        ("minatar/seaquest-v0", "MinAtar/Seaquest-v0"),
        ("MinAtar/Freeway-v1", "MinAtar/Freeway-v1"),
    ],
)
def test_aliases(alias: str, canonical: str) -> None:
    assert backend.resolve_minatar_id(alias) == canonical
    assert resolve_env_backend(alias).name == "minatar"
    env = make_env(alias)
    assert env.spec is not None and env.spec.id == canonical
    assert describe_protocol(env)["env_id"] == canonical


@pytest.mark.parametrize("env_id", ["MinAtar/Pong-v1", "MinAtar/Breakout-v2", "minatar-", "Breakout-v1", "CartPole-v1"])
def test_not_minatar_ids(env_id: str) -> None:
    assert backend.resolve_minatar_id(env_id) is None
    with pytest.raises(UnknownEnvError, match="unknown MinAtar env id"):
        backend.make(env_id)


def test_list_envs() -> None:
    ids = backend.list_envs()
    assert len(ids) == 15 and "minatar-space_invaders" in ids
    everything = wmenv.list_envs()
    for game in GAMES:
        assert f"MinAtar/{game}-v1" in everything
    assert "minatar-breakout" in everything and "CartPole-v1" in everything
    assert set(wmenv.list_envs(backend="minatar")) == set(ids)


def test_auto_selection_keeps_other_backends() -> None:
    assert resolve_env_backend("CartPole-v1").name == "gymnasium"
    assert resolve_env_backend("MinAtar/Asterix-v1").name == "minatar"


@pytest.mark.parametrize("game", GAMES)
def test_seeded_determinism(
    game: str, rollout: Callable[..., Any], assert_same_rollout: Callable[..., None]
) -> None:
    a = rollout(make_env(f"MinAtar/{game}-v1"), seed=3, steps=200)
    b = rollout(make_env(f"MinAtar/{game}-v1"), seed=3, steps=200)
    assert_same_rollout(a, b)


def test_different_seeds_differ_and_episodes_after_one_seed_repeat() -> None:
    def returns(seed: int) -> list[tuple[float, int]]:
        env = make_env("minatar-breakout")
        env.action_space.seed(seed)
        env.reset(seed=seed)
        out = []
        for _ in range(5):  # later episodes reset unseeded: np_random carries on deterministically
            total, steps, done = 0.0, 0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total, steps, done = total + reward, steps + 1, terminated or truncated
            out.append((total, steps))
            env.reset()
        return out

    assert returns(1) == returns(1)
    assert returns(1) != returns(2)


def test_sticky_actions() -> None:
    def paddle_positions(prob: float) -> list[int]:
        env = make_env("minatar-breakout", sticky_action_prob=prob)
        obs, _ = env.reset(seed=0)
        seen = [int(np.argmax(obs[9, :, 0]))]  # channel 0: the paddle, on the bottom row
        for _ in range(5):
            obs, *_ = env.step(1)  # v1 action 1: left
            seen.append(int(np.argmax(obs[9, :, 0])))
        return seen

    moving = paddle_positions(0.0)
    assert moving[-1] == max(moving[0] - 5, 0) and moving[0] > 0
    assert paddle_positions(1.0) == [moving[0]] * 6  # always the previous action: the reset no-op


def test_options_and_protocol() -> None:
    env = make_env("minatar-freeway", sticky_action_prob=0.0, max_episode_steps=5, difficulty_ramping=False)
    assert describe_protocol(env) == {
        "backend": "minatar",
        "env_id": "MinAtar/Freeway-v1",
        "game": "freeway",
        "minimal_action_set": True,
        "num_actions": 3,
        "observation": "uint8 [10, 10, 7] channels-last, binary (0/1)",
        "frameskip": 1,
        "sticky_action_prob": 0.0,
        "repeat_action_probability": 0.0,
        "difficulty_ramping": False,
        "max_episode_steps": 5,
        "kwargs": {},
    }
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(5)] == [False] * 4 + [True]
    default = describe_protocol(make_env("MinAtar/Seaquest-v1"))
    assert default["sticky_action_prob"] == 0.1 and default["max_episode_steps"] == 10_000
    assert describe_protocol(make_env("minatar-asterix", max_episode_steps=None))["max_episode_steps"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sticky_action_prob": 1.5}, "sticky_action_prob must be a number in"),
        ({"max_episode_steps": 0}, "max_episode_steps must be an int >= 1"),
        ({"difficulty_ramping": "yes"}, "difficulty_ramping must be a bool"),
        ({"frameskip": 4}, "unknown MinAtar option"),
        ({"render_mode": "ansi"}, "render as render_mode='rgb_array'"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_env("minatar-breakout", **kwargs)


def test_render_rgb_array() -> None:
    env = make_env("minatar-seaquest", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8 and frame.any()


def test_collector_stores_uint8_frames() -> None:
    import torch

    from wmenv.train.collect import collect

    replay, stats = collect("minatar-breakout", 60, num_envs=2, seed=0, progress=False)
    rows = replay[: len(replay)]
    assert rows["observation"].dtype == torch.uint8
    assert tuple(rows["observation"].shape[1:]) == (10, 10, 4)
    assert int(rows["observation"].max()) <= 1 and stats.rows == len(replay)
