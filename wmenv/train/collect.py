"""Collect real-env experience into a replay buffer in the stored-row format of :mod:`wmenv.train.replay`.

Envs run as a ``gymnasium.vector.SyncVectorEnv`` (one sub-env or many) with an explicit
autoreset mode. With ``NEXT_STEP`` (what we create) the step after an episode's last step
returns the reset observation of the next episode; that becomes an ``is_first`` row. Rows of
each sub-env are buffered until its episode ends (or ``max_pending`` rows accumulate) and then
written in one ``extend``, so the rows of one episode are contiguous in storage even though the
sub-envs' episodes interleave in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from tensordict import TensorDict
from torchrl.data import ReplayBuffer
from tqdm.auto import tqdm

from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.train.replay import next_episode_id

__all__ = ["make_env", "collect", "Collector", "CollectStats", "Policy"]

#: ``policy(obs_batch) -> actions`` (``(N, ...)`` arrays). If it has ``reset(mask)``, that is
#: called with a ``(N,)`` bool mask of sub-envs starting a new episode before each call.
Policy = Callable[[Any], Any]


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """Make a real env: ``wmenv.envs.make.make_env`` when available, else ``gymnasium.make``."""
    try:
        from wmenv.envs.make import make_env as _make_env
    except ModuleNotFoundError as err:
        if err.name not in ("wmenv.envs", "wmenv.envs.make"):
            raise
        return gym.make(env_id, **kwargs)
    return _make_env(env_id, **kwargs)


def _obs_dtype(space: gym.Space) -> Any:
    if isinstance(space, gym.spaces.Dict):
        return {k: _obs_dtype(s) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Box):
        return np.uint8 if space.dtype == np.uint8 else np.float32
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
        return np.int64
    raise UnsupportedSpaceError(
        f"cannot store observations of space {space}; supported: Box, Discrete, MultiDiscrete, "
        "MultiBinary and Dict of those"
    )


def _cast(x: Any, dtype: Any) -> Any:
    if isinstance(dtype, dict):
        return {k: _cast(x[k], d) for k, d in dtype.items()}
    return np.asarray(x, dtype=dtype)


def _take(x: Any, i: int) -> Any:
    return {k: _take(v, i) for k, v in x.items()} if isinstance(x, dict) else x[i]


def _stack(items: list[Any]) -> Any:
    if isinstance(items[0], dict):
        return {k: _stack([it[k] for it in items]) for k in items[0]}
    return torch.from_numpy(np.stack(items))


def _action_dtype(space: gym.Space) -> Any:
    if isinstance(space, gym.spaces.Box):
        return np.float32
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
        return np.int64
    raise UnsupportedSpaceError(f"cannot store actions of space {space}; supported: Box, Discrete, Multi*")


@dataclass
class CollectStats:
    """What a call to :meth:`Collector.collect` did.

    Attributes:
        steps: env transitions taken (summed over sub-envs; autoreset steps not counted).
        episodes: episodes completed.
        episode_returns: undiscounted return of each completed episode.
        episode_lengths: transitions of each completed episode.
        rows: rows written to the replay buffer.
        seconds: wall-clock time.
        replay: the buffer the rows went to.
    """

    steps: int = 0
    episodes: int = 0
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0
    replay: ReplayBuffer | None = field(default=None, repr=False, compare=False)

    @property
    def mean_return(self) -> float:
        """Mean of ``episode_returns`` (NaN when no episode finished)."""
        return float(np.mean(self.episode_returns)) if self.episode_returns else float("nan")


class Collector:
    """Steps real envs with a policy and writes Dreamer-style rows into a replay buffer.

    Can be called repeatedly (collect → train → collect); in-flight episodes continue across
    calls. Call :meth:`flush` to write unfinished episodes (as cut, not terminal) and
    :meth:`close` to close the envs.

    Args:
        env_or_id: env id (made with :func:`make_env`), a ``gym.Env`` (then ``num_envs`` must be
            1), or a ``gymnasium.vector.VectorEnv`` in ``NEXT_STEP`` or ``SAME_STEP`` autoreset mode.
        replay: destination buffer (:func:`wmenv.train.replay.make_replay`).
        num_envs: sub-envs of the ``SyncVectorEnv`` made from an id.
        seed: sub-env ``i`` is reset with ``seed + i``; the random policy's action space is seeded too.
        policy: ``policy(obs_batch) -> actions``; ``None`` samples uniformly random actions.
        max_pending: rows buffered per sub-env before a chunk is written (bounds memory on very
            long episodes; a chunk boundary only means sequences are not sampled across it).
        env_kwargs: keyword arguments for :func:`make_env`.
        progress: show a tqdm progress bar.
    """

    def __init__(
        self,
        env_or_id: str | gym.Env | gym.vector.VectorEnv,
        replay: ReplayBuffer,
        *,
        num_envs: int = 1,
        seed: int = 0,
        policy: Policy | None = None,
        max_pending: int = 10_000,
        env_kwargs: dict[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        if max_pending < 2:
            raise ConfigError(f"max_pending must be >= 2 rows, got {max_pending}")
        self.venv = self._make_vector(env_or_id, num_envs, env_kwargs or {})
        self.mode = self.venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if self.mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ConfigError(
                f"vector env autoreset_mode {self.mode}: expected NEXT_STEP or SAME_STEP so that final "
                "observations can be stored"
            )
        self.replay = replay
        self.policy = policy
        self.max_pending = int(max_pending)
        self.progress = progress
        self.num_envs = self.venv.num_envs
        self.obs_dtype = _obs_dtype(self.venv.single_observation_space)
        self.act_dtype = _action_dtype(self.venv.single_action_space)
        self.zero_action = np.zeros(self.venv.single_action_space.shape, dtype=self.act_dtype)
        self.next_episode = next_episode_id(replay)
        self.venv.action_space.seed(seed)
        obs, _ = self.venv.reset(seed=seed)
        self._pending: list[list[tuple]] = [[] for _ in range(self.num_envs)]
        self._episode = np.zeros(self.num_envs, dtype=np.int64)
        self._return = np.zeros(self.num_envs, dtype=np.float64)
        self._length = np.zeros(self.num_envs, dtype=np.int64)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._obs = obs
        self._new = np.ones(self.num_envs, dtype=bool)
        cast = _cast(obs, self.obs_dtype)
        for i in range(self.num_envs):
            self._start_episode(i, _take(cast, i))

    @staticmethod
    def _make_vector(env_or_id: Any, num_envs: int, env_kwargs: dict[str, Any]) -> gym.vector.VectorEnv:
        if isinstance(env_or_id, gym.vector.VectorEnv):
            return env_or_id
        if isinstance(env_or_id, gym.Env):
            if num_envs != 1:
                raise ConfigError(
                    f"num_envs={num_envs} needs an env id to make copies from, got one env instance"
                )
            return gym.vector.SyncVectorEnv([lambda: env_or_id], autoreset_mode=AutoresetMode.NEXT_STEP)
        if not isinstance(env_or_id, str):
            raise TypeError(
                f"env_or_id must be an env id, a gym.Env or a VectorEnv, got {type(env_or_id).__name__}"
            )
        thunks = [lambda: make_env(env_or_id, **env_kwargs) for _ in range(num_envs)]
        return gym.vector.SyncVectorEnv(thunks, autoreset_mode=AutoresetMode.NEXT_STEP)

    # ------------------------------------------------------------------ rows
    def _start_episode(self, i: int, obs: Any) -> None:
        self._episode[i] = self.next_episode
        self.next_episode += 1
        self._return[i] = 0.0
        self._length[i] = 0
        self._pending[i].append((obs, self.zero_action, 0.0, False, False, True))

    def _write(self, i: int, stats: CollectStats) -> None:
        rows = self._pending[i]
        if not rows:
            return
        n = len(rows)
        obs, act, rew, term, trunc, first = zip(*rows, strict=True)
        term_t = torch.tensor(term, dtype=torch.bool)
        trunc_t = torch.tensor(trunc, dtype=torch.bool)
        td = TensorDict(
            {
                "observation": _stack(list(obs)),
                "action": _stack(list(act)),
                "reward": torch.tensor(rew, dtype=torch.float32),
                "terminated": term_t,
                "truncated": trunc_t,
                "is_first": torch.tensor(first, dtype=torch.bool),
                "is_last": term_t | trunc_t,
                "episode": torch.full((n,), int(self._episode[i]), dtype=torch.int64),
            },
            batch_size=[n],
        )
        self.replay.extend(td)
        stats.rows += n
        self._pending[i] = []

    def _end_row(
        self, i: int, obs: Any, act: Any, rew: float, term: bool, trunc: bool, stats: CollectStats
    ) -> None:
        self._pending[i].append((obs, act, rew, term, trunc, False))
        self._return[i] += rew
        self._length[i] += 1
        stats.steps += 1
        if term or trunc:
            stats.episodes += 1
            stats.episode_returns.append(float(self._return[i]))
            stats.episode_lengths.append(int(self._length[i]))
            self._write(i, stats)
        elif len(self._pending[i]) >= self.max_pending:
            self._write(i, stats)

    # ------------------------------------------------------------------ public
    def _actions(self) -> np.ndarray:
        if self.policy is None:
            return self.venv.action_space.sample()
        if hasattr(self.policy, "reset"):
            self.policy.reset(self._new.copy())
        act = self.policy(self._obs)
        if isinstance(act, torch.Tensor):
            act = act.detach().cpu().numpy()
        return np.asarray(act)

    @property
    def episodes_in_progress(self) -> np.ndarray:
        """``(num_envs,)`` bool: sub-envs in the middle of an episode (the next :meth:`collect`
        continues it, so its return will include steps taken before that call). A sub-env whose
        episode just ended is not: its next step starts a new episode."""
        return (self._length > 0) & ~self._autoreset

    def collect(self, num_steps: int) -> CollectStats:
        """Take at least ``num_steps`` env transitions (summed over sub-envs).

        Returns:
            :class:`CollectStats` of this call.
        """
        if num_steps < 0:
            raise ConfigError(f"num_steps must be >= 0, got {num_steps}")
        stats = CollectStats(replay=self.replay)
        t0 = time.perf_counter()
        bar = tqdm(
            total=num_steps, unit="step", desc="collect", disable=not self.progress, dynamic_ncols=True
        )
        while stats.steps < num_steps:
            actions = self._actions()
            obs, rew, term, trunc, info = self.venv.step(actions)
            cast = _cast(obs, self.obs_dtype)
            acts = _cast(actions, self.act_dtype)
            before = stats.steps
            new = np.zeros(self.num_envs, dtype=bool)
            if self.mode == AutoresetMode.NEXT_STEP:
                for i in range(self.num_envs):
                    if self._autoreset[i]:
                        self._start_episode(i, _take(cast, i))
                        new[i] = True
                    else:
                        self._end_row(
                            i, _take(cast, i), acts[i], float(rew[i]), bool(term[i]), bool(trunc[i]), stats
                        )
                self._autoreset = np.logical_or(term, trunc)
            else:  # SAME_STEP: final obs in info["final_obs"], returned obs already the next episode's
                done = np.logical_or(term, trunc)
                for i in range(self.num_envs):
                    last_obs = _cast(info["final_obs"][i], self.obs_dtype) if done[i] else _take(cast, i)
                    self._end_row(i, last_obs, acts[i], float(rew[i]), bool(term[i]), bool(trunc[i]), stats)
                    if done[i]:
                        self._start_episode(i, _take(cast, i))
                        new[i] = True
            self._obs, self._new = obs, new
            bar.update(stats.steps - before)
            if stats.episode_returns:
                bar.set_postfix(episodes=stats.episodes, ret=f"{stats.mean_return:.1f}", refresh=False)
        bar.close()
        stats.seconds = time.perf_counter() - t0
        return stats

    def flush(self) -> int:
        """Write every sub-env's unfinished episode rows (not marked last). Returns rows written."""
        stats = CollectStats()
        for i in range(self.num_envs):
            self._write(i, stats)
        return stats.rows

    def close(self) -> None:
        """Close the envs (pending rows are dropped unless :meth:`flush` was called)."""
        self.venv.close()


