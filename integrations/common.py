"""What the recipes share beyond the library: flags, the imagined-vs-real log, an observation check.

Everything about runs comes from the installed ``wmenv``: a tiny world model is trained with
:func:`wmenv.train.train`, a run directory is opened with :func:`wmenv.open_run` (its world model,
start states, imagination faces and real env), and policies are judged in the real env with
:func:`wmenv.envs.evaluate.play_episodes`. This module is not installed: it is importable because
the recipes live next to it and are run as modules from the repository root::

    python -m integrations.sb3.ppo_latent --checkpoint runs/cartpole

* :func:`prepare`: the ``--checkpoint`` run, or a tiny world model trained first, opened;
* :func:`judge_env`: the real env a policy is judged in (the run's, or ``--env`` checked against it);
* :class:`ReturnLog` writes imagined vs real return over training (CSV, PNG, JSON);
  :class:`ImaginedVsRealCallback` judges and logs from inside SB3's ``learn``;
* :func:`check_observations`: a policy/observation mismatch as a typed error that names the fix.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

import wmenv
from wmenv.core import ConfigError, UnsupportedSpaceError
from wmenv.envs.evaluate import play_episodes
from wmenv.train import Schedule, train

__all__ = ["DEFAULT_ENV", "EVAL_SEED", "limit_threads", "train_tiny_world_model",
           "open_recipe_run", "real_env_args", "judge_env", "real_return", "check_observations", "ReturnLog",
           "ImaginedVsRealCallback", "recipe_parser", "prepare", "settings", "sb3_imagined_vec_env",
           "sb3_learn_judged"]

DEFAULT_ENV = "CartPole-v1"
#: Real episode ``i`` of every evaluation resets with ``EVAL_SEED + i``: evaluations are comparable.
EVAL_SEED = 10_000


def limit_threads(n: int = 1) -> None:
    """One torch thread: small models on a shared CPU run faster without thread contention."""
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    torch.set_num_threads(n)


def train_tiny_world_model(
    run_dir: str | os.PathLike, env_id: str = DEFAULT_ENV, *, env_kwargs: Mapping[str, Any] | None = None,
    updates: int = 300, seed_steps: int = 2000, batch_size: int = 8, seq_len: int = 16, seed: int = 0,
) -> Path:
    """:func:`wmenv.train.train` of a tiny Dreamer world model: ``seed_steps`` random real steps, then
    ``updates`` updates. The run records ``env_id`` and ``env_kwargs`` (e.g. ``pixels=True``)."""
    return train(
        "dreamer-wm", env_id, steps=updates, preset="debug", env_kwargs=env_kwargs,
        seed=seed, schedule=Schedule(seed_steps=seed_steps),
        trainer={"batch_size": batch_size, "seq_len": seq_len, "lr": 1e-3, "log_every": 25,
                 "checkpoint_every": 0, "tensorboard": False},
        run_dir=run_dir, progress=False,
    )


def open_recipe_run(checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike, **train_kwargs: Any) -> Any:
    """``wmenv.open_run(checkpoint)``; without one, the run of a tiny world model trained now into
    ``out_dir/world_model`` with ``train_kwargs`` (reused if an earlier call made it)."""
    if checkpoint is not None:
        return wmenv.open_run(checkpoint)
    run_dir = Path(out_dir) / "world_model"
    if (run_dir / "checkpoint.pt").is_file():
        print(f"reusing the world model in {run_dir}", flush=True)
    else:
        print(f"no --checkpoint: training a tiny world model in {run_dir} ...", flush=True)
        train_tiny_world_model(run_dir, **train_kwargs)
    return wmenv.open_run(run_dir)


def real_env_args(run: Any, env_id: str | None = None,
                  env_kwargs: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``(env id, make_env arguments)`` of the real env: the run's, ``env_kwargs`` on top; or ``env_id``
    (``--env``) with ``env_kwargs`` (default: the run's).

    Raises:
        ConfigError: the run records no env and none is given.
    """
    real = env_id or run.info.env_id
    if not real:
        raise ConfigError(f"{run.path} does not record the env it was trained on; pass --env ID")
    if real == run.info.env_id:
        return real, {**run.info.env_kwargs, **dict(env_kwargs or {})}
    return real, dict(run.info.env_kwargs if env_kwargs is None else env_kwargs)


