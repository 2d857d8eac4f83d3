"""``wmenv imagine``: the real env and the world model side by side, driven by the SAME actions.

The model starts from the real env's first ``K`` observations (burned in through the adapter's
``initial_state`` with a context in the replay row format), then both run ``N`` steps with the
actions of the checkpoint's own policy (when the model has ``make_policy``) or random ones, and a
video compares them (side by side for images, line plots for vectors). :func:`imagination_gap`
asks the same of a policy's return: inside the world model vs in the real env.

Usage::

    wmenv imagine --checkpoint runs/my_run --out rollout.gif --steps 50 --context 8
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict

from wmenv.core.errors import CheckpointError, ConfigError, UnsupportedSpaceError

__all__ = [
    "load_world_model",
    "checkpoint_env_id",
    "check_env_spaces",
    "model_policy",
    "imagine_rollout",
    "imagination_gap",
    "register",
    "run_imagine",
]


def load_world_model(
    checkpoint: str | os.PathLike, observation_mode: str | None = "decoded", device: str = "cpu"
) -> tuple[Any, torch.nn.Module, dict[str, Any]]:
    """A checkpoint's model as a ``WorldModel`` (no replay snapshot needed, unlike ``load_imagination``).

    Args:
        checkpoint: ``checkpoint.pt`` or a run directory holding one.
        observation_mode: passed to the family's ``extras["world_model"]`` (``None``: its default).
        device: torch device.

    Returns:
        ``(world_model, model, meta)``: the adapter, the trained module (``eval()`` mode) and the
        checkpoint dict of :func:`wmenv.train.checkpoint.load_model`.

    Raises:
        CheckpointError: missing or unreadable checkpoint, or a family without a world-model adapter.
        ConfigError: the adapter rejects ``observation_mode``.
    """
    from wmenv.envs.loading import resolve_checkpoint
    from wmenv.registry import get_model_spec
    from wmenv.train.checkpoint import load_model

    path = resolve_checkpoint(checkpoint)
    model, meta = load_model(path, device=device)
    model.eval()
    to_world_model = get_model_spec(meta["model_name"]).extras.get("world_model")
    if to_world_model is None:
        raise CheckpointError(f"model {meta['model_name']!r} of {path} has no world-model adapter")
    kwargs = {} if observation_mode is None else {"observation_mode": observation_mode}
    try:
        world_model = to_world_model(model, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build the {meta['model_name']} world model from {path}: {err}") from err
    meta["path"] = str(path)
    return world_model, model, meta


def checkpoint_env_id(meta: dict[str, Any]) -> str | None:
    """The env id a checkpoint was trained on, when the run stored it (``wmenv train`` does)."""
    args = ((meta.get("extra") or {}).get("user_state") or {}).get("args") or {}
    env = args.get("env")
    return str(env) if env else None


def _space_key(space: gym.Space) -> tuple[Any, ...]:
    if isinstance(space, gym.spaces.Discrete):
        return ("Discrete", int(space.n))
    return (type(space).__name__, tuple(getattr(space, "shape", None) or ()), str(getattr(space, "dtype", "")))


def check_env_spaces(env: gym.Env, meta: dict[str, Any], env_id: str = "the env") -> None:
    """Raise :class:`UnsupportedSpaceError` naming both spaces when ``env`` is not the model's.

    Spaces match when type, shape and dtype (``n`` for ``Discrete``) agree; bounds are not compared.
    """
    for kind in ("observation", "action"):
        ours, theirs = meta[f"{kind}_space_obj"], getattr(env, f"{kind}_space")
        if _space_key(ours) != _space_key(theirs):
            raise UnsupportedSpaceError(
                f"{env_id} has {kind} space {theirs}, but the model {meta['model_name']!r} was trained on "
                f"{ours}; pass the env the checkpoint was trained on (--env)"
            )


def model_policy(model: torch.nn.Module, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The model's greedy batched policy ``obs (N, ...) -> actions (N, ...)`` when it has ``make_policy``."""
    make = getattr(model, "make_policy", None)
    if not callable(make):
        return None
    params = inspect.signature(make).parameters
    kwargs: dict[str, Any] = {}
    if "explore" in params:
        kwargs["explore"] = False
    if "seed" in params:
        kwargs["seed"] = seed
    return make(**kwargs)


def _row(obs: np.ndarray, action: np.ndarray, reward: float, term: bool, trunc: bool, first: bool) -> dict:
    return {"observation": obs, "action": action, "reward": reward, "terminated": term, "truncated": trunc,
            "is_first": first, "is_last": term or trunc}


def _stack_rows(rows: list[dict]) -> TensorDict:
    """Rows (replay format, one episode) as a TensorDict ``[1, T]`` context."""
    td = {k: torch.as_tensor(np.stack([np.asarray(r[k]) for r in rows])) for k in rows[0]}
    td["reward"] = td["reward"].float()
    td["episode"] = torch.zeros(len(rows), dtype=torch.int64)
    return TensorDict(td, batch_size=[len(rows)]).unsqueeze(0)


