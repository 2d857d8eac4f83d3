"""Stage driver of the IRIS family: per epoch, collect -> tokenizer -> world model -> actor-critic.

Usage::

    wmenv train iris --env MinAtar/Breakout-v1 --preset minatar --stage all --run-dir runs/iris-breakout
    python -m wmenv.models.iris.train --env MinAtar/Breakout-v1 --preset minatar --run-dir runs/iris-breakout
    python -m wmenv.models.iris.train --run-dir runs/iris-breakout --stage world_model   # one more round

Built on :class:`wmenv.train.TrainingRun`: its collector fills the replay, its one
:class:`~wmenv.train.Trainer` (three AdamW groups, one per component) does every update, and its
checkpoints (``run_dir/checkpoint.pt``, replay snapshot, ``run.json``) are what :func:`wmenv.open_run`
reads. Progress is kept in the checkpoint (``user_state``: the steps done of the stage being
trained, the epoch/stage pairs finished), so a killed run resumes where its last checkpoint left it.
Stages before their prerequisites raise :class:`~wmenv.models.iris.model.StageOrderError`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from wmenv.config import apply_overrides, parse_overrides
from wmenv.core.errors import ConfigError, WMEnvError
from wmenv.models.iris.config import IRISConfig
from wmenv.models.iris.model import IRIS, StageOrderError
from wmenv.train.checkpoint import load_checkpoint
from wmenv.train.replay import replay_as_tensordict, sample_sequences
from wmenv.train.session import Schedule, TrainingRun
from wmenv.train.trainer import CHECKPOINT

__all__ = ["STAGES", "RESUME_OVERRIDABLE", "run_stages", "main"]

MODEL_NAME = FAMILY = "iris"
#: stages of ``run_stages`` (``ModelSpec.stages``); ``"all"`` runs the whole schedule
STAGES = ("collect", "tokenizer", "world_model", "actor_critic")
#: config keys that may change when a run continues (the others fix the architecture)
RESUME_OVERRIDABLE = (
    "schedule", "tokenizer.lr", "tokenizer.grad_clip", "tokenizer.commitment", "world_model.lr",
    "world_model.grad_clip", "world_model.weight_decay", "actor_critic.lr", "actor_critic.grad_clip",
    "actor_critic.entropy", "actor_critic.gamma", "actor_critic.lam", "actor_critic.horizon", "actor_critic.burn_in",
)


def _check_resume_overrides(overrides: dict[str, Any]) -> None:
    bad = [k for k in overrides if not any(k == a or k.startswith(a + ".") for a in RESUME_OVERRIDABLE)]
    if bad:
        raise ConfigError(
            f"cannot change {sorted(bad)} of an existing IRIS run (they fix the architecture); only "
            f"{list(RESUME_OVERRIDABLE)} may change on resume. Start a new run dir instead"
        )


def _plan(cfg: IRISConfig) -> list[tuple[str, int]]:
    """Every ``(stage, epoch)`` of the schedule, in order."""
    s, plan = cfg.schedule, []
    for e in range(s.epochs):
        if (e == 0 and s.seed_steps) or (e < s.collect_epochs and s.collect_steps):
            plan.append(("collect", e))
        for stage, start, steps in (("tokenizer", s.tokenizer_start, s.tokenizer_steps),
                                    ("world_model", s.world_model_start, s.world_model_steps),
                                    ("actor_critic", s.actor_critic_start, s.actor_critic_steps)):
            if e >= start and steps:
                plan.append((stage, e))
    return plan


def _longest_episode(run: TrainingRun) -> int:
    episodes = replay_as_tensordict(run.replay)["episode"].reshape(-1)
    return int(torch.unique(episodes, return_counts=True)[1].max())


def _collect(run: TrainingRun, epoch: int) -> dict[str, Any]:
    model: IRIS = run.model
    s = model.config.schedule
    steps = (s.seed_steps if epoch == 0 and run.env_steps == 0 else 0) + (s.collect_steps if epoch < s.collect_epochs
                                                                         else 0)
    policy = None
    if "actor_critic" in model.trained_stages:
        policy = model.make_policy(explore=True, seed=run.info.seed + 7919 * (epoch + 1))
    was = model.training
    model.eval()
    try:
        stats = run.collect(steps, policy)
    finally:
        model.train(was)
    row = {"collect/env_steps": run.env_steps, "collect/episodes": stats.episodes}
    if stats.episode_returns:
        row["collect/return"] = stats.mean_return
    run.trainer.logger.log(run.trainer.step, row)
    returns = run.trainer.user_state.setdefault("returns", {})
    returns[str(epoch)] = stats.mean_return if stats.episode_returns else None
    print(f"[collect@{epoch}] {stats.steps} steps ({'policy' if policy else 'random'}), {stats.episodes} episodes, "
          f"mean return {stats.mean_return:.2f}; {run.env_steps} env steps in all", flush=True)
    return row


def _train_stage(run: TrainingRun, stage: str, epoch: int) -> None:
    """``schedule.<stage>_steps`` updates of ``stage`` (continuing after a resume)."""
    trainer, model = run.trainer, run.model
    cfg: IRISConfig = model.config
    s = cfg.schedule
    model.set_mode(stage)
    starts = trainer.user_state.setdefault("stage_start", {})
    key = f"{stage}@{epoch}"
    starts.setdefault(key, trainer.step)
    total = getattr(s, f"{stage}_steps")
    remaining = total - (trainer.step - starts[key])
    longest = _longest_episode(run)
    if stage == "tokenizer":
        b, t = s.tokenizer_batch, 1
    elif stage == "world_model":
        b, t = s.world_model_batch, min(cfg.world_model.context_steps, longest)
        if t < 2:
            raise ConfigError("no episode of the replay has 2 rows; collect more data before training the world model")
    else:
        b, t = s.actor_critic_batch, min(cfg.actor_critic_context, longest)
    sums: dict[str, float] = {}
    count, t0 = 0, time.perf_counter()
    for i in range(max(remaining, 0)):
        metrics = trainer.update(sample_sequences(trainer.replay, b, t))
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        count += 1
        last = i == remaining - 1
        if count and (trainer.step % s.log_every == 0 or last):
            row = {k: v / count for k, v in sums.items()}
            trainer.logger.log(trainer.step, row)
            trainer.history.append({"step": float(trainer.step), **row})
            sums, count = {}, 0
        if s.checkpoint_every and trainer.step % s.checkpoint_every == 0 and not last:
            run.save()
    if remaining > 0:
        summary = {k: round(v, 4) for k, v in (trainer.history[-1] if trainer.history else {}).items()
                   if k.startswith(("loss_", stage))}
        print(f"[{key}] {remaining} updates (batch {b}x{t}) in {time.perf_counter() - t0:.1f}s; {summary}", flush=True)
    model.mark_trained(stage)


def _open(run_dir: Path, stage: str, env_id: str | None, env_kwargs: dict[str, Any] | None, preset: str | None,
          overrides: dict[str, Any], seed: int, device: str, progress: bool) -> TrainingRun:
    if (run_dir / CHECKPOINT).is_file():
        load_checkpoint(run_dir / CHECKPOINT, expected_family=FAMILY)
        _check_resume_overrides(overrides)
        run = TrainingRun.resume(run_dir, trainer={"device": device}, progress=progress)
        if env_id is not None and env_id != run.info.env_id:
            run.close(plot=False)
            raise ConfigError(f"{run_dir} is a run on {run.info.env_id!r}, not {env_id!r}; drop --env or use a new run")
        cfg = apply_overrides(run.trainer.model_config, overrides)
        run.trainer.model_config = run.model.config = cfg
        return run
    if stage in ("world_model", "actor_critic"):
        raise StageOrderError(f"stage {stage!r} needs a trained 'tokenizer' first and {run_dir} holds no run yet; "
                              "run --stage collect, --stage tokenizer (or --stage all) first")
    if env_id is None:
        raise ConfigError("a new IRIS run needs an env id (--env)")
    from wmenv.registry import create_config

    cfg: IRISConfig = create_config(MODEL_NAME, preset, overrides)
    s = cfg.schedule
    budget = s.seed_steps + s.collect_steps * min(s.collect_epochs, s.epochs)
    return TrainingRun.start(
        MODEL_NAME, env_id, preset=preset, overrides=overrides, env_kwargs=env_kwargs, seed=seed,
        schedule=Schedule(seed_steps=s.seed_steps, collect_steps=s.collect_steps, num_envs=s.num_envs),
        trainer={"batch_size": s.world_model_batch, "seq_len": cfg.world_model.context_steps, "log_every": s.log_every,
                 "checkpoint_every": 0},
        run_dir=run_dir, capacity=int(1.5 * budget) + 1000, device=device, progress=progress,
        producer="wmenv train iris --stage",
    )


def run_stages(
    stage: str,
    run_dir: str | Path,
    *,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Run one stage (or ``"all"``) of the IRIS run in ``run_dir``, creating it when it does not exist.

    Args:
        stage: ``"collect"``, ``"tokenizer"``, ``"world_model"``, ``"actor_critic"`` (one round at the
            current epoch; a no-op when that round is done), or ``"all"``: every (stage, epoch) of the
            schedule not done yet.
        run_dir: the run directory (empty or missing for a new run).
        env_id: real env id of a new run (image observations; an existing run keeps its own).
        env_kwargs: ``make_env`` arguments of a new run.
        preset: config preset of a new run (``tiny``, ``minatar``, ``atari100k``).
        overrides: dot-notation config overrides (on an existing run: :data:`RESUME_OVERRIDABLE` keys only).
        seed: seed of a new run.
        device: torch device.
        progress: progress bars.

    Returns:
        ``{"run_dir", "trained_stages", "env_steps", "updates", "returns" (epoch -> mean collected return)}``.

    Raises:
        StageOrderError: a stage before its prerequisites. ConfigError: unknown stage, bad overrides, a
        new run without an env id. UnsupportedSpaceError: an env without image observations.
    """
    if stage not in (*STAGES, "all"):
        raise ConfigError(f"unknown stage {stage!r}; expected one of {[*STAGES, 'all']}")
    run_dir = Path(run_dir)
    overrides = dict(overrides or {})
    run = _open(run_dir, stage, env_id, dict(env_kwargs or {}), preset, overrides, seed, device, progress)
    model: IRIS = run.model
    us = run.trainer.user_state
    done = set(us.setdefault("done", []))
    epoch = int(us.get("epoch", 0))
    if stage == "all":
        todo = [(s, e) for s, e in _plan(model.config) if f"{s}@{e}" not in done]
    else:
        todo = [(stage, epoch)] if f"{stage}@{epoch}" not in done else []
        if stage != "collect" and run.env_steps == 0:
            todo.insert(0, ("collect", epoch))
    try:
        for s, e in todo:
            us["epoch"] = e
            if s == "collect":
                _collect(run, e)
            else:
                model.require_trained(s)
                _train_stage(run, s, e)
            us.setdefault("done", []).append(f"{s}@{e}")
            run.save()
        model.set_mode("joint")
        run.save()
    except KeyboardInterrupt:
        run.save()
        run.close(plot=False)
        raise
    except BaseException:
        run.close(plot=False)
        raise
    run.close()
    return {
        "run_dir": str(run_dir), "trained_stages": list(model.trained_stages), "env_steps": run.env_steps,
        "updates": run.trainer.step, "returns": dict(us.get("returns", {})),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wmenv.models.iris.train``: see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m wmenv.models.iris.train", description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. schedule.epochs=10)")
    p.add_argument("--env", default=None, help="real env id (new runs), e.g. MinAtar/Breakout-v1")
    p.add_argument("--stage", default="all", choices=[*STAGES, "all"])
    p.add_argument("--run-dir", required=True)
    p.add_argument("--preset", default="tiny", help="tiny, minatar or atari100k")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    try:
        t0 = time.perf_counter()
        result = run_stages(args.stage, args.run_dir, env_id=args.env, preset=args.preset,
                            overrides=parse_overrides(args.overrides), seed=args.seed, device=args.device,
                            progress=not args.no_progress)
    except WMEnvError as err:
        print(f"wmenv.models.iris.train: error: {err}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - t0:.1f}s: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
