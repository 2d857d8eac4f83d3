"""Benchmark adapter: a trained World Models agent judged in the REAL env.

The controller acts on ``[z, h]``: ``z`` the VAE posterior mean of each real observation, ``h`` the
MDN-RNN's LSTM state run on the real ``(z, a)`` history. Registered as agent ``world-models``
(alias ``ha``) with :func:`wmenv.benchmarks.adapters.register_agent`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wmenv.core.errors import CheckpointError
from wmenv.envs.evaluate import EvaluationResult, RealEnvEvaluator
from wmenv.models.ha.agent import WorldModelsAgent, WorldModelsPolicy
from wmenv.models.ha.environment import fit_observation

__all__ = ["WorldModelsBenchmarkAgent"]


class WorldModelsBenchmarkAgent:
    """V + M + C in the real env (images are resized to 64x64 as in training).

    Args:
        env_id: real env id.
        device: torch device.
        env_kwargs: extra ``make_env`` arguments (e.g. ``{"pixels": True}`` for rendered frames).
        preset: config preset used by :meth:`train` (default ``"small"``).
    """

    name = "world-models"
    requires_checkpoint = True

    def __init__(
        self, env_id: str, device: str = "cpu", env_kwargs: dict[str, Any] | None = None, preset: str | None = None
    ) -> None:
        self.env_id, self.device, self.preset = env_id, device, preset
        self.env_kwargs = dict(env_kwargs or {})
        self._eval = RealEnvEvaluator(env_id, self.env_kwargs, observation_wrapper=fit_observation)
        self.agent: WorldModelsAgent | None = None

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a checkpoint written by the stage driver (``run_dir/checkpoint.pt`` or the run dir).

        Raises:
            CheckpointError: missing/corrupt/foreign file, or a run whose controller stage never ran.
        """
        from wmenv.train.checkpoint import load_model

        path = Path(path)
        if path.is_dir():
            path = path / "checkpoint.pt"
        agent, _ = load_model(path, expected_family="world-models", device=self.device)
        if "controller" not in agent.trained_stages:
            raise CheckpointError(
                f"{path}: the controller stage never ran (trained: {list(agent.trained_stages)}); run "
                "`python -m wmenv.models.ha.train --run-dir RUN --stage controller` first"
            )
        self.agent = agent.eval()

    def evaluate(
        self, num_episodes: int, render: bool = False, seed: int | None = None, progress: Callable | None = None
    ) -> EvaluationResult:
        """Play ``num_episodes`` real episodes; episode ``i`` resets with ``seed + i``."""
        if self.agent is None:
            raise CheckpointError("no World Models agent loaded; call load_checkpoint(path) first")
        policy = WorldModelsPolicy(self.agent)

        def act(obs: Any) -> Any:
            return policy(np.asarray(obs)[None])[0]

        return self._eval.run(act, num_episodes, seed=seed, render=render,
                              on_episode_start=lambda _seed: policy.reset(), progress=progress)

    def train(
        self, *, steps: int | None = None, epochs: int | None = None, seed: int = 0, log_dir: str | None = None
    ) -> None:
        """Train every stage from scratch with the stage driver (``steps``: random-rollout env steps)."""
        from wmenv.models.ha.train import run_stages
        from wmenv.train.checkpoint import load_model

        run_dir = Path(log_dir or f"runs/world-models-{self.env_id}-seed{seed}")
        overrides = {"schedule.random_steps": steps} if steps else {}
        run_stages("all", run_dir, env_id=self.env_id, env_kwargs=self.env_kwargs, preset=self.preset or "small",
                   overrides=overrides, seed=seed, device=self.device, progress=False)
        self.agent = load_model(run_dir / "checkpoint.pt", expected_family="world-models", device=self.device)[0].eval()

    def close(self) -> None:
        """Close the real env."""
        self._eval.close()
