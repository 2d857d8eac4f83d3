"""Benchmark agents of the diffusion family: a trained agent judged in the real env, and trained by the
staged DIAMOND loop when the benchmark trains (``--steps`` / ``--train-epochs``, the MinAtar 100k suite).

``wmenv benchmark -a diamond -g MinAtar/Breakout-v1 -c RUN_DIR`` evaluates a run of
``wmenv train diamond --stage all``; with ``--steps N`` every seed first runs the whole staged loop
(:func:`wmenv.models.diamond.train.run_stages`) with the schedule fitted to ``N`` real env steps
(``seed_steps + epochs * collect_steps = N``), in ``<out-dir>/train_seed<s>`` (resumable).
The default preset follows the frames: ``minatar`` up to 16x16, ``atari100k`` above.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wmenv.core.errors import CheckpointError, ConfigError, UnsupportedSpaceError
from wmenv.envs.evaluate import EvaluationResult, RealEnvEvaluator
from wmenv.models.diamond.agent import DiamondAgent
from wmenv.models.diamond.config import DiamondConfig

__all__ = ["DiamondBenchmarkAgent", "benchmark_agent_for", "schedule_overrides"]


def schedule_overrides(config: DiamondConfig, steps: int | None, epochs: int | None) -> dict[str, int]:
    """Schedule overrides giving ``steps`` real env steps in all (or ``epochs`` epochs after the seed data)."""
    s = config.schedule
    if steps is not None:
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        seed_steps = min(s.seed_steps, steps)
        return {"schedule.seed_steps": seed_steps, "schedule.epochs": (steps - seed_steps) // s.collect_steps}
    if epochs is not None:
        if epochs < 0:
            raise ConfigError(f"epochs must be >= 0, got {epochs}")
        return {"schedule.epochs": epochs}
    return {}


class DiamondBenchmarkAgent:
    """A ``diamond`` / ``ddpm`` / ``dit`` agent in the real env (policy sampled as DIAMOND evaluates).

    Args:
        env_id: real env id.
        device: torch device.
        env_kwargs: ``make_env`` arguments.
        preset: config preset of :meth:`train` (default: by frame size).
    """

    name = "diamond"
    requires_checkpoint = True

    def __init__(self, env_id: str, device: str = "cpu", env_kwargs: dict[str, Any] | None = None,
                 preset: str | None = None, **extra: Any) -> None:
        self.env_id, self.device, self.preset = env_id, device, preset
        self.env_kwargs = dict(env_kwargs or {})
        self._eval = RealEnvEvaluator(env_id, self.env_kwargs)
        self.agent: DiamondAgent | None = None

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a run directory (or its ``checkpoint.pt``) of this family trained on frames of this env.

        Raises:
            CheckpointError: missing, corrupt or foreign checkpoint.
            UnsupportedSpaceError: the run's spaces are not the env's.
        """
        from wmenv.train.checkpoint import load_model

        path = Path(path)
        if path.is_dir():
            path = path / "checkpoint.pt"
        agent, _ = load_model(path, expected_family="diamond", device=self.device)
        if not isinstance(agent, DiamondAgent):
            raise CheckpointError(f"{path} does not hold a diamond-family agent")
        env = self._eval.env()
        for kind in ("observation_space", "action_space"):
            ours, theirs = getattr(agent, kind), getattr(env, kind)
            if getattr(ours, "shape", None) != getattr(theirs, "shape", None) or type(ours) is not type(theirs):
                raise UnsupportedSpaceError(f"{path} was trained on {kind} {ours}, but {self.env_id} has {theirs}")
        self.agent = agent.eval()

    def evaluate(self, num_episodes: int, render: bool = False, seed: int | None = None,
                 progress: Callable[[int], None] | None = None) -> EvaluationResult:
        """Play ``num_episodes`` real episodes; episode ``i`` resets with ``seed + i``."""
        if self.agent is None:
            raise CheckpointError(f"agent {self.name!r} has no weights; call load_checkpoint(path) or train()")
        policy = self.agent.make_policy(explore=False, seed=seed)

        def act(obs: Any) -> Any:
            return policy(np.asarray(obs)[None])[0]

        return self._eval.run(act, num_episodes, seed=seed, render=render,
                              on_episode_start=lambda _seed: policy.reset(), progress=progress)

    def default_preset(self) -> str:
        """``minatar`` for frames up to 16x16, else ``atari100k``."""
        shape = getattr(self._eval.env().observation_space, "shape", None) or (64,)
        return "minatar" if max(shape[:2]) <= 16 else "atari100k"

    def train(self, *, steps: int | None = None, epochs: int | None = None, seed: int = 0,
              log_dir: str | None = None) -> None:
        """Run the staged loop from scratch (or resume it in ``log_dir``) and keep the trained agent."""
        from wmenv.models.diamond.train import run_stages
        from wmenv.registry import create_config

        preset = self.preset or self.default_preset()
        overrides = schedule_overrides(create_config(self.name, preset), steps, epochs)
        run_dir = Path(log_dir or f"runs/{self.name}-{self.env_id.replace('/', '-')}-seed{seed}")
        run_stages("all", run_dir, model=self.name, env_id=self.env_id, env_kwargs=self.env_kwargs, preset=preset,
                   overrides=overrides, seed=seed, device=self.device, progress=False)
        self.load_checkpoint(run_dir)

    def close(self) -> None:
        """Close the real env."""
        self._eval.close()


def benchmark_agent_for(name: str) -> type[DiamondBenchmarkAgent]:
    """The benchmark agent class of registered model ``name`` (``diamond``, ``ddpm`` or ``dit``)."""
    cls = type(f"{name.capitalize()}BenchmarkAgent", (DiamondBenchmarkAgent,), {"name": name})
    cls.__doc__ = f"The ``{name}`` model in the real env (see :class:`DiamondBenchmarkAgent`)."
    return cls

