"""Gymnasium backend: any id in Gymnasium's registry, optionally seen as pixels.

Classic control (``CartPole-v1``, ``Pendulum-v1``), Box2D (``LunarLander-v3``, ``CarRacing-v3``)
and MuJoCo v5 tasks (``HalfCheetah-v5``) are made with ``gymnasium.make``; every extra keyword
argument goes to ``gymnasium.make`` unchanged. Pixel observations are produced by Gymnasium's own
wrappers (``AddRenderObservation`` then ``ResizeObservation``).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import AddRenderObservation, ResizeObservation

from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.envs.backends.options import require_int
from wmenv.envs.backends.protocol import attach_protocol, jsonable
from wmenv.envs.backends.registry import EnvBackendSpec

NAME = "gymnasium"
DEFAULT_IMAGE_SIZE = 64
# Ids registered in Gymnasium's registry by other backends' libraries; they are listed (and
# auto-selected) through those backends, though this backend can still make them.
_FOREIGN_ENTRY_POINTS = ("ale_py", "shimmy")
_OPTIONAL_REGISTRANTS = ("ale_py",)


def ensure_registered() -> None:
    """Imports optional packages that add ids to Gymnasium's registry (ALE), if installed."""
    for name in _OPTIONAL_REGISTRANTS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        gym.register_envs(module)


def list_envs() -> list[str]:
    """Returns Gymnasium's registered ids, minus those owned by the ALE and dm_control backends.

    Ids whose entry point is not an importable string (e.g. the ``-v2``/``-v3`` MuJoCo ids that
    need the retired ``mujoco-py``) are left out as well.
    """
    ensure_registered()
    return sorted(
        env_id
        for env_id, spec in gym.registry.items()
        if isinstance(spec.entry_point, str) and not spec.entry_point.startswith(_FOREIGN_ENTRY_POINTS)
    )


def matches(env_id: str) -> bool:
    """Whether ``env_id`` is in Gymnasium's registry (or uses the ``"module:Env-v0"`` form)."""
    ensure_registered()
    return env_id in gym.registry or ":" in env_id


def make(
    env_id: str, *, pixels: bool = False, image_size: int = DEFAULT_IMAGE_SIZE, **kwargs: Any
) -> gym.Env:
    """Makes a Gymnasium env by id.

    Args:
        env_id: A registered Gymnasium id, e.g. ``"CartPole-v1"`` or ``"HalfCheetah-v5"``.
        pixels: If true, observations are rendered RGB frames, uint8 ``(image_size, image_size, 3)``;
            the env is made with ``render_mode="rgb_array"``.
        image_size: Side of the square pixel observation (only used with ``pixels=True``).
        **kwargs: Passed to ``gymnasium.make`` (``max_episode_steps``, ``render_mode``, env options).

    Returns:
        The env returned by ``gymnasium.make``, wrapped for pixels if asked, with a
        ``wmenv_protocol`` dict.

    Raises:
        UnknownEnvError: If ``env_id`` is not registered (with close-match suggestions).
        ConfigError: If ``pixels=True`` is combined with a render mode other than ``"rgb_array"``, or
            ``image_size`` is not a positive int.
    """
    ensure_registered()
    if ":" not in env_id and env_id not in gym.registry:
        raise UnknownEnvError(
            "Gymnasium env id",
            env_id,
            list_envs(),
            hint="See gymnasium.pprint_registry() for every registered id.",
        )
    if pixels:
        render_mode = kwargs.setdefault("render_mode", "rgb_array")
        if render_mode != "rgb_array":
            raise ConfigError(
                f"pixels=True needs render_mode='rgb_array', got render_mode={render_mode!r}; "
                "drop render_mode or set pixels=False."
            )
        require_int("image_size", image_size, minimum=1, example=DEFAULT_IMAGE_SIZE)
    env = gym.make(env_id, **kwargs)
    if pixels:
        env = AddRenderObservation(env, render_only=True)
        env = ResizeObservation(env, (image_size, image_size))
    spec = env.spec
    return attach_protocol(
        env,
        {
            "backend": NAME,
            "env_id": spec.id if spec is not None else env_id,
            "pixels": bool(pixels),
            "image_size": image_size if pixels else None,
            "max_episode_steps": spec.max_episode_steps if spec is not None else None,
            "kwargs": jsonable(kwargs),
        },
    )


SPEC = EnvBackendSpec(
    name=NAME,
    aliases=("gym",),
    description="Any id in Gymnasium's registry: classic control, Box2D, MuJoCo v5 tasks.",
    make=make,
    list_envs=list_envs,
    matches=matches,
)
