"""``wmenv collect`` and ``wmenv train``: collect real experience, train a registered model, resume.

Usage::

    wmenv collect --env CartPole-v1 --steps 10000 --num-envs 4 --out data/cartpole
    wmenv train dreamerv3 --env CartPole-v1 --preset tiny --steps 2000 rssm.deter=64 trainer.lr=3e-4
    wmenv train dreamer-wm --env cartpole-swingup --pixels --threads 1 --preset tiny --steps 500
    wmenv train --resume runs/20260101-120000_dreamerv3_CartPole-v1 --steps 4000

Overrides ``key=value`` go to the model config; ``trainer.<field>=value`` to :class:`TrainerConfig`.
Also runnable as ``python -m wmenv.train.cli train ...``.
"""

from __future__ import annotations

import argparse
import inspect
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wmenv.core.errors import ConfigError, RunDirError, WMEnvError

__all__ = ["register", "main", "run_collect", "run_train"]


def _intermixed(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Let positionals (model, ``key=value`` overrides) and options mix in any order.

    Plain argparse consumes positionals in one chunk, so ``train m --env X a=1`` would reject
    ``a=1``; this routes the subparser through ``parse_known_intermixed_args``.
    """
    original = parser.parse_known_args
    busy = False

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        nonlocal busy
        if busy:
            return original(args, namespace)
        busy = True
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            busy = False

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]
    return parser


def register(subparsers: Any) -> None:
    """Add the ``collect`` and ``train`` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("collect", help="collect real-env experience into a replay directory")
    p.add_argument("--env", required=True, help="env id (wmenv.make_env / gymnasium)")
    p.add_argument("--steps", type=int, required=True, help="env transitions to collect (all envs)")
    p.add_argument("--num-envs", type=int, default=1, help="parallel sub-envs (SyncVectorEnv)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--capacity", type=int, default=None, help="replay rows kept (default: every row)")
    p.add_argument("--out", required=True, help="new directory for the saved replay")
    _env_options(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_collect)

    t = subparsers.add_parser("train", help="train a registered world model on real-env data")
    t.add_argument("model", nargs="?", help="registered model name (wmenv list)")
    t.add_argument("overrides", nargs="*", help="config overrides key=value (trainer.<field>=v)")
    t.add_argument("--env", help="env id to collect from")
    _env_options(t)
    t.add_argument("--preset", default=None, help="model config preset (tiny, small, ...)")
    t.add_argument("--steps", type=int, default=None, help="total gradient updates of the run")
    t.add_argument("--seed-steps", type=int, default=1000, help="random env steps before training")
    t.add_argument("--collect-every", type=int, default=0, help="updates between collection phases")
    t.add_argument("--collect-steps", type=int, default=0, help="env steps per collection phase")
    t.add_argument("--num-envs", type=int, default=1)
    t.add_argument("--capacity", type=int, default=100_000, help="replay rows kept (ring buffer)")
    t.add_argument("--replay", default=None, help="start from a replay saved by `wmenv collect`")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--seq-len", type=int, default=None)
    t.add_argument("--checkpoint-every", type=int, default=None)
    t.add_argument("--log-every", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or auto")
    t.add_argument("--run-dir", default=None, help="new run directory (default runs/<time>_<model>_<env>)")
    t.add_argument("--runs-root", default="runs", help="parent of default run directories")
    t.add_argument("--resume", default=None, metavar="RUN", help="continue the run in this directory")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--stage", default=None,
                   help="stage of a staged family (world-models: vae | mdnrnn | controller | all)")
    t.set_defaults(func=run_train)
    _intermixed(t)


def _env_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE",
                   help="make_env argument, repeatable (e.g. --env-kwarg frame_skip=2)")
    p.add_argument("--pixels", action="store_true", help="image observations (same as --env-kwarg pixels=true)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's; 1 is often fastest for tiny models)")


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``make_env`` keyword arguments from ``--env-kwarg`` and ``--pixels``; applies ``--threads``."""
    from wmenv.config import parse_env_kwargs

    if getattr(args, "threads", None) is not None:
        import torch

        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    kwargs = parse_env_kwargs(getattr(args, "env_kwarg", None) or [])
    if getattr(args, "pixels", False):
        kwargs["pixels"] = True
    return kwargs


def _error(command: str, err: Exception) -> int:
    print(f"wmenv {command}: error: {err}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------------- collect
def run_collect(args: argparse.Namespace) -> int:
    """Handler of ``wmenv collect``."""
    from wmenv.train.collect import collect
    from wmenv.train.replay import make_replay, save_replay

    out = Path(args.out)
    try:
        if out.exists() and any(out.iterdir()):
            raise RunDirError(
                f"--out {out} exists and is not empty; choose a new directory (nothing overwritten)"
            )
        if args.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {args.steps}")
        env_kwargs = _env_kwargs(args)
        scratch = out.with_name(f".{out.name}.scratch")
        capacity = args.capacity or 2 * args.steps + args.num_envs  # rows <= steps + episodes + envs
        replay = make_replay(capacity, scratch, seed=args.seed)
        try:
            replay, stats = collect(
                args.env,
                args.steps,
                num_envs=args.num_envs,
                seed=args.seed,
                replay=replay,
                env_kwargs=env_kwargs,
                progress=not args.no_progress,
            )
            if out.exists():
                out.rmdir()
            save_replay(replay, out)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except (WMEnvError, FileNotFoundError) as err:
        return _error("collect", err)
    print(
        f"collected {stats.steps} steps, {stats.episodes} episodes (mean return {stats.mean_return:.2f}), "
        f"{len(replay)} rows -> {out}"
    )
    return 0


# ---------------------------------------------------------------------------------- train
def _trainer_defaults(spec: Any, preset: str | None) -> dict[str, Any]:
    """TrainerConfig overrides a family suggests via ``ModelSpec.extras["trainer"]`` (dict or callable)."""
    hint = spec.extras.get("trainer") if spec.extras else None
    if callable(hint):
        hint = hint(preset or spec.default_preset)
    return dict(hint or {})


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """TrainerConfig fields set by explicit command-line flags."""
    names = ("steps", "batch_size", "seq_len", "checkpoint_every", "log_every", "device")
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _trainer_config(args: argparse.Namespace, spec: Any, trainer_overrides: dict[str, str]) -> Any:
    from wmenv.config import apply_overrides
    from wmenv.train.trainer import TrainerConfig

    preset = args.preset or spec.default_preset
    base = TrainerConfig.tiny() if preset in ("debug", "tiny") else TrainerConfig()
    base = apply_overrides(base, {**_trainer_defaults(spec, preset), "seed": args.seed})
    base = apply_overrides(base, _flag_overrides(args))
    base = apply_overrides(base, trainer_overrides)
    if args.no_progress:
        base = apply_overrides(base, {"progress": False})
    return base


def _new_run_dir(args: argparse.Namespace, model: str) -> Path:
    if args.run_dir:
        run_dir = Path(args.run_dir)
        if run_dir.exists():
            raise RunDirError(
                f"run dir {run_dir} already exists; pass a new --run-dir, or --resume {run_dir} to "
                "continue it"
            )
        run_dir.mkdir(parents=True)
        return run_dir
    env = re.sub(r"[^A-Za-z0-9._-]+", "-", args.env)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{model}_{env}"
    root = Path(args.runs_root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1000):
        run_dir = root / (stem if i == 0 else f"{stem}-{i}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise RunDirError(f"could not create a fresh run dir under {root}")


def _split(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, str]]:
    from wmenv.config import parse_overrides

    items = list(args.overrides)
    if args.model and "=" in args.model:  # `train --resume RUN a=1`: the first override landed in model
        items.insert(0, args.model)
        args.model = None
    parsed = parse_overrides(items)
    model_ov = {k: v for k, v in parsed.items() if not k.startswith("trainer.")}
    trainer_ov = {k[len("trainer.") :]: v for k, v in parsed.items() if k.startswith("trainer.")}
    return model_ov, trainer_ov


def _start(args: argparse.Namespace) -> Any:
    """Create the run dir, model, replay (seed data) and trainer of a fresh run."""
    from wmenv.registry import create_config, create_model, get_model_spec
    from wmenv.train.collect import make_env
    from wmenv.train.replay import load_replay, make_replay
    from wmenv.train.trainer import REPLAY_SCRATCH, Trainer

    if not args.model or not args.env:
        raise RunDirError("train needs a model and --env (or --resume RUN); see `wmenv list` for models")
    model_ov, trainer_ov = _split(args)
    spec = get_model_spec(args.model)
    config = create_config(args.model, args.preset, model_ov)  # unknown keys/presets raise here
    tconf = _trainer_config(args, spec, trainer_ov)
    env_kwargs = _env_kwargs(args)
    _seed_everything(args.seed)
    env = make_env(args.env, **env_kwargs)
    model = create_model(spec.name, env=env, config=config)
    run_dir = _new_run_dir(args, spec.name)  # only once everything above worked
    if args.replay:
        replay = load_replay(args.replay, run_dir / REPLAY_SCRATCH, capacity=max(args.capacity, 1))
    else:
        replay = make_replay(args.capacity, run_dir / REPLAY_SCRATCH, seed=args.seed)
    trainer = Trainer(
        model,
        replay,
        tconf,
        run_dir,
        model_name=spec.name,
        model_config=config,
        observation_space=env.observation_space,
        action_space=env.action_space,
        family=spec.family or spec.name,
    )
    env.close()
    keep = ("model", "env", "preset", "seed_steps", "collect_every", "collect_steps", "num_envs", "seed")
    trainer.user_state = {"args": {k: getattr(args, k) for k in keep}, "env_steps": 0}
    trainer.user_state["args"]["overrides"] = model_ov
    trainer.user_state["args"]["env_kwargs"] = env_kwargs
    return trainer


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _resume(args: argparse.Namespace) -> Any:
    from wmenv.train.trainer import CHECKPOINT, Trainer

    model_ov, trainer_ov = _split(args)
    run_dir = Path(args.resume)
    if not run_dir.is_dir():
        raise RunDirError(f"--resume {run_dir}: no such run directory")
    if not (run_dir / CHECKPOINT).is_file():
        raise RunDirError(f"--resume {run_dir}: no {CHECKPOINT} in it (the run never reached a checkpoint)")
    if model_ov:
        raise RunDirError(f"--resume keeps the run's model config; drop the overrides {sorted(model_ov)}")
    from wmenv.train.checkpoint import load_checkpoint

    saved = load_checkpoint(run_dir / CHECKPOINT)["model_name"]
    if args.model:
        from wmenv.registry import get_model_spec

        if get_model_spec(args.model).name != saved:
            raise RunDirError(
                f"--resume {run_dir} is a run of model {saved!r}, not {args.model!r}; nothing changed"
            )
    if args.env_kwarg or args.pixels:
        raise RunDirError("--resume keeps the run's env arguments; drop --env-kwarg / --pixels")
    _env_kwargs(args)  # --threads
    flags = {**_flag_overrides(args), **trainer_ov}
    if args.no_progress:
        flags["progress"] = False
    trainer = Trainer.resume(run_dir, overrides={k: v for k, v in flags.items() if v is not None})
    print(f"resumed {run_dir} at step {trainer.step} with {len(trainer.replay)} replay rows", flush=True)
    return trainer


def _model_policy(model: Any, seed: int) -> Any:
    """The model's collection policy: ``make_policy()`` or a no-argument ``policy()`` hook, else ``None``.

    The returned callable maps an observation batch to actions (NumPy); it may have ``reset(mask)``.
    """
    for name in ("make_policy", "policy"):
        hook = getattr(model, name, None)
        if not callable(hook):
            continue
        params = inspect.signature(hook).parameters
        if any(
            p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values()
        ):
            continue  # e.g. Dreamer's policy(features): not a collection hook
        return hook(seed=seed) if "seed" in params else hook()
    return None


def _loop(trainer: Any, progress: bool) -> None:
    """Seed collection (fresh runs), then train/collect phases until ``config.steps`` updates."""
    from wmenv.train.collect import Collector

    a = trainer.user_state["args"]
    env_steps = int(trainer.user_state.get("env_steps", 0))
    policy = _model_policy(trainer.model, seed=a["seed"] + env_steps) if a["collect_steps"] else None
    collector = Collector(
        a["env"], trainer.replay, num_envs=a["num_envs"], seed=a["seed"] + env_steps, progress=progress,
        env_kwargs=dict(a.get("env_kwargs") or {}),
    )
    try:
        if trainer.step == 0 and env_steps == 0 and a["seed_steps"] > 0:
            stats = collector.collect(a["seed_steps"])
            collector.flush()
            trainer.user_state["env_steps"] = env_steps = stats.steps
        collector.policy = policy
        target = trainer.config.steps
        every = a["collect_every"] if a["collect_steps"] else 0
        while True:
            # collect at every multiple of collect_every, exactly once (also right after a resume)
            due = every and 0 < trainer.step < target and trainer.step % every == 0
            if due and trainer.user_state.get("last_collect_step") != trainer.step:
                stats = collector.collect(a["collect_steps"])
                env_steps += stats.steps
                trainer.user_state.update(env_steps=env_steps, last_collect_step=trainer.step)
                row = {"collect/env_steps": env_steps, "collect/episodes": stats.episodes}
                if stats.episode_returns:
                    row["collect/return"] = stats.mean_return
                trainer.logger.log(trainer.step, row)
            if trainer.step >= target:
                break
            left = target - trainer.step
            trainer.train(min(left, every - trainer.step % every) if every else left)
    finally:
        collector.close()


def _run_stage(args: argparse.Namespace) -> int:
    """``wmenv train MODEL --stage S``: hand the run to the family's stage driver."""
    import importlib

    from wmenv.config import parse_overrides
    from wmenv.registry import get_model_spec

    spec = get_model_spec(args.model)
    driver = spec.extras.get("stage_driver")
    stages = list(spec.extras.get("stages", ()))
    if driver is None:
        raise ConfigError(f"model {spec.name!r} is not trained in stages; drop --stage")
    if args.stage not in (*stages, "all"):
        raise ConfigError(f"unknown stage {args.stage!r} for {spec.name}; expected one of {[*stages, 'all']}")
    run_dir = args.run_dir or args.resume
    if run_dir is None:
        if not args.env:
            raise ConfigError("a new staged run needs --env (or --run-dir of an existing run)")
        run_dir = str(_new_run_dir(args, spec.name))
    module, _, name = str(driver).partition(":")
    run_stages = getattr(importlib.import_module(module), name)
    env_kwargs = _env_kwargs(args)
    result = run_stages(
        args.stage, run_dir, env_id=args.env, env_kwargs=env_kwargs or None, preset=args.preset or spec.default_preset,
        overrides=parse_overrides(args.overrides or []), seed=args.seed, device=args.device or "cpu",
        progress=not args.no_progress,
    )
    print(f"trained stages {result.get('trained_stages')} of {spec.name} in {run_dir}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``wmenv train``."""
    if args.stage is not None:
        try:
            return _run_stage(args)
        except (WMEnvError, FileNotFoundError) as err:
            return _error("train", err)
    try:
        trainer = _resume(args) if args.resume else _start(args)
    except (WMEnvError, FileNotFoundError) as err:
        return _error("train", err)
    try:
        _loop(trainer, progress=not args.no_progress)
    except KeyboardInterrupt:
        trainer.save()
        print(f"interrupted; checkpoint saved at step {trainer.step} in {trainer.run_dir}", file=sys.stderr)
        return 130
    except WMEnvError as err:
        return _error("train", err)
    path = trainer.save()
    trainer.close()
    from wmenv.train.logging import plot_metrics

    try:
        plot_metrics(trainer.run_dir / "metrics.csv", trainer.run_dir / "metrics.png")
    except ValueError:
        pass
    print(f"trained {trainer.model_name} to step {trainer.step}; checkpoint {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m wmenv.train.cli collect|train ...``)."""
    parser = argparse.ArgumentParser(prog="wmenv", description="collect and train")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
