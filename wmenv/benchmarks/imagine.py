"""``wmenv imagine``: the real env and the world model side by side, driven by the SAME actions.

The model starts from the real env's first ``K`` observations (burned in through the adapter's
``initial_state`` with a context in the replay row format), then both run ``N`` steps with the
actions of the checkpoint's own policy (when the model has ``make_policy``) or random ones, and a
video compares them (side by side for images, line plots for vectors). :func:`imagination_gap`
asks the same of a policy's return: inside the world model vs in the real env.

The command is ``wmenv imagine`` (:mod:`wmenv.cli.imagine`)::

    wmenv imagine --checkpoint runs/my_run --out rollout.gif --steps 50 --context 8
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict

from wmenv.core.errors import CheckpointError, ConfigError
from wmenv.envs.evaluate import RealEnvEvaluator, make_real_env, play_episodes
from wmenv.envs.make import make_env

__all__ = ["imagine_rollout", "imagination_gap"]


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
    from wmenv.runs import open_run

    if steps < 1 or context < 1:
        raise ConfigError(f"steps and context must be >= 1, got steps={steps}, context={context}")
    run = open_run(checkpoint)
    world_model = run.world_model(observation_mode)
    env_id = env_id or run.info.env_id
    if not env_id:
        raise ConfigError(f"run {run.path} does not record its env; pass --env ID")
    env = make_env(env_id, **(run.info.env_kwargs if env_kwargs is None else env_kwargs))
    try:
        run.check_spaces(env, env_id)
        policy = run.policy(seed=seed) if run.spec.policy is not None else None
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
            "policy": "random" if policy is None else "model", "model_name": run.info.model}


def _load_policy(policy: Any) -> tuple[Callable[[np.ndarray], Any], tuple[int, ...] | None]:
    """``(obs -> action, observation shape or None)`` from an SB3 model, a .zip path or a callable."""
    if isinstance(policy, str | Path):
        from wmenv.benchmarks.adapters import detect_sb3_algorithm, load_sb3_model

        if not Path(policy).is_file():
            raise CheckpointError(f"policy file {str(policy)!r} does not exist (expected an SB3 .zip)")
        policy = load_sb3_model(policy, detect_sb3_algorithm(policy), "cpu")
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
            ``wmenv.runs.latent_observation_wrapper``).
        max_episode_steps: episode cap in both envs (default: the real env's time limit, else 1000).
        seed: base seed.

    Returns:
        ``imagined_mean``, ``real_mean``, ``gap`` (imagined - real), per-episode returns and lengths,
        ``observation_mode``, ``max_episode_steps``.
    """
    from wmenv.runs import latent_observation_wrapper, open_run

    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    run = open_run(checkpoint)
    env_id = env_id or run.info.env_id
    if not env_id:
        raise ConfigError(f"run {run.path} does not record its env; pass env_id (--env)")
    act, shape = _load_policy(policy)
    probe = make_real_env(env_id)
    real_shape = tuple(probe.observation_space.shape or ())
    limit = getattr(probe.spec, "max_episode_steps", None) if probe.spec is not None else None
    probe.close()
    mode = observation_mode or ("decoded" if shape is None or shape == real_shape else "latent")
    horizon = max_episode_steps or limit or 1000
    world_model = run.world_model(mode)
    env = run.make_env("gymnasium", observation_mode=mode, max_episode_steps=horizon, seed=seed,
                       world_model=world_model)
    try:
        imagined = play_episodes(env, act, episodes, seed=seed)
    finally:
        env.close()
    latent = latent_observation_wrapper(world_model) if mode == "latent" else None

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
