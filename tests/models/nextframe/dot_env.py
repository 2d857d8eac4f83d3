"""A tiny deterministic pixel env for the next-frame tests: a falling dot steered left/right.

``(size, size, 1)`` uint8 frames (default 10x10) with one bright pixel; ``Discrete(3)`` actions move it
left / keep / right while it falls one row per step; the episode terminates when it reaches the
bottom row (``size - 1`` steps); reward 1 when the dot is in the middle column. Registered as
``WmenvTest/Dot-v0`` on import, so ``wmenv.make_env("tests.models.nextframe.dot_env:WmenvTest/Dot-v0")``
works in any process started from the repository root.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "WmenvTest/Dot-v0"
MODULE_ID = f"tests.models.nextframe.dot_env:{ENV_ID}"


class DotEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, size: int = 10) -> None:
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 1), np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self._r = self._c = 0

    def _obs(self) -> np.ndarray:
        frame = np.zeros((self.size, self.size, 1), np.uint8)
        frame[self._r, self._c, 0] = 255
        return frame

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._r, self._c = 0, int(self.np_random.integers(1, self.size - 1))
        return self._obs(), {}

    def step(self, action):
        self._r += 1
        self._c = int(np.clip(self._c + int(action) - 1, 0, self.size - 1))
        reward = 1.0 if self._c == self.size // 2 else 0.0
        return self._obs(), reward, self._r >= self.size - 1, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=DotEnv, max_episode_steps=50)
