"""Stage driver of the World Models family: random rollouts -> VAE -> MDN-RNN -> CMA-ES controller.

Usage::

    python -m wmenv.models.ha.train --env CartPole-v1 --stage all --preset small --run-dir runs/ha-cartpole
    python -m wmenv.models.ha.train --run-dir runs/ha-cartpole --stage controller temperature=1.2 cma.generations=50
    python -m wmenv.models.ha.train --env CarRacing-v3 --stage all --preset small --run-dir runs/ha-car

Reuses :mod:`wmenv.train`: ``collect`` fills a replay, one :class:`~wmenv.train.Trainer` per gradient
stage trains ``loss(batch)`` (its step counter runs on across stages), checkpoints are the
Trainer's (``run_dir/checkpoint.pt``, resumable). Stages already trained are kept; a stage asked
for before its prerequisites raises :class:`~wmenv.models.ha.agent.StageOrderError`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from wmenv.config import apply_overrides, make_preset, parse_overrides
from wmenv.core.errors import ConfigError, WMEnvError
from wmenv.core.protocol import TensorDictStartStates
from wmenv.models.ha.agent import STAGES, StageOrderError, WorldModelsAgent
from wmenv.models.ha.config import WorldModelsConfig
from wmenv.models.ha.environment import env_factory
from wmenv.models.ha.evolution import real_returns, train_controller
from wmenv.train.checkpoint import load_checkpoint, wmenv_version
from wmenv.train.collect import collect
from wmenv.train.replay import make_replay, replay_as_tensordict
from wmenv.train.runinfo import RunInfo
from wmenv.train.session import env_time_limit
from wmenv.train.trainer import CHECKPOINT, REPLAY_SCRATCH, Trainer, TrainerConfig

__all__ = ["run_stages", "main", "RESUME_OVERRIDABLE"]

MODEL_NAME, FAMILY = "world-models", "world-models"
#: Config keys that may change when continuing a run (the rest fix the architecture).
RESUME_OVERRIDABLE = ("temperature", "done_threshold", "cma", "schedule")


def _trainer_config(cfg: WorldModelsConfig, stage: str, seed: int, device: str, progress: bool,
                    tensorboard: bool) -> TrainerConfig:
    s = cfg.schedule
    vae = stage == "vae"
    return TrainerConfig(
        steps=s.vae_steps if vae else s.rnn_steps, batch_size=s.vae_batch_size if vae else s.rnn_batch_size,
        seq_len=s.vae_seq_len if vae else s.rnn_seq_len, lr=cfg.vae.lr if vae else cfg.rnn.lr,
        log_every=50, checkpoint_every=1000, device=device, seed=seed, progress=progress, tensorboard=tensorboard,
    )


def _fresh(env_id: str, env_kwargs: dict[str, Any], config: WorldModelsConfig, run_dir: Path, seed: int,
           device: str, progress: bool, tensorboard: bool, preset: str | None = None) -> Trainer:
    """Collect random rollouts and build the VAE-stage Trainer of a new run."""
    torch.manual_seed(seed)
    env_fn = env_factory(env_id, env_kwargs)
    probe = env_fn()
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    agent = WorldModelsAgent(config, obs_space, act_space)
    s = config.schedule
    rows = 1.5 * (s.random_steps + s.iterations * s.iteration_steps)  # an episode of n steps has n + 1 rows
    replay = make_replay(int(rows) + 1000, run_dir / REPLAY_SCRATCH, seed=seed)
    venv = gym.vector.SyncVectorEnv([env_fn] * s.num_envs, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    out = collect(venv, s.random_steps, seed=seed, replay=replay, progress=progress)
    stats = out[1] if isinstance(out, tuple) else out  # (replay, stats), or stats with .replay
    print(f"collected {stats.steps} random steps, {stats.episodes} episodes (mean return "
          f"{stats.mean_return:.1f}) in {stats.seconds:.1f}s", flush=True)
    trainer = Trainer(agent, replay, _trainer_config(config, "vae", seed, device, progress, tensorboard), run_dir,
                      model_name=MODEL_NAME, model_config=config, observation_space=obs_space,
                      action_space=act_space, family=FAMILY)
    trainer.run_info = RunInfo(
        model=MODEL_NAME, family=FAMILY, env_id=env_id, env_kwargs=dict(env_kwargs), preset=preset, seed=int(seed),
        max_episode_steps=env_time_limit(probe), schedule={"seed_steps": int(s.random_steps), "num_envs": s.num_envs},
        producer="wmenv train world-models --stage", wmenv_version=wmenv_version(),
    )
    trainer.user_state = {"env_steps": stats.steps, "stage_start": {}, "collect_return": stats.mean_return}
    return trainer


def _resume_overrides(overrides: dict[str, str]) -> None:
    bad = [k for k in overrides if k.split(".")[0] not in RESUME_OVERRIDABLE]
    if bad:
        raise ConfigError(
            f"cannot change {sorted(bad)} of an existing run (they fix the architecture); only keys under "
            f"{list(RESUME_OVERRIDABLE)} may change on resume. Start a new --run-dir instead"
        )


def _gradient_stage(trainer: Trainer, stage: str, rnd: int, device: str, progress: bool,
                    tensorboard: bool) -> Trainer:
    """Train ``stage`` of round ``rnd`` (continuing its updates after a resume); returns the Trainer used."""
    agent: WorldModelsAgent = trainer.model
    cfg: WorldModelsConfig = trainer.model_config
    starts = trainer.user_state.setdefault("stage_start", {})
    key = f"{stage}@{rnd}"
    if agent.stage != stage or key not in starts:  # a new stage: new optimizer, step counter runs on
        agent.set_stage(stage)
        if stage == "vae" and "vae" not in agent.trained_stages and agent.obs_kind == "vector":
            agent.fit_normalizer(replay_as_tensordict(trainer.replay)["observation"])
        new = Trainer(agent, trainer.replay, _trainer_config(cfg, stage, trainer.config.seed, device, progress,
                                                             tensorboard),
                      trainer.run_dir, model_name=MODEL_NAME, model_config=cfg,
                      observation_space=trainer.observation_space, action_space=trainer.action_space, family=FAMILY)
        new.step, new.history, new.user_state = trainer.step, trainer.history, trainer.user_state
        new.run_info = trainer.run_info
        new._resume_step = trainer.step
        trainer.close()
        trainer = new
        starts[key] = trainer.step
    s = cfg.schedule
    if rnd == 0:
        total = s.vae_steps if stage == "vae" else s.rnn_steps
    else:
        total = s.iteration_vae_steps if stage == "vae" else s.iteration_rnn_steps
    remaining = total - (trainer.step - starts[key])
    t0 = time.perf_counter()
    if remaining > 0:
        logged = trainer.train(remaining)
        last = {k: round(v, 4) for k, v in (logged[-1] if logged else {}).items() if not k.startswith("lr/")}
        print(f"[{key}] {remaining} updates in {time.perf_counter() - t0:.1f}s; last metrics {last}", flush=True)
    agent.mark_trained(stage)
    trainer.user_state.setdefault("done", []).append(key)
    trainer.save()
    return trainer


def _collect_with_controller(trainer: Trainer, rnd: int, progress: bool) -> None:
    """Round ``rnd`` of the iterative procedure: real rollouts of the current controller (+ exploration)."""
    agent: WorldModelsAgent = trainer.model
    us, s = trainer.user_state, trainer.model_config.schedule
    env_fn = env_factory(trainer.run_info.env_id, trainer.run_info.env_kwargs)
    agent.eval()
    venv = gym.vector.SyncVectorEnv([env_fn] * s.num_envs, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    seed = int(trainer.run_info.seed) + 7919 * rnd
    out = collect(venv, s.iteration_steps, policy=agent.policy(s.explore_epsilon, seed), seed=seed,
                  replay=trainer.replay, progress=progress)
    stats = out[1] if isinstance(out, tuple) else out
    us["env_steps"] = int(us.get("env_steps", 0)) + stats.steps
    us.setdefault("done", []).append(f"collect@{rnd}")
    print(f"[collect@{rnd}] {stats.steps} steps with the controller (epsilon {s.explore_epsilon}), "
          f"{stats.episodes} episodes, mean return {stats.mean_return:.1f}", flush=True)
    trainer.save()


def _start_states(trainer: Trainer, cfg: WorldModelsConfig) -> TensorDictStartStates:
    data = replay_as_tensordict(trainer.replay)
    rows = data.select("observation")
    if cfg.cma.dream_start == "first":
        rows = rows[data["is_first"].reshape(-1)]
    return TensorDictStartStates(rows.to_tensordict())


def _controller_stage(trainer: Trainer, rnd: int, eval_episodes: int) -> dict[str, Any]:
    agent: WorldModelsAgent = trainer.model
    cfg: WorldModelsConfig = trainer.model_config
    agent.require_trained("controller")
    us = trainer.user_state
    env_fn = env_factory(trainer.run_info.env_id, trainer.run_info.env_kwargs)
    base = trainer.step

    def log(row: dict[str, float]) -> None:
        trainer.logger.log(base + int(row["generation"]), {f"cma/{k}": v for k, v in row.items()})
        real = f" real {row['real_return']:.1f}" if "real_return" in row else ""
        print(f"[controller@{rnd}] gen {int(row['generation'])}: fitness mean {row['fitness_mean']:.1f} max "
              f"{row['fitness_max']:.1f} sigma {row['sigma']:.3f}{real} ({row['seconds']:.1f}s)", flush=True)

    t0 = time.perf_counter()
    history = train_controller(agent, cfg.cma, temperature=cfg.temperature,
                               start_states=_start_states(trainer, cfg) if cfg.cma.where == "dream" else None,
                               env_fn=env_fn, log=log)
    search_seconds = time.perf_counter() - t0
    returns = real_returns(agent, None, eval_episodes, env_fn, seed=1_000_000)[0]
    result = {
        "where": cfg.cma.where, "temperature": cfg.temperature, "generations": cfg.cma.generations,
        "search_seconds": search_seconds, "eval_episodes": eval_episodes,
        "eval_returns": returns.tolist(), "eval_mean": float(returns.mean()), "eval_std": float(returns.std()),
        "final_fitness_mean": history[-1]["fitness_mean"] if history else float("nan"),
    }
    us["controller"] = result
    us.setdefault("rounds", {})[str(rnd)] = result["eval_mean"]
    us.setdefault("done", []).append(f"controller@{rnd}")
    trainer.logger.log(base + cfg.cma.generations, {"eval/real_return_mean": result["eval_mean"]})
    print(f"[controller@{rnd}] CMA-ES ({cfg.cma.where}) {search_seconds:.1f}s; real-env return over {eval_episodes} "
          f"episodes: {result['eval_mean']:.1f} +- {result['eval_std']:.1f}", flush=True)
    trainer.save()
    return result


def run_stages(
    stage: str,
    run_dir: str | Path,
    *,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    preset: str | None = "small",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    eval_episodes: int = 20,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Run one stage (or ``"all"``) of a run in ``run_dir``, creating the run when it does not exist.

    Args:
        stage: ``"vae"``, ``"mdnrnn"``, ``"controller"`` (of the current round), or ``"all"``: every
            step not done yet, including ``schedule.iterations`` extra rounds of the iterative
            procedure (collect with C, retrain V and M, re-search C in the dream).
        run_dir: run directory (``checkpoint.pt``, replay snapshot, ``metrics.csv``).
        env_id: real env id (required for a new run; an existing run keeps its own).
        env_kwargs: ``make_env`` keyword arguments of a new run (e.g. ``{"pixels": True}``).
        preset: config preset of a new run.
        overrides: dot-notation config overrides (on an existing run only ``RESUME_OVERRIDABLE`` keys).
        seed: seed of a new run (collection, training, CMA-ES via ``cma.seed``).
        device: torch device.
        eval_episodes: real-env episodes of the final controller evaluation.
        progress: tqdm bars.
        tensorboard: also log to TensorBoard.

    Returns:
        ``{"run_dir", "trained_stages", "rounds" (round -> real-env mean return), "controller"?}``.

    Raises:
        StageOrderError: a stage before its prerequisites.
        ConfigError: unknown stage, bad overrides, a new run without ``env_id``.
    """
    if stage not in (*STAGES, "all"):
        raise ConfigError(f"unknown stage {stage!r}; expected one of {[*STAGES, 'all']}")
    run_dir = Path(run_dir)
    overrides = dict(overrides or {})
    if (run_dir / CHECKPOINT).is_file():
        load_checkpoint(run_dir / CHECKPOINT, expected_family=FAMILY)
        _resume_overrides(overrides)
        trainer = Trainer.resume(run_dir, overrides={"device": device, "progress": progress,
                                                     "tensorboard": tensorboard})
        info = trainer.run_info
        if info is None or not info.env_id:
            if env_id is None:
                trainer.close()
                raise ConfigError(f"{run_dir} records no real env; pass --env")
            trainer.run_info = info = RunInfo(model=MODEL_NAME, family=FAMILY, env_id=env_id, seed=int(seed))
        if env_id is not None and env_id != info.env_id:
            trainer.close()
            raise ConfigError(f"{run_dir} is a run on {info.env_id!r}, not {env_id!r}; drop --env or use a new run")
        cfg = apply_overrides(trainer.model_config, overrides)
        trainer.model_config = trainer.model.config = cfg
    else:
        if stage not in ("vae", "all"):
            raise StageOrderError(
                f"stage {stage!r} needs a trained 'vae' first and {run_dir} holds no run yet; run --stage vae "
                "(or --stage all) first"
            )
        if env_id is None:
            raise ConfigError("a new run needs --env (the real env id)")
        cfg = apply_overrides(make_preset(WorldModelsConfig, preset), {"cma.seed": seed, **overrides})
        run_dir.mkdir(parents=True, exist_ok=True)
        trainer = _fresh(env_id, dict(env_kwargs or {}), cfg, run_dir, seed, device, progress, tensorboard,
                         preset=preset)
    agent: WorldModelsAgent = trainer.model
    done = set(trainer.user_state.setdefault("done", [])) | {f"{s}@0" for s in agent.trained_stages}
    if stage == "all":
        plan = [(s, 0) for s in STAGES] + [
            (s, r) for r in range(1, cfg.schedule.iterations + 1) for s in ("collect", *STAGES)
        ]
        todo = [(s, r) for s, r in plan if f"{s}@{r}" not in done]
    else:
        todo = [(stage, int(trainer.user_state.get("round", 0)))]
    result: dict[str, Any] = {"run_dir": str(run_dir)}
    try:
        for s, rnd in todo:
            if s == "collect":
                trainer.user_state["round"] = rnd
                _collect_with_controller(trainer, rnd, progress)
            elif s == "controller":
                result["controller"] = _controller_stage(trainer, rnd, eval_episodes)
            else:
                trainer = _gradient_stage(trainer, s, rnd, device, progress, tensorboard)
    finally:
        trainer.close()
    result["trained_stages"] = list(agent.trained_stages)
    result["rounds"] = dict(trainer.user_state.get("rounds", {}))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wmenv.models.ha.train``: see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m wmenv.models.ha.train", description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. cma.generations=50)")
    p.add_argument("--env", default=None, help="real env id (new runs)")
    p.add_argument("--stage", default="all", choices=[*STAGES, "all"])
    p.add_argument("--run-dir", required=True)
    p.add_argument("--preset", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest for small CPU models)")
    p.add_argument("--where", choices=["dream", "real"], default=None, help="shortcut for cma.where")
    p.add_argument("--pixels", action="store_true", help="rendered 64x64 frames as observations (new runs)")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--tensorboard", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    try:
        overrides = parse_overrides(args.overrides)
        if args.where:
            overrides["cma.where"] = args.where
        t0 = time.perf_counter()
        result = run_stages(
            args.stage, args.run_dir, env_id=args.env, env_kwargs={"pixels": True} if args.pixels else None,
            preset=args.preset, overrides=overrides, seed=args.seed, device=args.device,
            eval_episodes=args.eval_episodes, progress=not args.no_progress, tensorboard=args.tensorboard,
        )
    except WMEnvError as err:
        print(f"wmenv.models.ha.train: error: {err}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - t0:.1f}s: trained stages {result['trained_stages']} in {args.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
