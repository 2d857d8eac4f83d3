"""Tiny deterministic-length envs for the train tests (pixels, dict observations, Box actions)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class PixelEnv(gym.Env):
    """uint8 (8, 8, 3) frames, 3 discrete actions; episode ``k`` lasts ``5 + k % 4`` steps.

    Each frame is filled with the step index so tests can check ordering from pixels alone.
    """

    metadata = {"render_modes": []}

    def __init__(self, terminate: bool = True) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.terminate = terminate
        self._episodes = -1
        self._t = 0

    def _obs(self) -> np.ndarray:
        return np.full((8, 8, 3), self._t, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._episodes += 1
        self._t = 0
        self._len = 5 + self._episodes % 4
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        done = self._t >= self._len
        return self._obs(), float(action), done and self.terminate, done and not self.terminate, {}


class DictEnv(gym.Env):
    """Dict observation (uint8 image + float64 state), Box(2,) actions, 6-step episodes."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Dict(
            {
                "image": gym.spaces.Box(0, 255, (4, 4, 1), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._t = 0

    def _obs(self) -> dict:
        return {
            "image": np.full((4, 4, 1), self._t, np.uint8),
            "state": np.array([self._t, -self._t], np.float64),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        return self._obs(), float(np.sum(action)), False, self._t >= 6, {}
