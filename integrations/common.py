"""What every recipe shares: a checkpoint (or a tiny one trained here), the real-env judge, the log.

* :func:`ensure_checkpoint`: the run directory given (``wmenv train`` / ``wmenv demo``), or a tiny
  world model trained first with :func:`train_world_model`, so recipes run on a fresh install;
* :func:`load_recipe_imagination` -> :class:`Imagination`: the ``WorldModel``, real start states and
  :meth:`Imagination.real_env`, the real env seen through the model's filter for latent observations;
* :class:`RealEnvJudge` plays a policy there; :class:`ReturnLog` writes imagined vs real return over
  training (CSV, PNG, JSON); :class:`ImaginedVsRealCallback` does both from inside SB3's ``learn``;
* :func:`check_observations`: a policy/observation mismatch as a typed error that names the fix.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.core.protocol import StartStates

__all__ = ["DEFAULT_ENV", "TINY_OVERRIDES", "limit_threads", "train_world_model", "ensure_checkpoint",
           "Imagination", "load_recipe_imagination", "check_observations", "RealEnvJudge", "ReturnLog",
           "ImaginedVsRealCallback", "recipe_parser", "prepare"]

DEFAULT_ENV = "CartPole-v1"
#: Dreamer config overrides of the world model trained when no checkpoint is given (CPU, seconds).
TINY_OVERRIDES: dict[str, Any] = {
    "rssm.deter": 64, "rssm.hidden": 64, "rssm.stoch": 8, "rssm.classes": 8, "mlp_units": 64,
    "terminal_weight": 5.0,  # CartPole's terminations are rare: weigh them up in the continue loss
}


def limit_threads(n: int = 1) -> None:
    """One torch thread: small models on a shared CPU run faster without thread contention."""
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    torch.set_num_threads(n)


def train_world_model(
    run_dir: str | os.PathLike, env_id: str = DEFAULT_ENV, *, env_kwargs: Mapping[str, Any] | None = None,
    model: str = "dreamer-wm", preset: str = "tiny", overrides: Mapping[str, Any] | None = None,
    updates: int = 300, seed_steps: int = 2000, batch_size: int = 8, seq_len: int = 16, seed: int = 0,
) -> Path:
    """``wmenv train`` from Python: random real experience, then ``updates`` world-model updates.

    Unlike the CLI it takes ``env_kwargs`` (e.g. ``pixels=True``) and records them in the checkpoint
    next to the env id, so recipes rebuild the same real env. Returns ``run_dir`` (with ``checkpoint.pt``).
    """
    from wmenv.envs.make import make_env
    from wmenv.registry import create_config, create_model, get_model_spec
    from wmenv.train import Collector, Trainer, TrainerConfig, make_replay
    from wmenv.train.trainer import REPLAY_SCRATCH

    run_dir = Path(run_dir)
    env_kwargs = dict(env_kwargs or {})
    overrides = dict(TINY_OVERRIDES if overrides is None else overrides)
    torch.manual_seed(seed)
    np.random.seed(seed)
    env = make_env(env_id, **env_kwargs)
    spec = get_model_spec(model)
    config = create_config(model, preset, overrides)
    net = create_model(spec.name, env=env, config=config)
    replay = make_replay(2 * seed_steps + 16, run_dir / REPLAY_SCRATCH, seed=seed)
    collector = Collector(env, replay, seed=seed, progress=False)
    try:
        stats = collector.collect(seed_steps)
        collector.flush()
    finally:
        collector.close()
    tconf = TrainerConfig(steps=updates, batch_size=batch_size, seq_len=seq_len, lr=1e-3, log_every=25,
                          checkpoint_every=0, seed=seed, tensorboard=False, progress=False)
    trainer = Trainer(net, replay, tconf, run_dir, model_name=spec.name, model_config=config,
                      family=spec.family, observation_space=env.observation_space,
                      action_space=env.action_space)
    args = {"model": spec.name, "env": env_id, "preset": preset, "seed_steps": seed_steps, "collect_every": 0,
            "collect_steps": 0, "num_envs": 1, "seed": seed,
            "overrides": {k: str(v) for k, v in overrides.items()}}  # as `wmenv train` records them
    trainer.user_state = {"args": args, "env_steps": stats.steps, "env_kwargs": env_kwargs}
    trainer.train(updates)
    trainer.save()
    trainer.close()
    return run_dir


def ensure_checkpoint(
    checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike, **train_kwargs: Any
) -> Path:
    """The run directory of ``checkpoint`` (``wmenv train`` / ``wmenv demo``), else of a tiny world model
    trained now into ``out_dir/world_model`` with ``train_kwargs`` (reused if an earlier call made it)."""
    from wmenv.envs.loading import resolve_checkpoint

    if checkpoint is not None:
        return resolve_checkpoint(checkpoint).parent
    run_dir = Path(out_dir) / "world_model"
    if (run_dir / "checkpoint.pt").is_file():
        print(f"reusing the world model in {run_dir}", flush=True)
        return run_dir
    print(f"no --checkpoint: training a tiny world model in {run_dir} ...", flush=True)
    return train_world_model(run_dir, **train_kwargs)


@dataclass
class Imagination:
    """A run directory loaded for a recipe: the ``WorldModel`` (whose Dreamer adapter also filters real
    observations), the real replay slices episodes start from, and the real env (id, ``make_env``
    arguments and the spaces the model was trained on)."""

    checkpoint: Path
    world_model: Any
    start_states: StartStates
    observation_mode: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None

    def describe(self) -> dict[str, Any]:
        """Plain data for results files."""
        keys = ("env_id", "env_kwargs", "observation_mode")
        return {"checkpoint": str(self.checkpoint), **{k: getattr(self, k) for k in keys}}

    @property
    def imagined_observation_space(self) -> gym.Space:
        """What a policy sees in imagination (the face's observation space)."""
        from wmenv.core.specs import spec_to_space

        return spec_to_space(self.world_model.observation_spec)

    def real_env(self, wrap: Callable[[gym.Env], gym.Env] | None = None) -> gym.Env:
        """The real env to judge in, showing the observations the policy saw in imagination: spaces
        checked against the model's (else :class:`UnsupportedSpaceError`), then wrapped by
        :class:`~wmenv.envs.latent.LatentObservationWrapper` in ``"latent"`` mode, then by ``wrap``."""
        from wmenv.envs.latent import LatentObservationWrapper
        from wmenv.envs.make import make_env

        env = make_env(self.env_id, **self.env_kwargs)
        for kind, ours in (("observation", self.observation_space), ("action", self.action_space)):
            theirs = getattr(env, f"{kind}_space")
            if ours is not None and _space_key(ours) != _space_key(theirs):
                env.close()
                raise UnsupportedSpaceError(
                    f"real env {self.env_id!r} has {kind} space {theirs}, but the world model in "
                    f"{self.checkpoint} was trained on {ours}; judge the policy in the env the model was "
                    f"trained on (--env), or train one on {self.env_id!r} (wmenv train --env {self.env_id})")
        if self.observation_mode == "latent":
            env = LatentObservationWrapper(env, self.world_model)
        return wrap(env) if wrap is not None else env


def _space_key(space: gym.Space) -> tuple[Any, ...]:
    if isinstance(space, gym.spaces.Discrete):
        return ("Discrete", int(space.n))
    if isinstance(space, gym.spaces.Dict):
        return ("Dict", tuple((k, _space_key(s)) for k, s in space.spaces.items()))
    return (type(space).__name__, tuple(space.shape or ()), str(space.dtype))


def _recorded_env(path: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The env id and ``make_env`` arguments of a run: ``wmenv train`` and :func:`train_world_model` keep
    them in the checkpoint, ``wmenv demo`` in ``summary.json`` next to it."""
    user = (meta.get("extra") or {}).get("user_state") or {}
    if (user.get("args") or {}).get("env"):
        return {"env_id": user["args"]["env"], "env_kwargs": user.get("env_kwargs") or {}}
    summary = path.parent / "summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        kwargs = (data.get("config") or {}).get("env_kwargs") or {}
        return {"env_id": data.get("env_id"), "env_kwargs": kwargs}
    return {}


def load_recipe_imagination(
    checkpoint: str | os.PathLike, observation_mode: str, *, env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None, context_length: int | None = None,
) -> Imagination:
    """Load a run directory for a recipe; ``ConfigError`` if its env is neither recorded nor given."""
    from wmenv.envs.loading import load_imagination, resolve_checkpoint
    from wmenv.train.checkpoint import load_checkpoint, space_from_dict

    path = resolve_checkpoint(checkpoint)
    meta = load_checkpoint(path)
    recorded = _recorded_env(path, meta)
    env_id = env_id or recorded.get("env_id")
    if not env_id:
        raise ConfigError(f"checkpoint {path} does not record the env it was trained on; pass --env ID")
    kwargs = dict(recorded.get("env_kwargs") or {}) if env_kwargs is None else dict(env_kwargs)
    world_model, start = load_imagination(path, observation_mode=observation_mode,
                                          context_length=context_length)
    return Imagination(
        path.parent, world_model, start, observation_mode, env_id, kwargs,
        space_from_dict(meta["observation_space"]), space_from_dict(meta["action_space"]),
    )


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


class RealEnvJudge:
    """Plays ``policy(obs) -> action`` in the real env (e.g. :meth:`Imagination.real_env`); episode ``i`` of
    every evaluation resets with ``seed + i``, so evaluations during training are comparable."""

    def __init__(self, env: gym.Env, episodes: int = 5, seed: int = 10_000) -> None:
        if episodes < 1:
            raise ConfigError(f"--eval-episodes must be >= 1, got {episodes}")
        self.env, self.episodes, self.seed = env, episodes, seed

    def __call__(self, policy: Callable[[Any], Any]) -> tuple[float, float]:
        """``(mean, std)`` of the undiscounted real returns."""
        returns = []
        for i in range(self.episodes):
            obs, _ = self.env.reset(seed=self.seed + i)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = self.env.step(policy(_contiguous(obs)))
                total += float(reward)
                done = bool(terminated or truncated)
            returns.append(total)
        return float(np.mean(returns)), float(np.std(returns))

    def close(self) -> None:
        """Close the real env."""
        self.env.close()


def _contiguous(obs: Any) -> Any:
    """Copy arrays with negative strides (rendered frames are often flipped views) for torch."""
    if isinstance(obs, dict):
        return {k: _contiguous(v) for k, v in obs.items()}
    return np.ascontiguousarray(obs) if isinstance(obs, np.ndarray) else obs


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
        (self.out_dir / "results.json").write_text(json.dumps(_finite(results), indent=2))
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
    """SB3 callback: every ``eval_every`` imagined steps (and at the end) judge the policy in the real
    env; the imagined return is the mean of the last episodes ``VecMonitor`` recorded."""

    def __init__(self, judge: RealEnvJudge, log: ReturnLog, eval_every: int, deterministic: bool = True):
        super().__init__()
        self.judge, self.log, self.eval_every, self.deterministic = judge, log, eval_every, deterministic
        self._next = eval_every

    def _evaluate(self) -> None:
        infos = self.model.ep_info_buffer or []
        imagined = float(np.mean([ep["r"] for ep in infos])) if infos else float("nan")
        real, std = self.judge(lambda obs: self.model.predict(obs, deterministic=self.deterministic)[0])
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
    p.add_argument("--env", default=None, help="real env id (default: the one the checkpoint records)")
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


def prepare(args: argparse.Namespace, observation_mode: str, *, env_id: str = DEFAULT_ENV,
            env_kwargs: Mapping[str, Any] | None = None, **train_kwargs: Any) -> Imagination:
    """One thread, then the checkpoint (given, or trained here on ``env_id`` with ``env_kwargs``), loaded.
    A given checkpoint's real env is the one it records unless ``--env`` / ``--env-kwargs`` say otherwise."""
    limit_threads(1)
    torch.manual_seed(args.seed)
    explicit = getattr(args, "env_kwargs", None)  # a recipe's --env-kwargs, when it has one
    run = ensure_checkpoint(
        args.checkpoint, args.out, env_id=args.env or env_id, env_kwargs=explicit or env_kwargs,
        updates=args.wm_updates, seed_steps=args.wm_seed_steps, seed=args.seed, **train_kwargs,
    )
    return load_recipe_imagination(run, observation_mode, env_id=args.env, env_kwargs=explicit)


def sb3_imagined_vec_env(imagination: Imagination, args: argparse.Namespace, kind: str, who: str,
                         observation_mode: str, model: Any = None) -> Any:
    """The recipes' SB3 training env: ``WorldModelSB3VecEnv`` (``--num-envs`` members, ``--horizon``)
    over ``model`` (default: the imagination's world model), its observations checked against
    the policy ``who`` expects (``kind``: vector, image or dict), under ``VecMonitor``."""
    from stable_baselines3.common.vec_env import VecMonitor

    from wmenv.envs import WorldModelSB3VecEnv

    venv = WorldModelSB3VecEnv(
        imagination.world_model if model is None else model,
        imagination.start_states,
        args.num_envs,
        max_episode_steps=args.horizon,
        seed=args.seed,
    )
    check_observations(
        venv.observation_space, kind, who=who, observation_mode=observation_mode, source=imagination.checkpoint
    )
    return VecMonitor(venv)  # imagined episode returns -> model.ep_info_buffer


def sb3_learn_judged(agent: Any, imagination: Imagination, args: argparse.Namespace, title: str,
                     real_wrap: Callable[[gym.Env], gym.Env] | None = None) -> dict[str, Any]:
    """Train an SB3 agent in imagination for ``--total-steps``, judging it in the real env every
    ``--eval-every`` steps; saves ``policy.zip`` and returns what ``results.json`` holds."""
    judge = RealEnvJudge(imagination.real_env(wrap=real_wrap), episodes=args.eval_episodes)
    log = ReturnLog(args.out, title, {**vars(args), **imagination.describe()})
    try:
        agent.learn(args.total_steps, callback=ImaginedVsRealCallback(judge, log, args.eval_every))
    finally:
        judge.close()
    agent.save(Path(args.out) / "policy.zip")
    return log.write(policy=str(Path(args.out) / "policy.zip"))
