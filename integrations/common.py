"""What every recipe shares: a checkpoint (or a tiny one trained here), the real-env judge, the log.

A recipe trains a policy inside a world model and is judged in the REAL env. This module holds the
pieces the SB3, TorchRL and CleanRL recipes have in common, so none of them copies another:

* :func:`ensure_checkpoint` returns a run directory: the one given (``wmenv train`` / ``wmenv demo``)
  or a tiny world model trained here first with :func:`train_world_model` (fresh installs);
* :func:`load_recipe_imagination` loads it as an :class:`Imagination` (the ``WorldModel``, real
  start states, the real env id) whose :meth:`Imagination.real_env` is the real env the policy
  is judged in, seen through the model's posterior filter when observations are latent;
* :class:`RealEnvJudge` plays a ``policy(obs) -> action`` in that env for seeded episodes;
* :class:`ReturnLog` records imagined vs real return over training and writes CSV, PNG and JSON;
* :class:`ImaginedVsRealCallback` does both from inside Stable-Baselines3's ``learn``;
* :func:`check_observations` turns a policy/observation mismatch into a typed error naming the fix.
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

__all__ = [
    "DEFAULT_ENV",
    "TINY_OVERRIDES",
    "limit_threads",
    "train_world_model",
    "ensure_checkpoint",
    "Imagination",
    "load_recipe_imagination",
    "check_observations",
    "RealEnvJudge",
    "ReturnLog",
    "ImaginedVsRealCallback",
    "recipe_parser",
    "prepare",
]

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


# ------------------------------------------------------------------------------------ checkpoint
def train_world_model(
    run_dir: str | os.PathLike,
    env_id: str = DEFAULT_ENV,
    *,
    env_kwargs: Mapping[str, Any] | None = None,
    model: str = "dreamer-wm",
    preset: str = "tiny",
    overrides: Mapping[str, Any] | None = None,
    updates: int = 300,
    seed_steps: int = 2000,
    batch_size: int = 8,
    seq_len: int = 16,
    seed: int = 0,
) -> Path:
    """Collect random real experience and train a world model: ``wmenv train`` from Python.

    Unlike the CLI it accepts ``env_kwargs`` (e.g. ``pixels=True`` for dm_control) and records them
    in the checkpoint next to the env id, so recipes rebuild the same real env to judge policies.

    Returns:
        The run directory (holding ``checkpoint.pt`` and the replay snapshot it names).
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
    spaces = {"observation_space": env.observation_space, "action_space": env.action_space}
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
                      family=spec.family, **spaces)
    args = {"model": spec.name, "env": env_id, "preset": preset, "seed_steps": seed_steps, "collect_every": 0,
            "collect_steps": 0, "num_envs": 1, "seed": seed, "overrides": {k: str(v) for k, v in overrides.items()}}
    trainer.user_state = {"args": args, "env_steps": stats.steps, "env_kwargs": env_kwargs}
    trainer.train(updates)
    trainer.save()
    trainer.close()
    return run_dir


def ensure_checkpoint(checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike, **train_kwargs: Any) -> Path:
    """The run directory to imagine in: ``checkpoint`` if given, else a tiny world model trained now.

    A world model trained by an earlier call (``out_dir/world_model``) is reused, not retrained.

    Args:
        checkpoint: a run directory or ``checkpoint.pt`` from ``wmenv train`` / ``wmenv demo``.
        out_dir: the recipe's output directory.
        **train_kwargs: passed to :func:`train_world_model`.
    """
    from wmenv.envs.loading import resolve_checkpoint

    if checkpoint is not None:
        return resolve_checkpoint(checkpoint).parent
    run_dir = Path(out_dir) / "world_model"
    if (run_dir / "checkpoint.pt").is_file():
        print(f"reusing the world model in {run_dir}", flush=True)
        return run_dir
    start = time.perf_counter()
    print(f"no --checkpoint: training a tiny world model in {run_dir} ...", flush=True)
    train_world_model(run_dir, **train_kwargs)
    print(f"trained in {time.perf_counter() - start:.0f} s", flush=True)
    return run_dir


