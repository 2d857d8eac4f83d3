"""A tiny MinAtar-like pixel game for the IRIS tests: ``Box(0, 1, (10, 10, 4), uint8)`` frames, 3 actions.

Catch: a ball falls one row per step from a random column at the top; the paddle (bottom row, 3
cells wide) moves left / stays / moves right. Catching the ball gives +1, missing it -1; then a new
ball starts. The episode terminates after 3 balls (27 steps). Channels: paddle, ball, the ball's
previous cell (its trail), one cell per ball already played (top-left corner).

Importing this module registers ``IrisPixels-v0``; ``wmenv.make_env("tests.models.iris.pixel_env:IrisPixels-v0")``
makes it (Gymnasium's ``module:id`` form), so the collector and ``open_run`` can rebuild it from its id.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "tests.models.iris.pixel_env:IrisPixels-v0"
SIZE, BALLS = 10, 3


class CatchPixels(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 1, (SIZE, SIZE, 4), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def _frame(self) -> np.ndarray:
        f = np.zeros((SIZE, SIZE, 4), np.uint8)
        f[SIZE - 1, max(self.paddle - 1, 0) : self.paddle + 2, 0] = 1
        f[self.row, self.col, 1] = 1
        if self.prev is not None:
            f[self.prev[0], self.prev[1], 2] = 1
        f[0, : self.played, 3] = 1
        return f

    def _new_ball(self) -> None:
        self.row, self.col, self.prev = 0, int(self.np_random.integers(SIZE)), None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.paddle, self.played = SIZE // 2, 0
        self._new_ball()
        return self._frame(), {}

    def step(self, action: Any):
        self.paddle = int(np.clip(self.paddle + int(action) - 1, 1, SIZE - 2))
        self.prev = (self.row, self.col)
        self.row += 1
        reward, terminated = 0.0, False
        if self.row == SIZE - 1:
            reward = 1.0 if abs(self.col - self.paddle) <= 1 else -1.0
            self.played += 1
            terminated = self.played == BALLS
            frame = self._frame()
            if not terminated:
                self._new_ball()
            return frame, reward, terminated, False, {}
        return self._frame(), reward, terminated, False, {}


if "IrisPixels-v0" not in gym.registry:
    gym.register("IrisPixels-v0", entry_point=CatchPixels, max_episode_steps=100)