def collect(
    env_or_id: str | gym.Env | gym.vector.VectorEnv,
    num_steps: int,
    *,
    policy: Policy | None = None,
    num_envs: int = 1,
    seed: int = 0,
    replay: ReplayBuffer | None = None,
    capacity: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[ReplayBuffer, CollectStats]:
    """Collect ``num_steps`` transitions into ``replay`` (a new buffer when ``None``) and close the envs.

    Unfinished episodes are written at the end as cut segments (``is_last`` false).

    Args:
        env_or_id: env id, env instance or vector env (see :class:`Collector`).
        num_steps: env transitions, summed over sub-envs.
        policy: ``policy(obs_batch) -> actions``; ``None`` for uniform random actions.
        num_envs: sub-envs when ``env_or_id`` is an id.
        seed: reset seed (sub-env ``i`` gets ``seed + i``) and action-sampling seed.
        replay: destination buffer; a new in-memory-mapped one when ``None``.
        capacity: capacity of the new buffer (default ``2 * num_steps + 1000`` rows).
        env_kwargs: keyword arguments for :func:`make_env`.
        progress: show a tqdm bar.

    Returns:
        ``(replay, stats)``: the buffer written to (new when ``replay`` was None; also ``stats.replay``)
        and the :class:`CollectStats`.
    """
    if replay is None:
        from wmenv.train.replay import make_replay

        replay = make_replay(capacity or 2 * num_steps + 1000, seed=seed)
    collector = Collector(
        env_or_id,
        replay,
        num_envs=num_envs,
        seed=seed,
        policy=policy,
        env_kwargs=env_kwargs,
        progress=progress,
    )
    try:
        stats = collector.collect(num_steps)
        stats.rows += collector.flush()
    finally:
        collector.close()
    return replay, stats
