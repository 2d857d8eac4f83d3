"""``wmenv collect`` and ``wmenv train``: collect real experience, train a registered model, resume.

Usage::

    wmenv collect --env CartPole-v1 --steps 10000 --num-envs 4 --out data/cartpole
    wmenv collect --env ALE/Pong-v5 --steps 100000 --out data/pong --shard-size 10000 --val-ratio 0.1
    wmenv train nextframe --dataset data/pong --preset atari84 --steps 20000
    wmenv train dreamerv3 --env CartPole-v1 --preset tiny --steps 2000 rssm.deter=64 trainer.lr=3e-4
    wmenv train dreamer-wm --env cartpole-swingup --pixels --threads 1 --preset tiny --steps 500
    wmenv train --resume runs/20260101-120000_dreamerv3_CartPole-v1 --steps 4000

Overrides ``key=value`` go to the model config; ``trainer.<field>=value`` to :class:`TrainerConfig`.
Also runnable as ``python -m wmenv.cli.train train ...``. The work is done by
:mod:`wmenv.train.session` (the one training entry point); this module only parses arguments.
"""

from __future__ import annotations

import argparse
import shutil
import sys
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
    p = subparsers.add_parser("collect", help="collect real-env experience into a replay directory or a dataset")
    p.add_argument("--env", required=True, help="env id (wmenv.make_env / gymnasium)")
    p.add_argument("--steps", type=int, required=True, help="env transitions to collect (all envs)")
    p.add_argument("--num-envs", type=int, default=1, help="parallel sub-envs (SyncVectorEnv)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--capacity", type=int, default=None, help="replay rows kept (default: every row)")
    p.add_argument("--out", required=True, help="new directory for the saved replay (or dataset)")
    p.add_argument("--shard-size", type=int, default=None, metavar="S",
                   help="write a dataset: memory-mapped .npy shards of S rows + manifest.json (wmenv.train.dataset) "
                        "instead of a replay snapshot")
    p.add_argument("--val-ratio", type=float, default=None, metavar="R",
                   help="dataset: share of whole episodes in the val split (default 0.1)")
    p.add_argument("--policy", default="random", metavar="random|RUN",
                   help="uniformly random actions (default), or the policy of the run directory RUN")
    p.add_argument("--explore", action="store_true", help="with --policy RUN: the policy's exploring mode")
    _env_options(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_collect)

    t = subparsers.add_parser("train", help="train a registered world model on real-env data")
    t.add_argument("model", nargs="?", help="registered model name (wmenv list)")
    t.add_argument("overrides", nargs="*", help="config overrides key=value (trainer.<field>=v)")
    t.add_argument("--env", help="env id to collect from")
    t.add_argument("--dataset", default=None, metavar="DATA",
                   help="train offline from a dataset (wmenv collect --shard-size), no env interaction; "
                        "with --resume: the dataset's new location")
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
    t.add_argument("--nproc", type=int, default=None, metavar="K",
                   help="train in K processes with DistributedDataParallel (runs torch.distributed.run; "
                   "same as torchrun --nproc_per_node K -m wmenv train ...); needs --run-dir or --resume")
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
def _collect_policy(args: argparse.Namespace, env_kwargs: dict[str, Any]) -> tuple[Any, str]:
    """``(policy or None, its name for the manifest)`` from ``--policy random|RUN``."""
    if args.policy in (None, "random"):
        return None, "random"
    from wmenv.runs import open_run
    from wmenv.train.collect import make_env

    run = open_run(args.policy)
    if not run.spec.can_act or run.spec.policy is None:
        raise ConfigError(
            f"--policy {args.policy}: its model {run.info.model!r} has no policy of its own (it does not act); "
            "use --policy random, or a run of a family that acts (e.g. dreamer, planet)"
        )
    probe = make_env(args.env, **env_kwargs)
    try:
        run.check_spaces(probe, args.env)
    finally:
        probe.close()
    return run.policy(seed=args.seed, explore=args.explore), f"run:{run.path.resolve()}"


def _collect_command(args: argparse.Namespace) -> str:
    import shlex

    parts = ["wmenv", "collect", "--env", args.env, "--steps", str(args.steps), "--out", str(args.out)]
    for flag, value in (("--shard-size", args.shard_size), ("--val-ratio", args.val_ratio),
                        ("--num-envs", args.num_envs), ("--seed", args.seed), ("--policy", args.policy)):
        if value is not None:
            parts += [flag, str(value)]
    parts += [f"--env-kwarg={kv}" for kv in args.env_kwarg or []]
    parts += [flag for flag, on in (("--pixels", args.pixels), ("--explore", args.explore)) if on]
    return shlex.join(parts)