def judge_env(run: Any, observation_mode: str, env_id: str | None = None,
              env_kwargs: Mapping[str, Any] | None = None,
              wrap: Callable[[gym.Env], gym.Env] | None = None) -> gym.Env:
    """The real env a policy trained in ``run``'s imagination plays (see :func:`real_env_args`), its
    spaces checked against the model's, filtered into latent features in ``"latent"`` mode (as the
    policy saw imagination), then wrapped by ``wrap``.

    Raises:
        UnsupportedSpaceError: the env's spaces are not the model's.
        ConfigError: the run records no env and none is given.
    """
    real, kwargs = real_env_args(run, env_id, env_kwargs)
    if real == run.info.env_id:
        env = run.real_env(observation_mode=observation_mode, **kwargs)
    else:
        env = wmenv.make_env(real, **kwargs)
        try:
            run.check_spaces(env, f"real env {real!r}")
        except UnsupportedSpaceError:
            env.close()
            raise
        if observation_mode == "latent":
            env = wmenv.LatentObservationWrapper(env, run.world_model(observation_mode="latent"))
    return wrap(env) if wrap is not None else env


def real_return(env: gym.Env, policy: Callable[[Any], Any], episodes: int) -> tuple[float, float]:
    """``(mean, std)`` of the undiscounted returns of ``episodes`` seeded real episodes."""
    returns = play_episodes(env, policy, episodes, seed=EVAL_SEED)["episode_returns"]
    return float(np.mean(returns)), float(np.std(returns))


def _kind(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Dict):
        return "dict"
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8:
        return "image"
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return "vector"
    return "other"


#: kind of observation -> (the policy that reads it, how to make a checkpoint emit it)
_FIXES = {
    "vector": ("MlpPolicy (integrations/sb3/ppo_latent.py)", "observation_mode='latent'"),
    "image": ("CnnPolicy (integrations/sb3/ppo_pixels.py)",
              "a pixel world model (e.g. cartpole-swingup with pixels=True) in observation_mode='decoded'"),
    "dict": ("MultiInputPolicy (integrations/sb3/ppo_dict.py)",
             "a Dict-observation model (integrations/sb3/ppo_dict.py wraps one)"),
}


def check_observations(
    space: gym.Space, expected: str, *, who: str, observation_mode: str, source: Any
) -> None:
    """Raise :class:`UnsupportedSpaceError` when ``space`` is not what the policy ``who`` (e.g.
    ``"CnnPolicy"``) reads: ``expected`` is ``"vector"`` (1-D Box), ``"image"`` (``(H, W, C)`` uint8) or
    ``"dict"``. The message names the checkpoint ``source``, its ``observation_mode`` and the fix."""
    got = _kind(space)
    if got == expected:
        return
    what = {"vector": "1-D vector", "image": "(H, W, C) uint8 image", "dict": "Dict"}[expected]
    instead = f"use {_FIXES[got][0]} for these" if got in _FIXES else "use vector, image or Dict observations"
    raise UnsupportedSpaceError(
        f"{who} needs {what} observations, but {source} with observation_mode={observation_mode!r} emits "
        f"{space}; {instead}, or give {who} {_FIXES[expected][1]}"
    )


