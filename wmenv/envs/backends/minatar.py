"""MinAtar backend: the five miniature Atari games of Young & Tian (2019) as Gymnasium envs.

Ids: ``"MinAtar/Breakout-v1"`` (minimal action set, what MinAtar's own Gymnasium ids call v1),
``"MinAtar/Breakout-v0"`` (all six actions), and the short aliases ``"minatar-breakout"``,
``"minatar-asterix"``, ``"minatar-freeway"``, ``"minatar-seaquest"``, ``"minatar-space_invaders"``
(for the v1 id; case, ``-`` and ``_`` in the game name do not matter).

The games come from the ``minatar`` package (``minatar.Environment``). Its own Gymnasium
integration (``minatar.gym``) does not work with Gymnasium 1.x: its ids are registered only
through the old plugin entry point (which Gymnasium 1.x no longer loads), ``reset`` never seeds
``np_random`` (``check_env`` fails) and frames are ``bool``. This module therefore puts a thin
``gymnasium.Env`` (:class:`MinAtarEnv`) over ``minatar.Environment``; the game dynamics are the
package's, unchanged. Nothing is registered in Gymnasium's registry: :func:`make` builds the env
through ``gymnasium.make`` with an unregistered ``EnvSpec`` (so ``env.spec.id`` is the MinAtar id
and the usual ``TimeLimit`` / ``OrderEnforcing`` / ``PassiveEnvChecker`` wrappers apply).

Observations are channels-last ``uint8`` frames, ``Box(0, 1, (10, 10, C), uint8)`` with ``C`` = 4
(Asterix, Breakout), 7 (Freeway), 10 (Seaquest) or 6 (SpaceInvaders): one binary channel per
object kind. ``uint8`` rather than the package's ``bool`` or ``float32`` because the collector
stores ``uint8`` boxes as ``uint8`` in the replay (one byte per cell, four times smaller than
float32) and image encoders take ``(H, W, C)`` ``uint8`` images; the values stay 0/1 (no x255).

Options of :func:`make` (and the protocol dict every env carries):

- ``sticky_action_prob`` (default 0.1, MinAtar's default): with this probability the previous
  action is repeated instead of the chosen one (as ALE's ``repeat_action_probability``; the
  previous action is reset to no-op at every ``reset``). Reported both under this name and as
  ``repeat_action_probability``.
- ``max_episode_steps`` (default 10_000; ``None``: no limit): the package sets no time limit
  (only Freeway ends by itself, after 2500 steps); a good policy can otherwise play Breakout,
  Seaquest or SpaceInvaders for ever. 10_000 agent steps is far beyond what random or 100k-step
  agents reach (hundreds of steps) and bounds the cost of one evaluation episode.
- ``difficulty_ramping`` (default True, MinAtar's default): Asterix, Seaquest and SpaceInvaders
  speed up over time.

Seeding: ``reset(seed=s)`` seeds ``np_random``; every reset then draws the game's own
``RandomState`` seed and every step's sticky-action draw from ``np_random``, so the same seed and
actions give the same trajectory, episode after episode.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.envs.backends.options import require_int, require_probability
from wmenv.envs.backends.protocol import attach_protocol
from wmenv.envs.backends.registry import EnvBackendSpec

NAME = "minatar"
NAMESPACE = "MinAtar"
#: Gymnasium-style game name -> the ``minatar`` module name of the game.
GAMES: dict[str, str] = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
#: Frame channels of each game (one binary channel per object kind).
CHANNELS: dict[str, int] = {"Asterix": 4, "Breakout": 4, "Freeway": 7, "Seaquest": 10, "SpaceInvaders": 6}
DEFAULT_STICKY_ACTION_PROB = 0.1
DEFAULT_MAX_EPISODE_STEPS = 10_000
FRAME_SIZE = 10
NUM_FULL_ACTIONS = 6
RENDER_SCALE = 16

_ID = re.compile(r"^minatar/(\w+)-v([01])$", re.IGNORECASE)
_ALIAS = re.compile(r"^minatar[-_](\w[\w-]*)$", re.IGNORECASE)
_GAME_KEYS = {name.lower(): name for name in GAMES}
# One colour per channel (channel k drawn over channels < k), background black.
_PALETTE = np.array(
    [
        [0, 0, 0],
        [230, 159, 0],
        [86, 180, 233],
        [0, 158, 115],
        [240, 228, 66],
        [0, 114, 178],
        [213, 94, 0],
        [204, 121, 167],
        [255, 255, 255],
        [153, 153, 153],
        [120, 60, 200],
    ],
    dtype=np.uint8,
)


def _game_key(text: str) -> str | None:
    return _GAME_KEYS.get(text.replace("_", "").replace("-", "").lower())


def resolve_minatar_id(env_id: str) -> str | None:
    """Canonical id of an accepted id (``"minatar-breakout"`` -> ``"MinAtar/Breakout-v1"``), or None.

    Pure string parsing: never imports the ``minatar`` package.
    """
    if not isinstance(env_id, str):
        return None
    match = _ID.match(env_id)
    if match is not None:
        game, version = _game_key(match.group(1)), match.group(2)
    else:
        match = _ALIAS.match(env_id)
        game, version = (_game_key(match.group(1)), "1") if match is not None else (None, "1")
    return None if game is None else f"{NAMESPACE}/{game}-v{version}"


def short_alias(game: str) -> str:
    """``"SpaceInvaders"`` -> ``"minatar-space_invaders"`` (the listed short form)."""
    return f"minatar-{GAMES[game]}"


def list_envs() -> list[str]:
    """The ten ids (five games x v0/v1) and the five short aliases."""
    ids = [f"{NAMESPACE}/{game}-v{v}" for game in GAMES for v in (0, 1)]
    return sorted([*ids, *(short_alias(game) for game in GAMES)])


def matches(env_id: str) -> bool:
    """Whether ``env_id`` is a MinAtar id or short alias."""
    return resolve_minatar_id(env_id) is not None


class MinAtarEnv(gym.Env):
    """A MinAtar game (``minatar.Environment``) as a Gymnasium env with uint8 HWC frames.

    Args:
        game: Gymnasium-style game name (``"Breakout"``, ``"SpaceInvaders"``, ...).
        minimal_action_set: The game's minimal action set (v1 ids) instead of all six actions (v0).
        sticky_action_prob: Probability of repeating the previous action (see module docstring).
        difficulty_ramping: MinAtar's speed-up over time (Asterix, Seaquest, SpaceInvaders).
        render_mode: ``None`` or ``"rgb_array"`` (``(160, 160, 3)`` uint8: 16x16 pixels per cell).
            :func:`make` also accepts ``"human"``: ``gymnasium.make`` then shows the RGB frames
            through its ``HumanRendering`` wrapper (needs pygame).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        game: str,
        *,
        minimal_action_set: bool = True,
        sticky_action_prob: float = DEFAULT_STICKY_ACTION_PROB,
        difficulty_ramping: bool = True,
        render_mode: str | None = None,
    ) -> None:
        if game not in GAMES:
            raise UnknownEnvError("MinAtar game", game, GAMES)
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(
                f"MinAtar envs render as render_mode='rgb_array' (or 'human', shown by Gymnasium's "
                f"HumanRendering), got {render_mode!r}; pass one of those or None."
            )
        minatar = importlib.import_module("minatar")
        # Sticky actions are drawn here from np_random, so the package's own are off.
        self._game = minatar.Environment(
            env_name=GAMES[game], sticky_action_prob=0.0, difficulty_ramping=bool(difficulty_ramping)
        )
        self.game = game
        self.sticky_action_prob = require_probability(
            "sticky_action_prob", sticky_action_prob, example=DEFAULT_STICKY_ACTION_PROB
        )
        actions = self._game.minimal_action_set() if minimal_action_set else range(NUM_FULL_ACTIONS)
        self._actions = [int(a) for a in actions]
        self._last_action = 0
        self.render_mode = render_mode
        channels = int(self._game.state_shape()[2])
        self.observation_space = gym.spaces.Box(
            0, 1, shape=(FRAME_SIZE, FRAME_SIZE, channels), dtype=np.uint8
        )
        self.action_space = gym.spaces.Discrete(len(self._actions))

    def _obs(self) -> np.ndarray:
        return np.asarray(self._game.state(), dtype=np.uint8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts an episode; the game's random state is drawn from ``np_random``."""
        super().reset(seed=seed)
        self._game.seed(int(self.np_random.integers(0, 2**31 - 1)))
        self._game.reset()
        self._last_action = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One game frame; ``truncated`` is always False here (``TimeLimit`` sets it)."""
        index = int(action)
        if not 0 <= index < len(self._actions):
            raise ConfigError(f"action must be in [0, {len(self._actions)}), got {action!r}")
        chosen = self._actions[index]
        if self.sticky_action_prob > 0.0 and self.np_random.random() < self.sticky_action_prob:
            chosen = self._last_action
        self._last_action = chosen
        reward, terminal = self._game.act(chosen)
        return self._obs(), float(reward), bool(terminal), False, {}

    def render(self) -> np.ndarray | None:
        """The frame as an RGB image (``render_mode="rgb_array"``), else None."""
        if self.render_mode != "rgb_array":
            return None
        state = self._obs()
        index = (state * np.arange(1, state.shape[-1] + 1, dtype=np.uint8)).max(axis=-1)
        image = _PALETTE[np.minimum(index, len(_PALETTE) - 1)]
        return np.repeat(np.repeat(image, RENDER_SCALE, axis=0), RENDER_SCALE, axis=1)


def make(
    env_id: str,
    *,
    sticky_action_prob: float = DEFAULT_STICKY_ACTION_PROB,
    max_episode_steps: int | None = DEFAULT_MAX_EPISODE_STEPS,
    difficulty_ramping: bool = True,
    render_mode: str | None = None,
    **kwargs: Any,
) -> gym.Env:
    """Makes a MinAtar game.

    Args:
        env_id: ``"MinAtar/Breakout-v1"``, ``"MinAtar/Breakout-v0"`` or ``"minatar-breakout"``.
        sticky_action_prob: Probability of repeating the previous action (MinAtar's default 0.1).
        max_episode_steps: Agent steps after which ``TimeLimit`` truncates (``None``: no limit).
        difficulty_ramping: MinAtar's speed-up over time.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"`` (Gymnasium's ``HumanRendering``).
        **kwargs: Not accepted (raises ``ConfigError`` naming the options).

    Returns:
        The env (``TimeLimit`` over :class:`MinAtarEnv` when limited) with a ``wmenv_protocol`` dict.

    Raises:
        UnknownEnvError: Not a MinAtar id (with close-match suggestions).
        ConfigError: Unknown options or invalid values.
    """
    canonical = resolve_minatar_id(env_id)
    if canonical is None:
        raise UnknownEnvError(
            "MinAtar env id",
            env_id,
            list_envs(),
            hint="Use e.g. 'MinAtar/Breakout-v1' or 'minatar-breakout'.",
        )
    if kwargs:
        raise ConfigError(
            f"unknown MinAtar option(s) {sorted(kwargs)}; the options are sticky_action_prob, "
            "max_episode_steps, difficulty_ramping and render_mode."
        )
    require_probability("sticky_action_prob", sticky_action_prob, example=DEFAULT_STICKY_ACTION_PROB)
    if max_episode_steps is not None:
        require_int("max_episode_steps", max_episode_steps, minimum=1, example=DEFAULT_MAX_EPISODE_STEPS)
    if not isinstance(difficulty_ramping, bool):
        raise ConfigError(
            f"difficulty_ramping must be a bool, got {difficulty_ramping!r}; pass e.g. difficulty_ramping=True."
        )
    game, version = canonical.split("/", 1)[1].rsplit("-v", 1)
    spec = EnvSpec(
        id=canonical,
        entry_point=MinAtarEnv,
        max_episode_steps=max_episode_steps,
        kwargs={
            "game": game,
            "minimal_action_set": version == "1",
            "sticky_action_prob": float(sticky_action_prob),
            "difficulty_ramping": difficulty_ramping,
        },
    )
    env = gym.make(spec, render_mode=render_mode)
    inner = env.unwrapped
    return attach_protocol(
        env,
        {
            "backend": NAME,
            "env_id": canonical,
            "game": GAMES[game],
            "minimal_action_set": version == "1",
            "num_actions": int(inner.action_space.n),
            "observation": f"uint8 {list(inner.observation_space.shape)} channels-last, binary (0/1)",
            "frameskip": 1,
            "sticky_action_prob": float(sticky_action_prob),
            "repeat_action_probability": float(sticky_action_prob),
            "difficulty_ramping": difficulty_ramping,
            "max_episode_steps": max_episode_steps,
            "kwargs": {},
        },
    )


SPEC = EnvBackendSpec(
    name=NAME,
    description="MinAtar's five 10x10 games (MinAtar/Breakout-v1, minatar-breakout), uint8 HWC frames.",
    make=make,
    list_envs=list_envs,
    matches=matches,
)