@dataclass
class Imagination:
    """A checkpoint loaded for a recipe.

    Attributes:
        checkpoint: run directory.
        world_model: the model as a ``wmenv.core.WorldModel`` (the Dreamer adapter also filters
            real observations, see ``wmenv.envs.latent``).
        start_states: real replay slices imagined episodes start from.
        observation_mode: ``"latent"`` or ``"decoded"``.
        env_id: the real env the model was trained on.
        env_kwargs: its ``make_env`` arguments.
        observation_space: the real env's observation space the model was trained on.
        action_space: the real env's action space.
    """

    checkpoint: Path
    world_model: Any
    start_states: StartStates
    observation_mode: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None

    def describe(self) -> dict[str, Any]:
        """Plain-data description for results files."""
        return {"checkpoint": str(self.checkpoint), "env_id": self.env_id, "env_kwargs": self.env_kwargs,
                "observation_mode": self.observation_mode}

    @property
    def imagined_observation_space(self) -> gym.Space:
        """What a policy sees in imagination (the face's observation space)."""
        from wmenv.core.specs import spec_to_space

        return spec_to_space(self.world_model.observation_spec)

    def real_env(self, wrap: Callable[[gym.Env], gym.Env] | None = None) -> gym.Env:
        """The real env the policy is judged in: same spaces as in imagination.

        Checks that the real env has the spaces the model was trained on, then wraps it with
        :class:`~wmenv.envs.latent.LatentObservationWrapper` in ``"latent"`` mode, then ``wrap``.

        Raises:
            UnsupportedSpaceError: the real env's spaces differ from the model's.
        """
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
                    f"trained on (--env), or train a world model on {self.env_id!r} "
                    f"(wmenv train dreamer-wm --env {self.env_id})"
                )
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
    """The env id and ``make_env`` arguments a run recorded: ``wmenv train`` / :func:`train_world_model`
    keep them in the checkpoint, ``wmenv demo`` in ``summary.json`` next to it."""
    user = (meta.get("extra") or {}).get("user_state") or {}
    if (user.get("args") or {}).get("env"):
        return {"env_id": user["args"]["env"], "env_kwargs": user.get("env_kwargs") or {}}
    summary = path.parent / "summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        return {"env_id": data.get("env_id"), "env_kwargs": (data.get("config") or {}).get("env_kwargs") or {}}
    return {}


def load_recipe_imagination(
    checkpoint: str | os.PathLike, observation_mode: str, *, env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None, context_length: int | None = None,
) -> Imagination:
    """Load a run directory for a recipe (model, start states, real env id and spaces).

    Raises:
        ConfigError: the checkpoint does not record its env and ``env_id`` is not given.
    """
    from wmenv.envs.loading import load_imagination, resolve_checkpoint
    from wmenv.train.checkpoint import load_checkpoint, space_from_dict

    path = resolve_checkpoint(checkpoint)
    meta = load_checkpoint(path)
    recorded = _recorded_env(path, meta)
    env_id = env_id or recorded.get("env_id")
    if not env_id:
        raise ConfigError(f"checkpoint {path} does not record the env it was trained on; pass --env ID")
    kwargs = dict(recorded.get("env_kwargs") or {}) if env_kwargs is None else dict(env_kwargs)
    world_model, start = load_imagination(path, observation_mode=observation_mode, context_length=context_length)
    return Imagination(
        path.parent, world_model, start, observation_mode, env_id, kwargs,
        space_from_dict(meta["observation_space"]), space_from_dict(meta["action_space"]),
    )


# ------------------------------------------------------------------------------------ checks
def _kind(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Dict):
        return "dict"
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8:
        return "image"
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return "vector"
    return "other"


_FIXES = {
    "vector": "use MlpPolicy (integrations/sb3/ppo_latent.py) or observation_mode='latent' for vectors",
    "image": "use CnnPolicy (integrations/sb3/ppo_pixels.py) with a pixel world model and "
             "observation_mode='decoded'",
    "dict": "use MultiInputPolicy (integrations/sb3/ppo_dict.py)",
}


def check_observations(space: gym.Space, expected: str, *, who: str, observation_mode: str, source: Any) -> None:
    """Raise :class:`UnsupportedSpaceError` when ``space`` is not what the policy ``who`` takes.

    Args:
        space: observation space the policy would see.
        expected: ``"vector"`` (1-D Box), ``"image"`` (``(H, W, C)`` uint8) or ``"dict"``.
        who: the policy, e.g. ``"CnnPolicy"``.
        observation_mode: the imagination mode, named in the message.
        source: checkpoint path, named in the message.
    """
    got = _kind(space)
    if got == expected:
        return
    what = {"vector": "1-D vector", "image": "(H, W, C) uint8 image", "dict": "Dict"}[expected]
    fix = _FIXES.get(got, "use a checkpoint whose observations are vectors, images or dicts")
    raise UnsupportedSpaceError(
        f"{who} needs {what} observations, but {source} with observation_mode={observation_mode!r} emits "
        f"{space}; {fix}"
    )


