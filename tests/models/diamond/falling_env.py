"""A synthetic MinAtar-sized game for the diffusion-family tests: ``Box(0, 1, (10, 10, 4), uint8)`` frames.

Falling objects: the player (channel 0) moves along the bottom row (actions: 0 left, 1 stay, 2 right).
A coin (channel 1) and a rock (channel 2) fall one row per step, each from a random column when it
(re)spawns at the top; the rock spawns 5 rows behind the coin. Catching the coin gives +1 and
lights one more cell of the score bar (channel 3, top row); a rock landing on the player ends the
episode (terminated, reward -1). The registration adds a 40-step time limit.

Importing this module registers ``DiamondFalling-v0``; ``wmenv.make_env(ENV_ID)`` builds it from the
``module:id`` form, so the collector, the run record and ``open_run`` can rebuild it from its id.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "tests.models.diamond.falling_env:DiamondFalling-v0"
SIZE = 10


class FallingObjects(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 1, (SIZE, SIZE, 4), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def _frame(self) -> np.ndarray:
        f = np.zeros((SIZE, SIZE, 4), np.uint8)
        f[SIZE - 1, self.x, 0] = 1
        if 0 <= self.coin[0] < SIZE:
            f[self.coin[0], self.coin[1], 1] = 1
        if 0 <= self.rock[0] < SIZE:
            f[self.rock[0], self.rock[1], 2] = 1
        f[0, : min(self.score, SIZE), 3] = 1
        return f

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.x, self.score = SIZE // 2, 0
        self.coin = [0, int(self.np_random.integers(SIZE))]
        self.rock = [-5, int(self.np_random.integers(SIZE))]
        return self._frame(), {}

    def step(self, action: Any):
        self.x = int(np.clip(self.x + int(action) - 1, 0, SIZE - 1))
        self.coin[0] += 1
        self.rock[0] += 1
        reward, terminated = 0.0, False
        if self.coin[0] == SIZE - 1 and self.coin[1] == self.x:
            reward, self.score = 1.0, self.score + 1
        if self.rock[0] == SIZE - 1 and self.rock[1] == self.x:
            reward, terminated = -1.0, True
        frame = self._frame()
        for obj in (self.coin, self.rock):
            if obj[0] >= SIZE - 1:
                obj[0], obj[1] = 0, int(self.np_random.integers(SIZE))
        return frame, reward, terminated, False, {}


if "DiamondFalling-v0" not in gym.registry:
    gym.register("DiamondFalling-v0", entry_point=FallingObjects, max_episode_steps=40)
