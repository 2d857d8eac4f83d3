"""Policies played in a real env: the one episode loop every evaluator of wmenv uses.

:func:`play_episodes` plays seeded episodes of a ``policy(obs) -> action`` in a Gymnasium env;
:class:`RealEnvEvaluator` keeps a real env made from an id (``make_env``) and plays in it. The
benchmark adapters, the recipes' judge and the family agents all evaluate through these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from wmenv.core.errors import ConfigError
from wmenv.envs.make import make_env

__all__ = ["EvaluationResult", "play_episodes", "make_real_env", "RealEnvEvaluator"]

EvaluationResult = dict[str, list[float] | list[int]]
"""``{"episode_returns": [float, ...], "episode_lengths": [int, ...]}``, one entry per episode."""


def play_episodes(
    env: Any,
    policy: Callable[[Any], Any],
    num_episodes: int,
    *,
    seed: int | None = None,
    on_episode_start: Callable[[int | None], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """Play ``num_episodes`` episodes of ``policy`` in ``env``; episode ``i`` resets with ``seed + i``.

    Args:
        env: a Gymnasium env.
        policy: maps one observation to one action (array observations are passed C-contiguous).
        num_episodes: number of episodes (>= 1).
        seed: base seed (``None``: unseeded resets).
        on_episode_start: called with the episode's reset seed before it starts (e.g. to clear a
            recurrent state).
        progress: called with ``1`` after each finished episode.

    Returns:
        ``{"episode_returns": [...], "episode_lengths": [...]}``.
    """
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, int | np.integer) or num_episodes < 1:
        raise ConfigError(f"num_episodes must be an int >= 1, got {num_episodes!r}")
    returns: list[float] = []
    lengths: list[int] = []
    for i in range(int(num_episodes)):
        ep_seed = None if seed is None else int(seed) + i
        if on_episode_start is not None:
            on_episode_start(ep_seed)
        obs, _ = env.reset(seed=ep_seed)
        total, steps, done = 0.0, 0, False
        while not done:
            if isinstance(obs, np.ndarray) and not obs.flags.c_contiguous:
                obs = np.ascontiguousarray(obs)
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            steps += 1
            done = bool(terminated) or bool(truncated)
        returns.append(total)
        lengths.append(steps)
        if progress is not None:
            progress(1)
    return {"episode_returns": returns, "episode_lengths": lengths}


def make_real_env(env_id: str, render_mode: str | None = None, **env_kwargs: Any) -> Any:
    """Creates the real env with :func:`wmenv.envs.make.make_env`.

    Raises:
        UnknownEnvError: ``env_id`` is not known to any backend (with close matches).
    """
    if render_mode is not None:
        env_kwargs["render_mode"] = render_mode
    return make_env(env_id, **env_kwargs)


class RealEnvEvaluator:
    """Runs a ``policy(obs) -> action`` callable in the real env for N seeded episodes.

    The env is created lazily on first use and kept until :meth:`close`, so repeated calls are
    cheap. Episode ``i`` of a call resets with ``seed + i`` (unseeded if ``seed`` is ``None``).

    Args:
        env_id: Env id passed to ``make_env``.
        env_kwargs: Extra keyword arguments for ``make_env``.
        observation_wrapper: Applied to the created env (e.g. the ``wmenv.envs.latent`` wrapper that
            shows the policy the world model's latent state instead of pixels).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        observation_wrapper: Callable | None = None,
    ) -> None:
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.observation_wrapper = observation_wrapper
        self._env: Any = None
        self._render_mode: str | None = None

    def env(self, render: bool = False) -> Any:
        """The (wrapped) real env, created on first use or when ``render`` changes."""
        mode = "human" if render else None
        if self._env is None or mode != self._render_mode:
            self.close()
            env = make_real_env(self.env_id, render_mode=mode, **self.env_kwargs)
            self._env = self.observation_wrapper(env) if self.observation_wrapper else env
            self._render_mode = mode
        return self._env

    def run(
        self,
        policy: Callable[[Any], Any],
        num_episodes: int,
        seed: int | None = None,
        render: bool = False,
        on_episode_start: Callable[[int | None], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> EvaluationResult:
        """Plays ``num_episodes`` episodes with ``policy``.

        Args:
            policy: Maps one observation to one action.
            num_episodes: Number of episodes (>= 1).
            seed: Base seed; episode ``i`` resets with ``seed + i``.
            render: Render in a window (``render_mode="human"``).
            on_episode_start: Called with the episode's reset seed before it starts (e.g. to clear a
                recurrent state or seed the policy's own RNG).
            progress: Called with ``1`` after each finished episode.

        Returns:
            ``{"episode_returns": [...], "episode_lengths": [...]}``.
        """
        return play_episodes(self.env(render), policy, num_episodes, seed=seed,
                             on_episode_start=on_episode_start, progress=progress)

    def close(self) -> None:
        """Closes the env if one is open."""
        if self._env is not None:
            self._env.close()
            self._env = None