def _run_collect_dataset(args: argparse.Namespace) -> int:
    """``wmenv collect --shard-size S``: a dataset (:func:`wmenv.train.dataset.collect_dataset`)."""
    from wmenv.train.dataset import collect_dataset

    try:
        if args.steps < 1 or args.shard_size < 1:
            raise ConfigError(f"--steps and --shard-size must be >= 1, got {args.steps} and {args.shard_size}")
        if args.capacity is not None:
            raise ConfigError("--capacity applies to replay snapshots; a dataset keeps every row (drop it)")
        env_kwargs = _env_kwargs(args)
        policy, policy_name = _collect_policy(args, env_kwargs)
        ds = collect_dataset(
            args.env, args.steps, args.out, shard_size=args.shard_size,
            val_ratio=0.1 if args.val_ratio is None else args.val_ratio, policy=policy, policy_name=policy_name,
            num_envs=args.num_envs, seed=args.seed, env_kwargs=env_kwargs, command=_collect_command(args),
            progress=not args.no_progress,
        )
    except (WMEnvError, FileNotFoundError) as err:
        return _error("collect", err)
    c = ds.manifest["counts"]
    print(f"collected {ds.manifest['collection']['steps']} steps, {c['episodes']} episodes "
          f"({c['train_episodes']} train / {c['val_episodes']} val), {c['rows']} rows in {c['shards']} shards -> "
          f"{ds.path}")
    return 0


def run_collect(args: argparse.Namespace) -> int:
    """Handler of ``wmenv collect``."""
    from wmenv.train.collect import collect
    from wmenv.train.replay import make_replay, save_replay

    if args.shard_size is not None:
        return _run_collect_dataset(args)
    out = Path(args.out)
    try:
        if args.val_ratio is not None:
            raise ConfigError("--val-ratio applies to datasets; add --shard-size S to write one")
        if out.exists() and any(out.iterdir()):
            raise RunDirError(
                f"--out {out} exists and is not empty; choose a new directory (nothing overwritten)"
            )
        if args.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {args.steps}")
        env_kwargs = _env_kwargs(args)
        policy, _ = _collect_policy(args, env_kwargs)
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
                policy=policy,
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


def _trainer_flags(args: argparse.Namespace, trainer_ov: dict[str, str]) -> dict[str, Any]:
    """TrainerConfig fields set by explicit command-line flags, then ``trainer.<field>=v`` overrides."""
    names = ("batch_size", "seq_len", "checkpoint_every", "log_every", "device")
    return {**{k: getattr(args, k) for k in names if getattr(args, k) is not None}, **trainer_ov}


def _offline_session(args: argparse.Namespace, model_ov: dict[str, str], trainer_ov: dict[str, str]) -> Any:
    """``wmenv train MODEL --dataset DATA``: :class:`~wmenv.train.offline.OfflineTrainingRun`."""
    from wmenv.train.dataset import open_dataset
    from wmenv.train.offline import OfflineTrainingRun

    online = [flag for flag, on in (("--collect-every", args.collect_every), ("--collect-steps", args.collect_steps),
                                    ("--replay", args.replay), ("--env-kwarg", args.env_kwarg),
                                    ("--pixels", args.pixels), ("--num-envs", args.num_envs != 1)) if on]
    if online:
        raise ConfigError(f"--dataset trains offline (no env interaction); drop {', '.join(online)}")
    _env_kwargs(args)  # --threads
    ds = open_dataset(args.dataset)
    if args.env and args.env != ds.env_id:
        raise ConfigError(f"--env {args.env} differs from the env of the dataset {ds.path} ({ds.env_id}); drop --env")
    return OfflineTrainingRun.start(
        args.model, ds, steps=args.steps, preset=args.preset, overrides=model_ov, seed=args.seed,
        trainer=_trainer_flags(args, trainer_ov), run_dir=args.run_dir, runs_root=args.runs_root,
        progress=not args.no_progress, producer="wmenv train --dataset",
    )