# ------------------------------------------------------------------------------------ judging
class RealEnvJudge:
    """Plays ``policy(obs) -> action`` in the real env for seeded episodes (mean and std of returns).

    Episode ``i`` of every evaluation resets with ``seed + i``, so successive evaluations during
    training see the same starts and are comparable.

    Args:
        env: the real env (e.g. :meth:`Imagination.real_env`).
        episodes: episodes per evaluation.
        seed: reset seed of the first episode.
    """

    def __init__(self, env: gym.Env, episodes: int = 5, seed: int = 10_000) -> None:
        if episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {episodes}")
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
    """Imagined vs real return over training: rows in memory, then CSV + PNG + results JSON.

    Args:
        out_dir: directory for ``returns.csv``, ``returns.png`` and ``results.json``.
        recipe: recipe name (title of the plot, key in the JSON).
        settings: the recipe's settings, stored in the JSON.
    """

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
        last = self.rows[-1]
        results = {
            "recipe": self.recipe, "settings": self.settings,
            "final": {"step": last["step"], "imagined_return": last["imagined_return"],
                      "real_return": last["real_return"], "real_return_std": last["real_return_std"]},
            "best_real_return": max(r["real_return"] for r in self.rows),
            "wall_seconds": round(time.perf_counter() - self.start, 2), "evaluations": self.rows, **extra,
            "files": {k: str(self.out_dir / f"returns.{k}") for k in ("csv", "png")}
            | {"json": str(self.out_dir / "results.json")},
        }
        (self.out_dir / "results.json").write_text(json.dumps(_finite(results), indent=2))
        return results

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = [r["step"] for r in self.rows]
        real = np.array([r["real_return"] for r in self.rows])
        std = np.array([r["real_return_std"] for r in self.rows])
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(steps, [r["imagined_return"] for r in self.rows], "o--", label="imagined (world model)")
        ax.plot(steps, real, "o-", label="real env")
        ax.fill_between(steps, real - std, real + std, alpha=0.2)
        ax.set(xlabel="imagined env steps", ylabel="episode return", title=self.recipe)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def _finite(obj: Any) -> Any:
    """NaN/inf to ``None`` so the JSON is strict."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class ImaginedVsRealCallback(BaseCallback):
    """SB3 callback: every ``eval_every`` imagined steps, judge the policy in the real env.

    The imagined return is the mean of the last episodes ``VecMonitor`` recorded in imagination.

    Args:
        judge: plays the policy in the real env.
        log: where imagined and real returns go.
        eval_every: imagined env steps between evaluations (one more runs when training ends).
        deterministic: act greedily in the real env.
    """

    def __init__(self, judge: RealEnvJudge, log: ReturnLog, eval_every: int, deterministic: bool = True) -> None:
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


# ------------------------------------------------------------------------------------ CLI
def recipe_parser(description: str, *, total_steps: int, num_envs: int, horizon: int, eval_every: int,
                  out: str) -> argparse.ArgumentParser:
    """The flags every recipe takes (each recipe adds its own)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--checkpoint", default=None, help="run dir / checkpoint.pt (default: train a tiny one first)")
    p.add_argument("--env", default=None, help="real env id (default: the one the checkpoint records)")
    p.add_argument("--total-steps", type=int, default=total_steps, help="imagined env steps of training")
    p.add_argument("--num-envs", type=int, default=num_envs, help="imagined envs stepped in one batch")
    p.add_argument("--horizon", type=int, default=horizon, help="imagined episode length (truncation)")
    p.add_argument("--eval-every", type=int, default=eval_every, help="imagined steps between real evaluations")
    p.add_argument("--eval-episodes", type=int, default=5, help="real episodes per evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=out, help="output directory (results.json, returns.csv/png)")
    p.add_argument("--wm-updates", type=int, default=300, help="world-model updates when no checkpoint is given")
    p.add_argument("--wm-seed-steps", type=int, default=2000, help="random real steps for that world model")
    return p


def prepare(args: argparse.Namespace, observation_mode: str, *, env_id: str = DEFAULT_ENV,
            env_kwargs: Mapping[str, Any] | None = None, **train_kwargs: Any) -> Imagination:
    """One thread, a checkpoint (given or trained here with ``env_kwargs``), loaded for the recipe.

    The real env of a given checkpoint is the one it records (``--env`` / ``--env-kwargs`` override).
    """
    limit_threads(1)
    torch.manual_seed(args.seed)
    explicit = getattr(args, "env_kwargs", None)  # a recipe's --env-kwargs, when it has one
    run = ensure_checkpoint(
        args.checkpoint, args.out, env_id=args.env or env_id, env_kwargs=explicit or env_kwargs,
        updates=args.wm_updates, seed_steps=args.wm_seed_steps, seed=args.seed, **train_kwargs,
    )
    return load_recipe_imagination(run, observation_mode, env_id=args.env, env_kwargs=explicit)
