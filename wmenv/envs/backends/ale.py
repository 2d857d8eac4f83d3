"""ALE backend: Atari 2600 games with the standard evaluation protocol, via Gymnasium's wrappers.

Accepted ids: ``"ALE/Pong-v5"``, the short form ``"Pong-v5"``, and the older registered ids
(``"PongNoFrameskip-v4"``, ``"Pong-v4"``, ...). With ``preprocess=True`` (the default) the game is
made with ``frameskip=1`` and Gymnasium's ``AtariPreprocessing`` does frame skipping (with max-pooling
of the last two frames), no-op starts and resizing; ALE's own ``max_num_frames_per_episode``
truncates episodes. Nothing here re-implements what those wrappers do.

Protocol presets (``protocol=``); any option passed explicitly overrides the preset:

============================  ======================  ===========================
option                        ``"default"``           ``"atari100k"``
============================  ======================  ===========================
frameskip                     4                       4
repeat_action_probability     the id's (0.25 for v5)  0.0
noop_max                      30                      30
max_episode_frames            108_000                 108_000
screen_size                   84                      64
grayscale                     True                    False (RGB, as IRIS/DIAMOND)
terminal_on_life_loss         False                   False
============================  ======================  ===========================
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.envs.backends.options import require_int, require_probability
from wmenv.envs.backends.protocol import attach_protocol, jsonable
from wmenv.envs.backends.registry import EnvBackendSpec

NAME = "ale"
_NAMESPACE = "ALE"
_ENTRY_POINT_PREFIX = "ale_py"
ATARI_100K_BUDGET_STEPS = 100_000

PROTOCOLS: dict[str, dict[str, Any]] = {
    "default": {
        "repeat_action_probability": None,  # None: the id's own default (0.25 for v5, 0.0 for v4)
        "noop_max": 30,
        "screen_size": 84,
        "grayscale": True,
    },
    "atari100k": {
        "repeat_action_probability": 0.0,
        "noop_max": 30,
        "screen_size": 64,
        "grayscale": False,
    },
}


def ensure_registered() -> None:
    """Imports ``ale_py`` so that its ids are in Gymnasium's registry."""
    ale_py = importlib.import_module("ale_py")
    gym.register_envs(ale_py)


def _is_ale_spec(env_id: str) -> bool:
    spec = gym.registry.get(env_id)
    return (
        spec is not None
        and isinstance(spec.entry_point, str)
        and spec.entry_point.startswith(_ENTRY_POINT_PREFIX)
    )


def resolve_ale_id(env_id: str) -> str | None:
    """Maps an accepted id to its registered Gymnasium id (``"Pong-v5"`` -> ``"ALE/Pong-v5"``), or None."""
    ensure_registered()
    if _is_ale_spec(env_id):
        return env_id
    long_id = f"{_NAMESPACE}/{env_id}"
    if "/" not in env_id and _is_ale_spec(long_id):
        return long_id
    return None


def list_envs() -> list[str]:
    """Returns every ALE id in Gymnasium's registry plus the short forms of the ``ALE/`` ids."""
    ensure_registered()
    ids = [env_id for env_id in gym.registry if _is_ale_spec(env_id)]
    short = [env_id.split("/", 1)[1] for env_id in ids if env_id.startswith(f"{_NAMESPACE}/")]
    return sorted({*ids, *short})


def matches(env_id: str) -> bool:
    """Whether ``env_id`` names an ALE game (``ALE/`` prefix, short v5 form or older ids)."""
    return resolve_ale_id(env_id) is not None


