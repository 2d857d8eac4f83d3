"""The one way wmenv trains a registered model on a real env: :class:`TrainingRun` and :func:`train`.

A training run is: a run directory, the model (from the registry), a replay of real experience, the
generic :class:`~wmenv.train.trainer.Trainer`, a :class:`~wmenv.train.collect.Collector` on the real
env, a collection schedule and a :class:`~wmenv.train.runinfo.RunInfo` record. ``wmenv train``,
``wmenv demo``, benchmark agents' ``train()`` and the recipes all build it here::

    from wmenv.train import train
    run_dir = train("dreamer-wm", "CartPole-v1", steps=300, preset="tiny", seed_steps=1000)

    run = TrainingRun.start("dreamer", "CartPole-v1", steps=2000, collect_every=100, collect_steps=500)
    run.run()        # seed collection, then train/collect phases; checkpoints include every collected row
    run.close()

Families trained in stages (``ModelSpec.stages``, World Models) are handed to their
``run_stages`` by :func:`train` with ``stage=``.
Runs trained from a dataset with no env interaction (``train(model, dataset=DATA)``) are
:class:`wmenv.train.offline.OfflineTrainingRun`; :meth:`TrainingRun.resume` hands them over.
"""

from __future__ import annotations

import inspect
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmenv.config import apply_overrides
from wmenv.core.errors import ConfigError, RunDirError
from wmenv.train.collect import Collector, CollectStats, make_env
from wmenv.train.distributed import init_distributed
from wmenv.train.logging import plot_metrics
from wmenv.train.replay import load_replay, make_replay
from wmenv.train.runinfo import RunInfo, new_run_dir
from wmenv.train.trainer import CHECKPOINT, Trainer, TrainerConfig, replay_scratch

__all__ = ["Schedule", "TrainingRun", "train", "run_stage", "seed_everything", "trainer_config_for", "env_time_limit"]


