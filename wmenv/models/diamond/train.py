"""Stage driver of the diffusion family: collect -> world model -> actor-critic, repeated (DIAMOND's loop).

Usage::

    wmenv train diamond --env MinAtar/Breakout-v1 --preset minatar --stage all --run-dir runs/diamond-breakout
    wmenv train dit --env MinAtar/Breakout-v1 --preset tiny --stage all --run-dir runs/dit-smoke
    wmenv train diamond --run-dir runs/diamond-breakout --stage all schedule.epochs=1200   # continue, longer

One run is one :class:`wmenv.train.TrainingRun` (run directory, replay, :class:`~wmenv.train.Trainer`,
collector, ``run.json``), so :func:`wmenv.open_run` works on it at every checkpoint. Its plan is
epoch 0 = ``collect@0`` (``schedule.seed_steps`` random steps), ``world_model@0``
(``first_world_model_steps`` updates), ``actor_critic@0`` (``first_actor_critic_steps``), then epochs
``1..schedule.epochs`` of ``collect@e`` (``collect_steps`` env steps with the actor-critic,
epsilon-greedy), ``world_model@e`` and ``actor_critic@e``. One Trainer holds one AdamW per part
(denoiser, reward/termination, actor-critic) for the whole run; the agent's phase selects the
losses and the Trainer's batch shape is switched per phase (``[batch_size, seq_len]`` for the world
model, ``[actor_critic_batch_size, L]`` burn-in contexts for the actor-critic).

Resuming: the plan items done and the Trainer step at which the current one started are kept in the
checkpoint (``user_state``), so a killed run continues where its last checkpoint left it (a
checkpoint every ``save_every`` epochs and at the end). ``--stage collect|world_model|actor_critic``
runs only the next item of the plan, which must be of that stage.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from wmenv.config import apply_overrides
from wmenv.core.errors import ConfigError
from wmenv.models.diamond.agent import DiamondAgent
from wmenv.models.diamond.config import DiamondConfig
from wmenv.train.session import Schedule, TrainingRun
from wmenv.train.trainer import CHECKPOINT, TrainerConfig

__all__ = ["STAGES", "RESUME_OVERRIDABLE", "run_stages", "stage_driver", "plan"]

#: Stages of one epoch, in order.
STAGES = ("collect", "world_model", "actor_critic")
#: Config keys that may change when continuing a run (the rest fix the architecture).
RESUME_OVERRIDABLE = ("schedule", "sampling_steps", "actor_critic.horizon", "actor_critic.gamma",
                      "actor_critic.lam", "actor_critic.entropy", "actor_critic.value_weight",
                      "actor_critic.explore_epsilon", "actor_critic.eval_sample", "optim")
#: Checkpoint every this many epochs (and at the end of every call).
SAVE_EVERY = 10


def plan(config: DiamondConfig) -> list[tuple[str, int]]:
    """Every ``(stage, epoch)`` of a complete run."""
    return [(s, e) for e in range(config.schedule.epochs + 1) for s in STAGES]


def _updates(config: DiamondConfig, stage: str, epoch: int) -> int:
    s = config.schedule
    if stage == "world_model":
        return s.first_world_model_steps if epoch == 0 else s.world_model_steps
    return s.first_actor_critic_steps if epoch == 0 else s.actor_critic_steps


def _trainer_config(config: DiamondConfig, seed: int, device: str, progress: bool, preset: str | None) -> TrainerConfig:
    s = config.schedule
    total = sum(_updates(config, st, e) for st, e in plan(config) if st != "collect")
    small = preset in ("debug", "tiny")
    return TrainerConfig(steps=max(total, 1), batch_size=s.batch_size, seq_len=s.seq_len, log_every=10 if small else 50,
                         checkpoint_every=0, device=device, seed=seed, progress=progress, tensorboard=not small)


def _check_resume_overrides(overrides: dict[str, Any]) -> None:
    bad = [k for k in overrides if not any(k == p or k.startswith(p + ".") for p in RESUME_OVERRIDABLE)]
    if bad:
        raise ConfigError(
            f"cannot change {sorted(bad)} of an existing run (they fix the architecture); only {list(RESUME_OVERRIDABLE)} "
            "may change on resume. Start a new --run-dir instead"
        )


def _open(model: str, run_dir: Path, env_id: str | None, env_kwargs: dict[str, Any] | None, preset: str | None,
          overrides: dict[str, Any], seed: int, device: str, progress: bool) -> TrainingRun:
    from wmenv.registry import create_config, get_model_spec

    spec = get_model_spec(model)
    if (run_dir / CHECKPOINT).is_file():
        _check_resume_overrides(overrides)
        session = TrainingRun.resume(run_dir, trainer={"device": device}, progress=progress)
        if session.info.model != spec.name:
            session.close(plot=False)
            raise ConfigError(f"{run_dir} is a run of {session.info.model!r}, not {spec.name!r}; use "
                              f"`wmenv train {session.info.model} --run-dir {run_dir}` or a new run dir")
        if env_id is not None and env_id != session.info.env_id:
            session.close(plot=False)
            raise ConfigError(f"{run_dir} is a run on {session.info.env_id!r}, not {env_id!r}; drop --env or use a "
                              "new run dir")
        if overrides:
            cfg = apply_overrides(session.trainer.model_config, overrides)
            agent: DiamondAgent = session.model
            session.trainer.model_config = agent.config = agent.world_model.config = cfg
        return session
    if env_id is None:
        raise ConfigError(f"a new {spec.name} run needs an env id (--env); {run_dir} holds no run yet")
    config = create_config(spec.name, preset, overrides)  # unknown keys and bad values raise before anything is made
    s = config.schedule
    return TrainingRun.start(
        spec.name, env_id, preset=preset, overrides=overrides, env_kwargs=env_kwargs, seed=seed,
        schedule=Schedule(seed_steps=0, num_envs=s.num_envs), trainer=_trainer_config(config, seed, device, progress,
                                                                                      preset),
        run_dir=run_dir, capacity=int(1.2 * s.total_env_steps) + 1000, slice_len=s.seq_len, device=device,
        progress=progress, producer=f"wmenv train {spec.name} --stage",
    )


def _collect(session: TrainingRun, epoch: int, policy: Any) -> dict[str, float]:
    cfg: DiamondConfig = session.trainer.model_config
    steps = cfg.schedule.seed_steps if epoch == 0 else cfg.schedule.collect_steps
    stats = session.collect(steps, None if epoch == 0 else policy)
    session.flush()
    row = {"collect/env_steps": float(session.env_steps), "collect/episodes": float(stats.episodes)}
    if stats.episode_returns:
        row["collect/return"] = stats.mean_return
    session.trainer.logger.log(session.trainer.step, row)
    return row


def _train(session: TrainingRun, stage: str, epoch: int) -> dict[str, float]:
    trainer = session.trainer
    agent: DiamondAgent = trainer.model
    cfg: DiamondConfig = trainer.model_config
    s = cfg.schedule
    starts = trainer.user_state.setdefault("stage_start", {})
    key = f"{stage}@{epoch}"
    starts.setdefault(key, trainer.step)
    if stage == "world_model":
        trainer.config = replace(trainer.config, batch_size=s.batch_size, seq_len=s.seq_len)
    else:
        trainer.config = replace(trainer.config, batch_size=s.actor_critic_batch_size, seq_len=cfg.context_frames)
    agent.set_phase(stage)
    remaining = _updates(cfg, stage, epoch) - (trainer.step - starts[key])
    try:
        logged = trainer.train(remaining) if remaining > 0 else []
    finally:
        agent.set_phase("all")
    return {k: v for k, v in (logged[-1] if logged else {}).items() if not k.startswith("lr/")}


def _evaluate(session: TrainingRun, episodes: int, seed: int) -> dict[str, float]:
    from wmenv.envs.evaluate import play_episodes
    from wmenv.envs.make import make_env

    agent: DiamondAgent = session.model
    policy = agent.make_policy(explore=False, seed=seed)
    env = make_env(session.info.env_id, **session.info.env_kwargs)
    try:
        result = play_episodes(env, lambda o: policy(np.asarray(o)[None])[0], episodes, seed=seed,
                               on_episode_start=lambda _: policy.reset())
    finally:
        env.close()
    returns = np.asarray(result["episode_returns"], dtype=np.float64)
    return {"eval_mean": float(returns.mean()), "eval_std": float(returns.std()), "eval_episodes": float(episodes)}


def run_stages(
    stage: str,
    run_dir: str | Path,
    *,
    model: str = "diamond",
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    preset: str | None = "tiny",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``stage`` (the next plan item, which must be of that stage) or ``"all"`` (every item not done).

    Args:
        stage: ``"collect"``, ``"world_model"``, ``"actor_critic"`` or ``"all"``.
        run_dir: the run directory (created when it holds no checkpoint yet).
        model: registered name (``diamond``, ``ddpm`` or ``dit``).
        env_id: real env id (required for a new run; an existing run keeps its own).
        env_kwargs: ``make_env`` arguments of a new run.
        preset: config preset of a new run.
        overrides: config overrides (dot notation; on an existing run only :data:`RESUME_OVERRIDABLE`).
        seed: seed of a new run.
        device: torch device (``"cuda"`` for the minatar / atari100k presets).
        progress: progress bars.

    Returns:
        ``{"run_dir", "trained_stages" (plan items done), "env_steps", "epoch", "last" (metrics of the
        last stage), "eval_mean"?...}``.

    Raises:
        ConfigError: an unknown stage, a stage out of order, bad overrides, a new run without env id.
    """
    if stage not in (*STAGES, "all"):
        raise ConfigError(f"unknown stage {stage!r}; expected one of {[*STAGES, 'all']}")
    run_dir = Path(run_dir)
    if stage not in ("all", "collect") and not (run_dir / CHECKPOINT).is_file():
        raise ConfigError(f"the next stage of a new run is 'collect' (epoch 0), not {stage!r}; run --stage collect "
                          "(or --stage all)")
    session = _open(model, run_dir, env_id, env_kwargs, preset, dict(overrides or {}), int(seed), device, progress)
    trainer = session.trainer
    agent: DiamondAgent = trainer.model
    cfg: DiamondConfig = trainer.model_config
    done = trainer.user_state.setdefault("done", [])
    todo = [(s, e) for s, e in plan(cfg) if f"{s}@{e}" not in done]
    if stage != "all":
        if not todo:
            session.close(plot=False)
            raise ConfigError(f"{run_dir} has done every stage of its plan; raise schedule.epochs to continue")
        if todo[0][0] != stage:
            nxt = todo[0]
            session.close(plot=False)
            raise ConfigError(f"the next stage of {run_dir} is {nxt[0]!r} (epoch {nxt[1]}), not {stage!r}; run "
                              f"--stage {nxt[0]} (or --stage all)")
        todo = todo[:1]
    policy = agent.make_policy(explore=True, seed=int(session.info.seed) + session.env_steps)
    result: dict[str, Any] = {"run_dir": str(run_dir)}
    t0 = time.perf_counter()
    try:
        for s, e in todo:
            trainer.user_state["epoch"] = e
            if s == "collect":
                result["last"] = _collect(session, e, policy)
            else:
                result["last"] = _train(session, s, e)
            done.append(f"{s}@{e}")
            if progress:
                print(f"[{s}@{e}] env steps {session.env_steps}, updates {trainer.step}, "
                      f"{time.perf_counter() - t0:.0f}s: {result['last']}", flush=True)
            if s == "actor_critic" and e % SAVE_EVERY == 0:
                session.save()
        left = [(s, e) for s, e in plan(cfg) if f"{s}@{e}" not in done]
        if stage == "all" and not left and cfg.schedule.eval_episodes > 0:
            result.update(_evaluate(session, cfg.schedule.eval_episodes, seed=1_000_000 + int(session.info.seed)))
            trainer.user_state["eval"] = {k: result[k] for k in ("eval_mean", "eval_std")}
        session.save()
    except KeyboardInterrupt:
        session.save()
        session.close(plot=False)
        raise
    except BaseException:
        session.close(plot=False)
        raise
    session.close(plot=progress)  # metrics.png for interactive runs (drawing it costs seconds)
    result.update(trained_stages=list(done), env_steps=session.env_steps, epoch=trainer.user_state.get("epoch", 0))
    return result


def stage_driver(model: str) -> Any:
    """The ``ModelSpec.run_stages`` of registered model ``model`` (:func:`run_stages` with ``model`` bound)."""

    def driver(stage: str, run_dir: str | Path, *, env_id: str | None = None, env_kwargs: dict[str, Any] | None = None,
               preset: str | None = "tiny", overrides: dict[str, Any] | None = None, seed: int = 0,
               device: str = "cpu", progress: bool = True) -> dict[str, Any]:
        return run_stages(stage, run_dir, model=model, env_id=env_id, env_kwargs=env_kwargs, preset=preset,
                          overrides=overrides, seed=seed, device=device, progress=progress)

    driver.__name__ = driver.__qualname__ = f"run_stages_{model.replace('-', '_')}"
    driver.__doc__ = f"Stage driver of ``{model}``: :func:`wmenv.models.diamond.train.run_stages` with model={model!r}."
    return driver