def _session(args: argparse.Namespace) -> Any:
    """A :class:`~wmenv.train.session.TrainingRun`, new or resumed, from the parsed arguments."""
    from wmenv.registry import get_model_spec
    from wmenv.train.session import Schedule, TrainingRun

    model_ov, trainer_ov = _split(args)
    if args.resume:
        if model_ov:
            raise RunDirError(f"--resume keeps the run's model config; drop the overrides {sorted(model_ov)}")
        if args.env_kwarg or args.pixels:
            raise RunDirError("--resume keeps the run's env arguments; drop --env-kwarg / --pixels")
        _env_kwargs(args)  # --threads
        flags = {**_trainer_flags(args, trainer_ov), "steps": args.steps}
        if args.dataset:  # an offline run whose dataset moved
            from wmenv.train.offline import OfflineTrainingRun

            session = OfflineTrainingRun.resume(args.resume, dataset=args.dataset, trainer=flags,
                                                progress=not args.no_progress)
        else:
            session = TrainingRun.resume(args.resume, trainer=flags, progress=not args.no_progress)
        if args.model and get_model_spec(args.model).name != session.info.model:
            session.close(plot=False)
            raise RunDirError(
                f"--resume {args.resume} is a run of model {session.info.model!r}, not {args.model!r}; nothing changed"
            )
        print(f"resumed {session.run_dir} at step {session.trainer.step} with {len(session.replay)} replay rows",
              flush=True)
        return session
    if args.model and args.dataset:
        return _offline_session(args, model_ov, trainer_ov)
    if not args.model or not args.env:
        raise RunDirError("train needs a model and --env (or --dataset DATA, or --resume RUN); see `wmenv list` "
                          "for models")
    schedule = Schedule(seed_steps=args.seed_steps, collect_every=args.collect_every,
                        collect_steps=args.collect_steps, num_envs=args.num_envs)
    return TrainingRun.start(
        args.model, args.env, steps=args.steps, preset=args.preset, overrides=model_ov,
        env_kwargs=_env_kwargs(args), seed=args.seed, schedule=schedule, trainer=_trainer_flags(args, trainer_ov),
        run_dir=args.run_dir, runs_root=args.runs_root, replay=args.replay, capacity=args.capacity,
        progress=not args.no_progress, producer="wmenv train",
    )


def _run_stage(args: argparse.Namespace) -> int:
    """``wmenv train MODEL --stage S``: the family's stage driver, through :func:`wmenv.train.train`."""
    from wmenv.config import parse_overrides
    from wmenv.registry import get_model_spec
    from wmenv.train.session import run_stage

    if args.dataset:
        raise ConfigError("--stage runs a staged family's own driver on a real env; --dataset is not supported there")
    spec = get_model_spec(args.model)
    result = run_stage(
        spec.name, args.stage, args.env, resume=args.resume, run_dir=args.run_dir,
        runs_root=args.runs_root, env_kwargs=_env_kwargs(args), preset=args.preset,
        overrides=parse_overrides(args.overrides or []), seed=args.seed, device=args.device or "cpu",
        progress=not args.no_progress,
    )
    print(f"trained stages {result.get('trained_stages')} of {spec.name} in {result['run_dir']}")
    return 0


def _relaunch(args: argparse.Namespace) -> int:
    """``wmenv train --nproc K ...``: the same command in K processes under ``torch.distributed.run``."""
    import os
    import subprocess

    if args.nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    if not (args.run_dir or args.resume):
        raise ConfigError("--nproc needs --run-dir (or --resume): every process must write the same run")
    raw = list(getattr(args, "argv", None) or sys.argv[1:])
    keep, skip = [], False
    for item in raw:
        if skip:
            skip = False
            continue
        if item == "--nproc":
            skip = True
            continue
        if item.startswith("--nproc="):
            continue
        keep.append(item)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "wmenv", *keep]
    return subprocess.call(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``wmenv train``."""
    import os

    if args.nproc is not None and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        try:
            return _relaunch(args)
        except WMEnvError as err:
            return _error("train", err)
    if args.stage is not None:
        try:
            return _run_stage(args)
        except (WMEnvError, FileNotFoundError) as err:
            return _error("train", err)
    try:
        session = _session(args)
    except (WMEnvError, FileNotFoundError) as err:
        return _error("train", err)
    try:
        path = session.run()
    except KeyboardInterrupt:
        session.save()
        session.close(plot=False)
        print(f"interrupted; checkpoint saved at step {session.trainer.step} in {session.run_dir}", file=sys.stderr)
        return 130
    except WMEnvError as err:
        session.close(plot=False)
        return _error("train", err)
    session.close()
    print(f"trained {session.info.model} to step {session.trainer.step}; checkpoint {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m wmenv.train.cli collect|train ...``)."""
    parser = argparse.ArgumentParser(prog="wmenv", description="collect and train")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