@dataclass(frozen=True)
class Schedule:
    """When a run collects real experience.

    Attributes:
        seed_steps: random real steps before the first update.
        collect_every: updates between collection phases (0: never collect after the seed data).
        collect_steps: real steps per collection phase (with the model's policy when it acts).
        num_envs: real sub-envs stepped together.
    """

    seed_steps: int = 1000
    collect_every: int = 0
    collect_steps: int = 0
    num_envs: int = 1

    def __post_init__(self) -> None:
        for name in ("seed_steps", "collect_every", "collect_steps", "num_envs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "num_envs" else 0):
                low = 1 if name == "num_envs" else 0
                raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")

    def to_dict(self) -> dict[str, int]:
        """Plain data for :class:`RunInfo`."""
        return {k: int(getattr(self, k)) for k in ("seed_steps", "collect_every", "collect_steps", "num_envs")}


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def trainer_config_for(
    spec: Any, preset: str | None, seed: int, overrides: Mapping[str, Any] | None = None
) -> TrainerConfig:
    """The :class:`TrainerConfig` of a run: size preset, the family's suggestions, then ``overrides``."""
    preset = preset or spec.default_preset
    base = TrainerConfig.tiny() if preset in ("debug", "tiny") else TrainerConfig()
    base = apply_overrides(base, {**spec.trainer_overrides(preset), "seed": seed})
    return apply_overrides(base, {k: v for k, v in dict(overrides or {}).items() if v is not None})


def env_time_limit(env: Any) -> int | None:
    """The env's ``max_episode_steps`` (from its spec or a ``TimeLimit`` wrapper), else ``None``."""
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    if limit is None:
        current = env
        while current is not None:
            limit = getattr(current, "_max_episode_steps", None)
            if limit is not None:
                break
            current = getattr(current, "env", None)
    return int(limit) if limit else None


def model_collection_policy(model: Any, spec: Any, seed: int) -> Any:
    """The policy a run collects with: the family's ``policy`` exploring, else ``None`` (random)."""
    if spec.policy is None:
        return None
    try:
        return spec.policy(model, seed=seed, explore=True)
    except ValueError:  # e.g. a model that can plan only in another observation mode
        return None


class TrainingRun:
    """A model training on a real env's experience, with checkpoints that lose nothing.

    Build it with :meth:`start` (a new run) or :meth:`resume`. :meth:`run` does seed collection, then
    alternates ``collect_every`` updates with ``collect_steps`` real steps until ``config.steps``
    updates. Before every checkpoint the collector writes the rows of unfinished episodes, so a
    checkpoint's replay holds every transition collected up to it.
    """

    def __init__(self, trainer: Trainer, spec: Any, schedule: Schedule, *, progress: bool = True) -> None:
        self.trainer, self.spec, self.schedule, self.progress = trainer, spec, schedule, progress
        self._collector: Collector | None = None
        trainer.before_save.append(self.flush)
        if callable(getattr(trainer.model, "preview", None)):  # image strips at every checkpoint
            trainer.before_save.append(self.write_preview)

    # ------------------------------------------------------------------ construction
    @classmethod
    def start(
        cls,
        model: str,
        env: str,
        *,
        steps: int | None = None,
        preset: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        seed: int = 0,
        schedule: Schedule | None = None,
        trainer: TrainerConfig | Mapping[str, Any] | None = None,
        run_dir: str | os.PathLike | None = None,
        runs_root: str | os.PathLike = "runs",
        replay: str | os.PathLike | None = None,
        capacity: int = 100_000,
        slice_len: int = 16,
        device: str | None = None,
        progress: bool = True,
        producer: str = "wmenv.train",
    ) -> TrainingRun:
        """A new run of registered ``model`` on real env ``env``.

        Args:
            model: registered model name (``wmenv.list_models()``).
            env: real env id (``wmenv.make_env``).
            steps: total gradient updates (default: the trainer config's).
            preset: model config preset.
            overrides: model config overrides (dot notation).
            env_kwargs: ``make_env`` arguments (``pixels=True``, ...).
            seed: seeds torch, NumPy, ``random``, the replay sampler and the real envs.
            schedule: collection schedule (default: 1000 random seed steps, no later collection).
            trainer: a full :class:`TrainerConfig`, or overrides of the preset's one.
            run_dir: the new run directory (default ``runs_root/<time>_<model>_<env>``).
            runs_root: parent of default run directories.
            replay: start from a replay saved by ``wmenv collect`` instead of empty.
            capacity: replay rows kept (ring buffer).
            slice_len: default sequence length of the replay sampler.
            device: torch device (overrides the trainer config's).
            progress: progress bars.
            producer: recorded in the run metadata.

        Raises:
            UnknownModelError / UnknownEnvError / ConfigError: before anything is written.
        """
        from wmenv.registry import create_config, create_model, get_model_spec

        spec = get_model_spec(model)  # a staged family trains its current gradient stage here
        schedule = schedule or Schedule()
        env_kwargs = dict(env_kwargs or {})
        config = create_config(spec.name, preset, dict(overrides or {}))  # unknown keys/presets raise here
        if isinstance(trainer, TrainerConfig):
            tconf = trainer
        else:
            tconf = trainer_config_for(spec, preset, seed, trainer)
        flags = {"steps": steps, "device": device, "progress": None if progress else False}
        tconf = apply_overrides(tconf, {k: v for k, v in flags.items() if v is not None})
        seed_everything(seed)
        real = make_env(env, **env_kwargs)
        try:
            net = create_model(spec.name, env=real, config=config)
            limit = env_time_limit(real)
            spaces = {"observation_space": real.observation_space, "action_space": real.action_space}
        finally:
            real.close()
        ctx = init_distributed(tconf.device)
        if ctx.active and run_dir is None:
            raise ConfigError("under torchrun every rank must name the same run directory: pass run_dir (--run-dir)")
        if ctx.is_main:  # only once everything above worked
            path = new_run_dir(runs_root, f"{spec.name}_{env}", run_dir=run_dir)
        ctx.barrier()
        if not ctx.is_main:
            path = Path(run_dir)
        scratch = replay_scratch(path, ctx.rank)
        if replay is not None:
            buffer = load_replay(replay, scratch, capacity=max(int(capacity), 1))
        else:
            buffer = make_replay(capacity, scratch, slice_len=slice_len, seed=seed)
        trainer_obj = Trainer(net, buffer, tconf, path, model_name=spec.name, model_config=config,
                              family=spec.family, **spaces)
        from wmenv.train.checkpoint import wmenv_version

        trainer_obj.run_info = RunInfo(
            model=spec.name, family=spec.family, env_id=env, env_kwargs=env_kwargs, preset=preset,
            overrides={k: str(v) for k, v in dict(overrides or {}).items()}, seed=int(seed),
            max_episode_steps=limit, schedule=schedule.to_dict(), producer=producer, wmenv_version=wmenv_version(),
        )
        trainer_obj.user_state = {"env_steps": 0}
        return cls(trainer_obj, spec, schedule, progress=progress)

    @classmethod
    def resume(
        cls,
        run_dir: str | os.PathLike,
        *,
        trainer: Mapping[str, Any] | None = None,
        progress: bool = True,
    ) -> TrainingRun:
        """Continue the run in ``run_dir`` (model, optimizers, replay, step, RNG, schedule).

        Args:
            run_dir: a run directory with ``checkpoint.pt``.
            trainer: :class:`TrainerConfig` overrides (e.g. ``{"steps": 4000}``).
            progress: progress bars.

        Raises:
            RunDirError: no run or no checkpoint there; a run that records no env.
            CheckpointError: an unreadable checkpoint or replay snapshot.
        """
        from wmenv.registry import get_model_spec

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunDirError(f"cannot resume {run_dir}: no such run directory")
        if not (run_dir / CHECKPOINT).is_file():
            raise RunDirError(f"cannot resume {run_dir}: no {CHECKPOINT} in it (the run never reached a checkpoint)")
        overrides = {k: v for k, v in dict(trainer or {}).items() if v is not None}
        if not progress:
            overrides["progress"] = False
        trainer_obj = Trainer.resume(run_dir, overrides=overrides)
        if "dataset" in trainer_obj.user_state:  # trained from a dataset: continue offline
            from wmenv.train.offline import OfflineTrainingRun

            return OfflineTrainingRun.attach(trainer_obj, progress=progress)
        info = trainer_obj.run_info
        if info is None or not info.env_id:
            trainer_obj.close()
            raise RunDirError(f"cannot resume {run_dir}: its run metadata records no real env to collect from")
        spec = get_model_spec(info.model)
        schedule = Schedule(**{k: int(v) for k, v in info.schedule.items()
                               if k in ("seed_steps", "collect_every", "collect_steps", "num_envs")})
        return cls(trainer_obj, spec, schedule, progress=progress)

    # ------------------------------------------------------------------ accessors
    @property
    def model(self) -> torch.nn.Module:
        """The model being trained."""
        return self.trainer.model

    @property
    def replay(self) -> Any:
        """The run's replay buffer."""
        return self.trainer.replay

    @property
    def run_dir(self) -> Path:
        """The run directory."""
        return self.trainer.run_dir

    @property
    def info(self) -> RunInfo:
        """The run record."""
        assert self.trainer.run_info is not None
        return self.trainer.run_info

    @property
    def env_steps(self) -> int:
        """Real env steps collected so far (over the whole run, resumes included)."""
        return int(self.trainer.user_state.get("env_steps", 0))

    # ------------------------------------------------------------------ collection
    @property
    def collector(self) -> Collector:
        """The collector on the run's real env (made on first use, seeded by seed + env steps)."""
        if self._collector is None:
            info = self.info
            self._collector = Collector(
                info.env_id, self.replay, num_envs=self.schedule.num_envs, seed=info.seed + self.env_steps,
                progress=self.progress and self.trainer.dist.is_main, env_kwargs=dict(info.env_kwargs),
            )
        return self._collector

    def collect(self, steps: int, policy: Callable[[Any], Any] | None = None) -> CollectStats:
        """Take ``steps`` real steps with ``policy`` (``None``: uniformly random) and count them."""
        collector = self.collector
        collector.policy = policy
        try:
            stats = collector.collect(steps)
        finally:
            collector.policy = None
        self.trainer.user_state["env_steps"] = self.env_steps + stats.steps
        return stats

    def flush(self) -> int:
        """Write the rows of unfinished episodes into the replay (called before every checkpoint)."""
        return self._collector.flush() if self._collector is not None else 0

    def preview_batch(self) -> Any:
        """A few replay sequences for :meth:`write_preview` (the sampler's RNG is left where it was)."""
        from wmenv.train.preview import replay_preview_batch

        return replay_preview_batch(self.replay, self.trainer.config.seq_len)

    def write_preview(self) -> Path | None:
        """``run_dir/previews/step_<step>.png`` from ``model.preview`` (see :mod:`wmenv.train.preview`)."""
        from wmenv.train.preview import write_preview

        return write_preview(self.model, self.preview_batch(), self.run_dir, self.trainer.step)

    # ------------------------------------------------------------------ the loop
    def run(self) -> Path:
        """Seed collection (new runs), then train/collect phases until ``config.steps`` updates; save.

        Returns:
            The checkpoint path.
        """
        trainer, sched = self.trainer, self.schedule
        if trainer.step == 0 and self.env_steps == 0 and sched.seed_steps > 0:
            self.collect(sched.seed_steps)
            self.flush()
            if len(self.replay) == 0:
                raise ConfigError("the seed collection wrote no rows; raise seed_steps")
        policy = (
            model_collection_policy(self.model, self.spec, self.info.seed + self.env_steps)
            if sched.collect_steps else None
        )
        target = trainer.config.steps
        every = sched.collect_every if sched.collect_steps else 0
        while True:
            # collect at every multiple of collect_every, exactly once (also right after a resume)
            due = every and 0 < trainer.step < target and trainer.step % every == 0
            if due and trainer.user_state.get("last_collect_step") != trainer.step:
                stats = self.collect(sched.collect_steps, policy)
                trainer.user_state["last_collect_step"] = trainer.step
                row = {"collect/env_steps": self.env_steps, "collect/episodes": stats.episodes}
                if stats.episode_returns:
                    row["collect/return"] = stats.mean_return
                trainer.logger.log(trainer.step, row)
            if trainer.step >= target:
                break
            left = target - trainer.step
            trainer.train(min(left, every - trainer.step % every) if every else left)
        return self.save()

    def save(self) -> Path:
        """Write the checkpoint (the replay first receives the rows of unfinished episodes)."""
        return self.trainer.save()

    def close(self, plot: bool = True) -> None:
        """Close the collector and logger; plot ``metrics.png`` from ``metrics.csv``."""
        if self._collector is not None:
            self._collector.close()
            self._collector = None
        self.trainer.close()
        if plot and (self.run_dir / "metrics.csv").is_file():
            try:
                plot_metrics(self.run_dir / "metrics.csv", self.run_dir / "metrics.png")
            except ValueError:
                pass


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def run_stage(
    model: str,
    stage: str | None,
    env: str | None = None,
    *,
    resume: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    **start_kwargs: Any,
) -> dict[str, Any]:
    """Run one stage (or ``"all"``) of a staged family (``ModelSpec.stages``) via its ``run_stages``.

    Returns:
        The family's result dict (``run_dir``, ``trained_stages``, ...).
    """
    from wmenv.registry import get_model_spec

    spec = get_model_spec(model)
    if spec.run_stages is None:
        raise ConfigError(f"model {spec.name!r} is not trained in stages; drop stage={stage!r}")
    if stage not in (*spec.stages, "all"):
        raise ConfigError(f"unknown stage {stage!r} for {spec.name}; expected one of {[*spec.stages, 'all']}")
    target = resume or run_dir
    if target is None:
        if not env:
            raise ConfigError("a new staged run needs an env id (or the run_dir of an existing run)")
        target = new_run_dir(start_kwargs.get("runs_root", "runs"), f"{spec.name}_{env}")
    kwargs = {
        "env_id": env, "env_kwargs": start_kwargs.get("env_kwargs") or None,
        "preset": start_kwargs.get("preset") or spec.default_preset,
        "overrides": dict(start_kwargs.get("overrides") or {}), "seed": int(start_kwargs.get("seed", 0)),
        "device": start_kwargs.get("device") or "cpu", "progress": bool(start_kwargs.get("progress", True)),
    }
    result = dict(spec.run_stages(stage, target, **{k: v for k, v in kwargs.items() if _accepts(spec.run_stages, k)}))
    result.setdefault("run_dir", str(target))
    return result


def train(
    model: str,
    env: str | None = None,
    *,
    steps: int | None = None,
    stage: str | None = None,
    resume: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    dataset: str | os.PathLike | None = None,
    **start_kwargs: Any,
) -> Path:
    """Train a registered model on a real env (or a dataset); the one call behind ``wmenv train``.

    Args:
        model: registered model name.
        env: real env id (a new run).
        steps: total gradient updates.
        stage: for staged families (``ModelSpec.stages``): the stage to run or ``"all"``.
        resume: continue this run directory instead of starting one.
        run_dir: the new run's directory.
        dataset: train offline from this dataset (``wmenv collect ... --shard-size S``) instead of an
            env (:class:`wmenv.train.offline.OfflineTrainingRun`; ``**start_kwargs`` are its ``start``'s).
        **start_kwargs: see :meth:`TrainingRun.start` (``preset``, ``overrides``, ``env_kwargs``, ``seed``,
            ``schedule``, ``trainer``, ``capacity``, ``device``, ``progress``, ...).

    Returns:
        The run directory.
    """
    from wmenv.registry import get_model_spec

    spec = get_model_spec(model)
    if stage is not None:
        result = run_stage(spec.name, stage, env, resume=resume, run_dir=run_dir, **start_kwargs)
        return Path(result["run_dir"])
    if resume is not None:
        trainer = {**dict(start_kwargs.get("trainer") or {}), "steps": steps}
        session = TrainingRun.resume(resume, trainer=trainer, progress=bool(start_kwargs.get("progress", True)))
    elif dataset is not None:
        from wmenv.train.offline import OfflineTrainingRun

        session = OfflineTrainingRun.start(spec.name, dataset, steps=steps, run_dir=run_dir, **start_kwargs)
    else:
        if not env:
            raise ConfigError(f"train({model!r}) needs an env id (or resume=RUN)")
        session = TrainingRun.start(spec.name, env, steps=steps, run_dir=run_dir, **start_kwargs)
    try:
        session.run()
    except KeyboardInterrupt:
        session.save()  # keep what was learned and collected
        session.close(plot=False)
        raise
    except BaseException:
        session.close(plot=False)
        raise
    session.close()
    return session.run_dir