class ReturnLog:
    """Imagined vs real return over training, written to ``out_dir`` as ``returns.csv``,
    ``returns.png`` and ``results.json`` (with the recipe's ``settings``)."""

    FIELDS = ("step", "imagined_return", "real_return", "real_return_std", "seconds")

    def __init__(self, out_dir: str | os.PathLike, recipe: str, settings: Mapping[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.recipe, self.settings = recipe, dict(settings)
        self.rows: list[dict[str, float]] = []
        self.start = time.perf_counter()

    def add(self, step: int, imagined: float, real: float, real_std: float = 0.0) -> dict[str, float]:
        """Record one evaluation (``imagined`` may be NaN before the first imagined episode ends)."""
        row = {"step": int(step), "imagined_return": float(imagined), "real_return": float(real),
               "real_return_std": float(real_std), "seconds": round(time.perf_counter() - self.start, 2)}
        self.rows.append(row)
        print(f"[{self.recipe}] step {step:>8}: imagined return {imagined:8.2f} | real return "
              f"{real:8.2f} ± {real_std:.2f}", flush=True)
        return row

    def write(self, **extra: Any) -> dict[str, Any]:
        """Write ``returns.csv``, ``returns.png`` and ``results.json``; returns the results dict."""
        if not self.rows:
            raise ConfigError("no evaluation was recorded; nothing to write")
        with open(self.out_dir / "returns.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.FIELDS)
            writer.writeheader()
            writer.writerows(self.rows)
        self._plot(self.out_dir / "returns.png")
        files = {k: str(self.out_dir / name) for k, name in
                 (("csv", "returns.csv"), ("png", "returns.png"), ("json", "results.json"))}
        results = {
            "recipe": self.recipe, "settings": self.settings, "final": dict(self.rows[-1]),
            "best_real_return": max(r["real_return"] for r in self.rows), "evaluations": self.rows,
            "wall_seconds": round(time.perf_counter() - self.start, 2), **extra, "files": files,
        }
        (self.out_dir / "results.json").write_text(json.dumps(_finite(results), indent=2, default=str))
        return results

    def _plot(self, path: Path) -> None:
        from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

        col = {k: np.array([r[k] for r in self.rows], dtype=float) for k in self.FIELDS}
        fig = Figure(figsize=(6, 3.5), layout="tight")
        ax = fig.add_subplot()
        cut = f", cut at {self.settings['horizon']} steps" if self.settings.get("horizon") else ""
        ax.plot(col["step"], col["imagined_return"], "o--", label=f"imagined (world model{cut})")
        ax.plot(col["step"], col["real_return"], "o-", color="C1", label="real env (± std)")
        lo, hi = col["real_return"] - col["real_return_std"], col["real_return"] + col["real_return_std"]
        ax.fill_between(col["step"], lo, hi, color="C1", alpha=0.2)
        ax.set(xlabel="imagined env steps", ylabel="episode return", title=self.recipe)
        ax.legend()
        fig.savefig(path, dpi=100)


def _finite(obj: Any) -> Any:
    """NaN/inf to ``None`` so the JSON is strict."""
    if isinstance(obj, dict | list | tuple):
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        out = {k: _finite(v) for k, v in items}
        return out if isinstance(obj, dict) else list(out.values())
    return None if isinstance(obj, float) and not np.isfinite(obj) else obj


class ImaginedVsRealCallback(BaseCallback):
    """SB3 callback: every ``eval_every`` imagined steps (and at the end) play ``episodes`` episodes in
    the real env ``real``; the imagined return is the mean of the last episodes ``VecMonitor`` recorded."""

    def __init__(self, real: gym.Env, episodes: int, log: ReturnLog, eval_every: int,
                 deterministic: bool = True) -> None:
        super().__init__()
        self.real, self.episodes, self.log = real, episodes, log
        self.eval_every, self.deterministic = eval_every, deterministic
        self._next = eval_every

    def _evaluate(self) -> None:
        infos = self.model.ep_info_buffer or []
        imagined = float(np.mean([ep["r"] for ep in infos])) if infos else float("nan")
        real, std = real_return(
            self.real, lambda obs: self.model.predict(obs, deterministic=self.deterministic)[0], self.episodes
        )
        self.log.add(self.num_timesteps, imagined, real, std)
        self.logger.record("eval/real_return", real)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._evaluate()
            self._next = (self.num_timesteps // self.eval_every + 1) * self.eval_every
        return True

    def _on_training_end(self) -> None:
        if not self.log.rows or self.log.rows[-1]["step"] != self.num_timesteps:
            self._evaluate()


def recipe_parser(description: str, *, total_steps: int, num_envs: int, horizon: int, eval_every: int,
                  out: str) -> argparse.ArgumentParser:
    """The flags every recipe takes (each recipe adds its own)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--checkpoint", default=None, help="run dir or checkpoint.pt (default: train a tiny one)")
    p.add_argument("--env", default=None, help="real env id (default: the one the run records)")
    p.add_argument("--total-steps", type=int, default=total_steps, help="imagined env steps of training")
    p.add_argument("--num-envs", type=int, default=num_envs, help="imagined envs stepped in one batch")
    p.add_argument("--horizon", type=int, default=horizon, help="imagined episode length (truncation)")
    p.add_argument("--eval-every", type=int, default=eval_every, help="imagined steps between real evals")
    p.add_argument("--eval-episodes", type=int, default=5, help="real episodes per evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=out, help="output directory (results.json, returns.csv/png)")
    p.add_argument("--wm-updates", type=int, default=300, help="world-model updates without --checkpoint")
    p.add_argument("--wm-seed-steps", type=int, default=2000, help="random real steps for that world model")
    return p


def prepare(args: argparse.Namespace, *, env_id: str = DEFAULT_ENV, env_kwargs: Mapping[str, Any] | None = None,
            **train_kwargs: Any) -> Any:
    """Check the flags, one thread, then the ``--checkpoint`` run (or one trained here on ``--env`` or
    ``env_id`` with ``--env-kwargs`` or ``env_kwargs``), opened with :func:`wmenv.open_run`."""
    if args.eval_episodes < 1:
        raise ConfigError(f"--eval-episodes must be >= 1, got {args.eval_episodes}")
    limit_threads(1)
    torch.manual_seed(args.seed)
    explicit = getattr(args, "env_kwargs", None)  # a recipe's --env-kwargs, when it has one
    return open_recipe_run(
        args.checkpoint, args.out, env_id=args.env or env_id, env_kwargs=explicit or env_kwargs,
        updates=args.wm_updates, seed_steps=args.wm_seed_steps, seed=args.seed, **train_kwargs,
    )


def settings(run: Any, flags: Mapping[str, Any], observation_mode: str, env_id: str | None = None,
             env_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The recipe's ``flags`` plus the run and its real env, as plain data for results files."""
    real, kwargs = real_env_args(run, env_id, env_kwargs)
    return {**flags, "checkpoint": str(run.path), "env_id": real, "env_kwargs": kwargs,
            "observation_mode": observation_mode}


def sb3_imagined_vec_env(run: Any, args: argparse.Namespace, kind: str, who: str, observation_mode: str,
                         world_model: Any = None) -> Any:
    """The recipes' SB3 training env: ``run.make_env("sb3")`` (``--num-envs`` members, ``--horizon``)
    over ``world_model`` (default: the run's in ``observation_mode``), its observations checked against
    the policy ``who`` expects (``kind``: vector, image or dict), under ``VecMonitor``."""
    from stable_baselines3.common.vec_env import VecMonitor

    venv = run.make_env("sb3", num_envs=args.num_envs, max_episode_steps=args.horizon,
                        observation_mode=observation_mode, seed=args.seed, world_model=world_model)
    check_observations(venv.observation_space, kind, who=who, observation_mode=observation_mode, source=run.path)
    return VecMonitor(venv)  # imagined episode returns -> model.ep_info_buffer


def sb3_learn_judged(agent: Any, run: Any, args: argparse.Namespace, title: str, observation_mode: str,
                     real_wrap: Callable[[gym.Env], gym.Env] | None = None) -> dict[str, Any]:
    """Train an SB3 agent in imagination for ``--total-steps``, judging it in the real env every
    ``--eval-every`` steps; saves ``policy.zip`` and returns what ``results.json`` holds."""
    explicit = getattr(args, "env_kwargs", None)
    real = judge_env(run, observation_mode, args.env, explicit, wrap=real_wrap)
    log = ReturnLog(args.out, title, settings(run, vars(args), observation_mode, args.env, explicit))
    try:
        agent.learn(args.total_steps, callback=ImaginedVsRealCallback(real, args.eval_episodes, log, args.eval_every))
    finally:
        real.close()
    agent.save(Path(args.out) / "policy.zip")
    return log.write(policy=str(Path(args.out) / "policy.zip"))