def make(
    env_id: str,
    *,
    protocol: str = "default",
    preprocess: bool = True,
    frameskip: int = 4,
    repeat_action_probability: float | None = None,
    noop_max: int | None = None,
    screen_size: int | None = None,
    grayscale: bool | None = None,
    max_episode_frames: int | None = 108_000,
    frame_stack: int = 1,
    terminal_on_life_loss: bool = False,
    **kwargs: Any,
) -> gym.Env:
    """Makes an Atari game under a named evaluation protocol.

    Args:
        env_id: ``"ALE/Pong-v5"``, ``"Pong-v5"`` or an older registered ALE id.
        protocol: ``"default"`` or ``"atari100k"``; fills options left as ``None`` (module table).
        preprocess: Apply ``AtariPreprocessing`` (frame skip with max-pool, no-op starts, resize).
            If false, ``frameskip`` is done by ALE itself and images stay raw ``(210, 160, 3)``.
        frameskip: Emulator frames per agent step.
        repeat_action_probability: Sticky-action probability.
        noop_max: Maximum number of no-op actions at reset (only with ``preprocess=True``).
        screen_size: Side of the square resized frame (only with ``preprocess=True``).
        grayscale: Grayscale ``(H, W, 1)`` instead of RGB ``(H, W, 3)`` (only with ``preprocess=True``).
        max_episode_frames: Emulator frames after which ALE truncates an episode (``None``: no limit);
            that is ``max_episode_frames // frameskip`` agent steps.
        frame_stack: If > 1, ``FrameStackObservation`` stacks that many observations on a new
            leading axis: ``(frame_stack, H, W, C)``.
        terminal_on_life_loss: End episodes (``terminated=True``) when a life is lost.
        **kwargs: Passed to ``gymnasium.make`` (``full_action_space``, ``mode``, ``difficulty``,
            ``render_mode``, ...).

    Returns:
        The wrapped env, with a ``wmenv_protocol`` dict (see ``describe_protocol``).

    Raises:
        UnknownEnvError: Unknown game id or protocol name (with close-match suggestions).
        ConfigError: Invalid option values, or preprocessing options given with ``preprocess=False``.
    """
    gym_id = resolve_ale_id(env_id)
    if gym_id is None:
        raise UnknownEnvError(
            "ALE env id",
            env_id,
            list_envs(),
            hint="Use e.g. 'ALE/Pong-v5', 'Pong-v5' or 'PongNoFrameskip-v4'.",
        )
    if protocol not in PROTOCOLS:
        raise UnknownEnvError("ALE protocol", protocol, PROTOCOLS)
    if "max_num_frames_per_episode" in kwargs:
        raise ConfigError(
            "got max_num_frames_per_episode; this backend sets it from max_episode_frames, "
            f"pass max_episode_frames={kwargs['max_num_frames_per_episode']!r} instead."
        )
    preset = PROTOCOLS[protocol]
    spec_kwargs = gym.spec(gym_id).kwargs
    if repeat_action_probability is None:
        repeat_action_probability = preset["repeat_action_probability"]
    if repeat_action_probability is None:
        repeat_action_probability = spec_kwargs.get("repeat_action_probability", 0.25)
    require_probability("repeat_action_probability", repeat_action_probability, example=0.25)
    require_int("frameskip", frameskip, minimum=1, example=4)
    require_int("frame_stack", frame_stack, minimum=1, example=4)
    if max_episode_frames is not None:
        require_int("max_episode_frames", max_episode_frames, minimum=1, example=108_000)

    if preprocess:
        noop_max = preset["noop_max"] if noop_max is None else noop_max
        screen_size = preset["screen_size"] if screen_size is None else screen_size
        grayscale = preset["grayscale"] if grayscale is None else grayscale
        require_int("noop_max", noop_max, minimum=0, example=30)
        require_int("screen_size", screen_size, minimum=1, example=84)
    else:
        options = (("noop_max", noop_max), ("screen_size", screen_size), ("grayscale", grayscale))
        given = [name for name, value in options if value is not None]
        if terminal_on_life_loss:
            given.append("terminal_on_life_loss")
        if given:
            raise ConfigError(
                f"{given} only apply with preprocess=True, got preprocess=False; "
                "drop them or set preprocess=True."
            )
        noop_max = 0

    env = gym.make(
        gym_id,
        frameskip=1 if preprocess else frameskip,
        repeat_action_probability=repeat_action_probability,
        max_num_frames_per_episode=max_episode_frames,
        **kwargs,
    )
    if preprocess:
        env = AtariPreprocessing(
            env,
            noop_max=noop_max,
            frame_skip=frameskip,
            screen_size=screen_size,
            terminal_on_life_loss=terminal_on_life_loss,
            grayscale_obs=bool(grayscale),
            grayscale_newaxis=True,
        )
    if frame_stack > 1:
        env = FrameStackObservation(env, stack_size=frame_stack)
    return attach_protocol(
        env,
        {
            "backend": NAME,
            "env_id": gym_id,
            "game": spec_kwargs.get("game"),
            "protocol": protocol,
            "preprocess": bool(preprocess),
            "frameskip": frameskip,
            "repeat_action_probability": repeat_action_probability,
            "noop_max": noop_max,
            "max_episode_frames": max_episode_frames,
            "max_episode_steps": None if max_episode_frames is None else max_episode_frames // frameskip,
            "screen_size": screen_size if preprocess else None,
            "grayscale": bool(grayscale) if preprocess else False,
            "frame_stack": frame_stack,
            "terminal_on_life_loss": bool(terminal_on_life_loss),
            "full_action_space": bool(kwargs.get("full_action_space", spec_kwargs.get("full_action_space"))),
            "budget_agent_steps": ATARI_100K_BUDGET_STEPS if protocol == "atari100k" else None,
            "kwargs": jsonable(kwargs),
        },
    )


SPEC = EnvBackendSpec(
    name=NAME,
    aliases=("atari",),
    description="Atari 2600 games (ALE/Pong-v5, Pong-v5, PongNoFrameskip-v4) with protocol presets.",
    make=make,
    list_envs=list_envs,
    matches=matches,
)
