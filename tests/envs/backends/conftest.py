"""Fixtures for the env backend tests: quiet third-party warnings, rollouts, a scratch cwd."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _quiet_env_checker_warnings() -> Iterator[None]:
    """check_env warns about infinite bounds and wrapped envs; those are expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.fixture
def scratch_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs the test in a temporary directory (MuJoCo writes MUJOCO_LOG.TXT to the cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


Rollout = tuple[list[np.ndarray], list[float]]


def _rollout(env: gym.Env, seed: int, steps: int) -> Rollout:
    """Resets with ``seed`` and steps with actions from an action space seeded by ``seed``.

    Returns:
        The observations (reset one first) and the rewards.
    """
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [np.array(obs)], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(np.array(obs))
        rewards.append(float(reward))
        if terminated or truncated:
            break
    return observations, rewards


def _assert_same_rollout(a: Rollout, b: Rollout) -> None:
    """Asserts two rollouts are identical, observation by observation."""
    assert len(a[0]) == len(b[0])
    for obs_a, obs_b in zip(a[0], b[0]):
        np.testing.assert_array_equal(obs_a, obs_b)
    assert a[1] == b[1]


@pytest.fixture
def rollout() -> Callable[[gym.Env, int, int], Rollout]:
    """``rollout(env, seed, steps)``: observations and rewards of a seeded random-action rollout."""
    return _rollout


@pytest.fixture
def assert_same_rollout() -> Callable[[Rollout, Rollout], None]:
    """``assert_same_rollout(a, b)``: fails unless two rollouts are identical."""
    return _assert_same_rollout
