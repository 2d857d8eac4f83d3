"""Benchmark agents for every registered model that can act: :class:`RegistryAgent`.

A registered model acts when its :class:`~wmenv.registry.ModelSpec` declares a ``policy`` (for Dreamer:
``dreamer``, ``dreamerv1``, ``dreamerv2``, ``dreamerv3``, not the world-model-only ``dreamer-wm``) or a
``benchmark_agent`` of its own (World Models). :func:`register_family_agents` registers them in the
agent registry, which calls it on its first lookup; names already registered are kept.

Usage::

    agent = get_agent("dreamer", env_id="CartPole-v1", preset="tiny")
    agent.load_checkpoint("runs/my_dreamer_run")       # CheckpointError for another family
    agent.evaluate(10, seed=0)                         # {"episode_returns": [...], ...}
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wmenv.benchmarks.adapters import AGENTS, EvaluationResult, RealEnvEvaluator, make_real_env
from wmenv.core.errors import CheckpointError, ConfigError

__all__ = ["RegistryAgent", "acting_models", "register_family_agents"]


def acting_models() -> list[str]:
    """Canonical names of the registered models that can act."""
    from wmenv.registry import get_model_spec, list_models

    return [name for name in list_models() if get_model_spec(name).can_act]


def register_family_agents() -> list[str]:
    """Register an agent for every acting model not yet registered as one: the family's own
    ``benchmark_agent``, else a :class:`RegistryAgent`. Returns the agent names added."""
    from wmenv.registry import MODELS, get_model_spec

    added = []
    for name in acting_models():
        if name in AGENTS.known():
            continue
        spec = get_model_spec(name)
        factory = spec.benchmark_agent or functools.partial(RegistryAgent, name)
        aliases = [a for a in MODELS.aliases_of(name) if a not in AGENTS.known()]
        AGENTS.register(name, factory, aliases=aliases)
        added.append(name)
    return added


class RegistryAgent:
    """A registered model's own policy, loaded from a ``wmenv train`` checkpoint, judged in the real env.

    Args:
        model_name: registered model (``wmenv list``), e.g. ``"dreamer"``.
        env_id: real env id.
        device: torch device.
        env_kwargs: extra ``make_env`` arguments for evaluation.
        preset: model preset for :meth:`train` (default: the model's).
        updates_per_epoch: gradient updates per training epoch (:meth:`train`).
        env_steps_per_epoch: env steps collected with the model's policy between epochs.
        seed_steps: random env steps collected before the first update.

    Policies follow ``policy(obs_batch np) -> actions np`` with an optional ``reset(mask)``; the
    greedy one (``make_policy(explore=False)``) is reset at each episode start.
    """

    requires_checkpoint = True

    def __init__(
        self,
        model_name: str,
        env_id: str,
        device: str = "cpu",
        env_kwargs: dict[str, Any] | None = None,
        preset: str | None = None,
        *,
        updates_per_epoch: int = 100,
        env_steps_per_epoch: int = 500,
        seed_steps: int = 1000,
    ) -> None:
        from wmenv.registry import get_model_spec

        self.spec = get_model_spec(model_name)
        self.name = self.spec.name
        if min(updates_per_epoch, env_steps_per_epoch) < 1 or seed_steps < 0:
            raise ConfigError(
                f"need updates_per_epoch >= 1, env_steps_per_epoch >= 1 and seed_steps >= 0, got "
                f"{updates_per_epoch}, {env_steps_per_epoch} and {seed_steps}"
            )
        self.env_id, self.device, self.preset = env_id, device, preset
        self.env_kwargs = dict(env_kwargs or {})
        self.updates_per_epoch, self.env_steps_per_epoch = updates_per_epoch, env_steps_per_epoch
        self.seed_steps = seed_steps
        self._eval = RealEnvEvaluator(env_id, env_kwargs)
        self.model: Any = None
        self.run: Any = None
        self.meta: dict[str, Any] = {}
        self.run_dir: Path | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def family(self) -> str:
        """The family checkpoints must belong to."""
        return self.spec.family or self.spec.name

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a ``checkpoint.pt`` (or run directory) of this model's family.

        Raises:
            CheckpointError: missing or corrupt, of another family, or a model without ``make_policy``.
            UnsupportedSpaceError: the checkpoint's spaces are not the real env's.
        """
        from wmenv.runs import open_run

        run = open_run(path, device=self.device)
        if run.meta["family"] != self.family:
            raise CheckpointError(
                f"checkpoint {run.checkpoint} is of family {run.meta['family']!r}, expected {self.family!r} "
                f"(model {run.info.model!r}); load it with the matching agent"
            )
        if not run.spec.can_act or run.spec.policy is None:
            raise CheckpointError(
                f"checkpoint {run.checkpoint} holds model {run.info.model!r}, which has no policy; "
                f"agent {self.name!r} needs a checkpoint of an acting model such as {self.name!r}"
            )
        env = make_real_env(self.env_id, **self.env_kwargs)
        try:
            run.check_spaces(env, self.env_id)
        finally:
            env.close()
        self.run = run
        self.model, self.meta = run.model(), run.meta

    def evaluate(
        self,
        num_episodes: int,
        render: bool = False,
        seed: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> EvaluationResult:
        """Play ``num_episodes`` episodes with the greedy policy; episode ``i`` resets with ``seed + i``."""
        if self.model is None:
            raise CheckpointError(
                f"agent {self.name!r} has no weights; call load_checkpoint(path) (CLI: --checkpoint) or train()"
            )
        policy = self.run.policy(seed=seed, explore=False)

        def start(_ep_seed: int | None) -> None:
            if hasattr(policy, "reset"):
                policy.reset()

        def act(obs: Any) -> Any:
            return np.asarray(policy(np.asarray(obs)[None]))[0]

        return self._eval.run(act, num_episodes, seed=seed, render=render, on_episode_start=start,
                              progress=progress)

    def _schedule(self, steps: int | None, epochs: int | None) -> tuple[int, int, int, int]:
        """``(updates, seed_steps, collect_every, collect_steps)`` for an env-step or epoch budget.

        ``wmenv train`` collects at every multiple of ``collect_every`` below the last update, so
        ``E`` epochs have ``E - 1`` collection phases after the seed data.
        """
        if (steps is None) == (epochs is None):
            raise ConfigError(f"train() needs exactly one of steps= or epochs=, got steps={steps}, epochs={epochs}")
        if epochs is not None:
            if epochs < 1:
                raise ConfigError(f"epochs must be >= 1, got {epochs}")
            return epochs * self.updates_per_epoch, self.seed_steps, self.updates_per_epoch, self.env_steps_per_epoch
        if steps is None or steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        seed_steps = min(self.seed_steps, steps)
        phases = math.ceil((steps - seed_steps) / self.env_steps_per_epoch)
        per_phase = math.ceil((steps - seed_steps) / phases) if phases else 0
        return (phases + 1) * self.updates_per_epoch, seed_steps, self.updates_per_epoch, per_phase

    def train(
        self, *, steps: int | None = None, epochs: int | None = None, seed: int = 0, log_dir: str | None = None
    ) -> None:
        """Train a fresh model with ``wmenv train`` (seed data, Trainer, collection with the model's policy).

        Args:
            steps: real env steps in all (seed data + collection phases).
            epochs: epochs of ``updates_per_epoch`` updates, with ``env_steps_per_epoch`` env steps of
                policy collection between them.
            seed: run seed.
            log_dir: the run directory (a fresh subdirectory if it exists; temporary when ``None``).

        Raises:
            ConfigError: a bad budget, env kwargs (``wmenv train`` makes envs from the id only) or a
                failed run (its error is printed on stderr).
        """
        from wmenv.train.session import Schedule, train

        updates, seed_steps, every, collect = self._schedule(steps, epochs)
        run_dir = train(
            self.name, self.env_id, steps=updates, preset=self.preset, seed=seed, device=self.device,
            schedule=Schedule(seed_steps=seed_steps, collect_every=every, collect_steps=collect),
            env_kwargs=self.env_kwargs, run_dir=self._fresh_run_dir(log_dir), progress=False, producer=f"benchmark agent {self.name}",
        )
        self.run_dir = run_dir
        self.load_checkpoint(run_dir)

    def _fresh_run_dir(self, log_dir: str | None) -> Path:
        if log_dir is None:
            self._tmp = self._tmp or tempfile.TemporaryDirectory(prefix=f"wmenv-{self.name}-")
            root = Path(self._tmp.name)
            return next(root / f"run{i}" for i in range(10_000) if not (root / f"run{i}").exists())
        base = Path(log_dir)
        if not base.exists():
            return base
        return next(base / f"run{i}" for i in range(10_000) if not (base / f"run{i}").exists())

    def close(self) -> None:
        """Close the real env and remove a temporary run directory."""
        self._eval.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