def imagine_rollout(
    checkpoint: str | os.PathLike,
    env_id: str | None = None,
    *,
    steps: int = 50,
    context: int = 8,
    seed: int = 0,
    observation_mode: str = "decoded",
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the real env and the world model on the same actions after a ``context``-step burn-in.

    Args:
        checkpoint: ``checkpoint.pt`` or run directory.
        env_id: real env (default: the one stored in the checkpoint).
        steps: steps after the burn-in (stops earlier if the real episode ends).
        context: real observations ``K`` the model is started from (>= 1).
        seed: real env reset seed, random-action seed and policy seed.
        observation_mode: adapter observation mode; ``"decoded"`` to compare with real observations.
        env_kwargs: extra ``make_env`` arguments.

    Returns:
        ``{"real": (T, ...), "imagined": (T, ...)`` observations (``T = 1 + steps taken``; row 0 is
        the last context observation and the model's first emission), ``"actions"``,
        ``"real_rewards"``, ``"imagined_rewards"``, ``"env_id"``, ``"policy"`` (``"model"`` or
        ``"random"``), ``"model_name"``}.

    Raises:
        ConfigError: ``steps``/``context`` < 1, no env id, or the episode ended during the burn-in.
        UnsupportedSpaceError: the env's spaces differ from the model's.
    """
    from wmenv.train.collect import make_env

    if steps < 1 or context < 1:
        raise ConfigError(f"steps and context must be >= 1, got steps={steps}, context={context}")
    world_model, model, meta = load_world_model(checkpoint, observation_mode)
    env_id = env_id or checkpoint_env_id(meta)
    if not env_id:
        raise ConfigError(f"checkpoint {meta['path']} does not record its env; pass --env ID")
    env = make_env(env_id, **(env_kwargs or {}))
    try:
        check_env_spaces(env, meta, env_id)
        policy = model_policy(model, seed)
        if policy is not None and hasattr(policy, "reset"):
            policy.reset()
        env.action_space.seed(seed)

        def act(obs: np.ndarray) -> np.ndarray:
            if policy is None:
                return np.asarray(env.action_space.sample())
            return np.asarray(policy(np.asarray(obs)[None]))[0]

        obs, _ = env.reset(seed=seed)
        rows = [_row(obs, np.zeros(env.action_space.shape, _action_dtype(env)), 0.0, False, False, True)]
        while len(rows) < context:
            action = act(obs)
            obs, reward, term, trunc, _ = env.step(action)
            rows.append(_row(obs, action, float(reward), bool(term), bool(trunc), False))
            if term or trunc:
                raise ConfigError(f"the real episode ended after {len(rows) - 1} steps, within the "
                                  f"{context}-step burn-in; lower --context or change --seed")
        gen = torch.Generator().manual_seed(seed)
        out = world_model.initial_state(_stack_rows(rows), generator=gen)
        state = out["state"]
        real, imagined = [np.asarray(obs)], [out["observation"][0].cpu().numpy()]
        actions, real_r, imag_r = [], [], []
        for _ in range(steps):
            action = act(obs)
            obs, reward, term, trunc, _ = env.step(action)
            step = world_model.step(state, torch.as_tensor(np.asarray(action)[None]), generator=gen)
            state = step["state"]
            real.append(np.asarray(obs))
            imagined.append(step["observation"][0].cpu().numpy())
            actions.append(np.asarray(action))
            real_r.append(float(reward))
            imag_r.append(float(step["reward"][0]))
            if term or trunc:
                break
    finally:
        env.close()
    return {"real": np.stack(real), "imagined": np.stack(imagined), "actions": np.stack(actions),
            "real_rewards": real_r, "imagined_rewards": imag_r, "env_id": env_id,
            "policy": "random" if policy is None else "model", "model_name": meta["model_name"]}


def _load_policy(policy: Any) -> tuple[Callable[[np.ndarray], Any], tuple[int, ...] | None]:
    """``(obs -> action, observation shape or None)`` from an SB3 model, a .zip path or a callable."""
    if isinstance(policy, str | Path):
        import stable_baselines3

        from wmenv.benchmarks.adapters import detect_sb3_algorithm

        if not Path(policy).is_file():
            raise CheckpointError(f"policy file {str(policy)!r} does not exist (expected an SB3 .zip)")
        policy = getattr(stable_baselines3, detect_sb3_algorithm(policy)).load(str(policy), device="cpu")
    if hasattr(policy, "predict"):
        model = policy
        return (lambda obs: model.predict(obs, deterministic=True)[0]), tuple(model.observation_space.shape)
    if callable(policy):
        return policy, None
    raise ConfigError(f"policy must be an SB3 model, a .zip path or a callable, got {type(policy).__name__}")


def imagination_gap(
    checkpoint: str | os.PathLike,
    policy: Any,
    episodes: int,
    *,
    env_id: str | None = None,
    observation_mode: str | None = None,
    max_episode_steps: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The same policy's mean return inside the world-model env vs in the real env.

    Args:
        checkpoint: ``checkpoint.pt`` or run directory (with its replay snapshot for start states).
        policy: SB3 model, path to an SB3 ``.zip``, or ``obs -> action`` callable.
        episodes: episodes in each env; episode ``i`` resets with ``seed + i``.
        env_id: real env (default: the checkpoint's).
        observation_mode: ``"decoded"`` or ``"latent"``; default: ``"decoded"`` when the policy's
            observation shape is the real env's, else ``"latent"`` (real env then seen through
            ``wmenv.envs.latent.latent_observation_wrapper``).
        max_episode_steps: episode cap in both envs (default: the real env's time limit, else 1000).
        seed: base seed.

    Returns:
        ``imagined_mean``, ``real_mean``, ``gap`` (imagined - real), per-episode returns and lengths,
        ``observation_mode``, ``max_episode_steps``.
    """
    from wmenv.benchmarks.adapters import RealEnvEvaluator, make_real_env
    from wmenv.envs.loading import make_imagination_env, resolve_checkpoint
    from wmenv.train.checkpoint import load_checkpoint

    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    path = resolve_checkpoint(checkpoint)
    meta = load_checkpoint(path)
    env_id = env_id or checkpoint_env_id(meta)
    if not env_id:
        raise ConfigError(f"checkpoint {path} does not record its env; pass env_id (--env)")
    act, shape = _load_policy(policy)
    probe = make_real_env(env_id)
    real_shape = tuple(probe.observation_space.shape or ())
    limit = getattr(probe.spec, "max_episode_steps", None) if probe.spec is not None else None
    probe.close()
    mode = observation_mode or ("decoded" if shape is None or shape == real_shape else "latent")
    horizon = max_episode_steps or limit or 1000
    env = make_imagination_env(path, face="gymnasium", observation_mode=mode, max_episode_steps=horizon, seed=seed)
    imagined: dict[str, list] = {"episode_returns": [], "episode_lengths": []}
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, n, done = 0.0, 0, False
            while not done:
                obs, reward, term, trunc, _ = env.step(act(obs))
                total, n, done = total + float(reward), n + 1, bool(term or trunc)
            imagined["episode_returns"].append(total)
            imagined["episode_lengths"].append(n)
    finally:
        env.close()
    latent = None
    if mode == "latent":
        from wmenv.envs.latent import latent_observation_wrapper

        latent = latent_observation_wrapper(path)

    def wrapper(env: gym.Env) -> gym.Env:  # same horizon in both envs, so returns compare
        return gym.wrappers.TimeLimit(latent(env) if latent else env, max_episode_steps=horizon)

    evaluator = RealEnvEvaluator(env_id, observation_wrapper=wrapper)
    try:
        real = evaluator.run(act, episodes, seed=seed)
    finally:
        evaluator.close()
    im_mean, re_mean = float(np.mean(imagined["episode_returns"])), float(np.mean(real["episode_returns"]))
    return {"env_id": env_id, "observation_mode": mode, "episodes": episodes, "max_episode_steps": horizon,
            "imagined_mean": im_mean, "real_mean": re_mean, "gap": im_mean - re_mean,
            "imagined": imagined, "real": real}


def _action_dtype(env: gym.Env) -> Any:
    return np.float32 if isinstance(env.action_space, gym.spaces.Box) else np.int64


def register(subparsers: Any) -> None:
    """Add ``wmenv imagine`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "imagine",
        help="video of the real env next to the world model, driven by the same actions",
        description="Run the real env and a trained world model side by side with the same actions "
        "(the checkpoint's policy if it has one, else random), the model started from the real env's "
        "first K observations, and write a video (.gif or .mp4).",
    )
    p.add_argument("--checkpoint", required=True, metavar="RUN_OR_CKPT", help="run dir or checkpoint.pt")
    p.add_argument("--out", required=True, help="output video, rollout.gif or rollout.mp4")
    p.add_argument("--env", default=None, help="real env id (default: the one stored in the checkpoint)")
    p.add_argument("--steps", type=int, default=50, help="steps after the burn-in (default 50)")
    p.add_argument("--context", type=int, default=8, help="real burn-in observations K (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--observation-mode", default="decoded", choices=("decoded",),
                   help="what the model emits; decoded = the real observation space")
    p.add_argument("--fps", type=float, default=15)
    p.set_defaults(func=run_imagine)


def run_imagine(args: argparse.Namespace) -> int:
    """Handler of ``wmenv imagine``; errors are typed (the main CLI turns them into exit code 2)."""
    from wmenv.envs.loading import resolve_checkpoint
    from wmenv.video import check_video_path, comparison_frames, write_video

    out = check_video_path(args.out)  # before any slow work
    resolve_checkpoint(args.checkpoint)
    roll = imagine_rollout(args.checkpoint, args.env, steps=args.steps, context=args.context, seed=args.seed,
                           observation_mode=args.observation_mode)
    write_video(comparison_frames(roll["real"], roll["imagined"]), out, fps=args.fps)
    err = float(np.mean((roll["real"].astype(np.float64) - roll["imagined"].astype(np.float64)) ** 2))
    print(f"imagined {len(roll['actions'])} steps of {roll['env_id']} with {roll['model_name']} "
          f"({roll['policy']} actions, context {args.context}); observation MSE {err:.4g} -> {Path(out)}")
    return 0
