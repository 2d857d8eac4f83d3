"""Registry of env backends and the ``make_env`` factory that dispatches to them.

A backend knows one family of real environments (Gymnasium's registry, the Arcade Learning
Environment, the DeepMind Control Suite, raw MuJoCo models). Each is described by an
:class:`EnvBackendSpec`; ``make_env(env_id, backend="auto")`` asks the registered backends in
order (built-ins first: mujoco, ale, dmc, gymnasium; then user backends) which one claims the id.

Built-in backends are registered lazily on first use, so importing this module stays cheap and
heavy simulators (ALE, dm_control, MuJoCo) are imported only when an env of theirs is made.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.core.registry import Registry

AUTO = "auto"
_BUILTIN_MODULES = ("mujoco", "ale", "dmc", "minatar", "gymnasium")



@dataclass(frozen=True, kw_only=True)
class EnvBackendSpec:
    """Description of one env backend.

    Attributes:
        name: Canonical lower-case name, e.g. ``"dmc"``.
        aliases: Other names accepted for ``backend=`` (case-insensitive), e.g. ``("dm_control",)``.
        description: One line shown by ``wmenv list`` and in error messages.
        make: ``make(env_id, **kwargs) -> gymnasium.Env``; raises ``UnknownEnvError`` for ids it
            does not know.
        list_envs: ``list_envs() -> list[str]``: the ids this backend can make (may be a
            representative subset when the space of ids is open, e.g. file paths).
        matches: ``matches(env_id) -> bool``: whether ``backend="auto"`` should pick this backend.
    """

    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    make: Callable[..., gym.Env]
    list_envs: Callable[[], list[str]]
    matches: Callable[[str], bool]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.lower():
            raise ConfigError(
                f"EnvBackendSpec.name must be a non-empty lower-case string, got {self.name!r}; "
                "pass e.g. name='mybackend'."
            )
        if self.name == AUTO or AUTO in self.aliases:
            raise ConfigError(f"{AUTO!r} is reserved for automatic backend selection; choose another name.")
        if isinstance(self.aliases, str) or not all(isinstance(a, str) for a in self.aliases):
            raise ConfigError(
                f"EnvBackendSpec.aliases must be a tuple of strings, got {self.aliases!r}; "
                "pass e.g. aliases=('my-backend',)."
            )
        for field in ("make", "list_envs", "matches"):
            if not callable(getattr(self, field)):
                raise ConfigError(
                    f"EnvBackendSpec.{field} must be callable, got {type(getattr(self, field)).__name__}."
                )


def _load_builtins() -> None:
    """Registers the built-in backends, in auto-selection order (the registry calls this once)."""
    for module_name in _BUILTIN_MODULES:
        module = importlib.import_module(f"wmenv.envs.backends.{module_name}")
        BACKENDS.register(module.SPEC.name, module.SPEC, aliases=module.SPEC.aliases)


#: The env backends (name -> spec), built-ins first.
BACKENDS: Registry[EnvBackendSpec] = Registry(
    "env backend", error=UnknownEnvError, loader=_load_builtins,
    hint=f"Pass backend={AUTO!r} to choose from the env id.",
)


def register_env_backend(spec: EnvBackendSpec, *, replace: bool = False) -> None:
    """Adds a backend to the registry.

    User backends are consulted by ``backend="auto"`` after the built-in ones, in registration
    order, so they should claim only ids the built-ins do not know (or be selected explicitly).

    Args:
        spec: The backend description.
        replace: Replace an existing backend of the same name instead of raising.

    Raises:
        ConfigError: If ``spec`` is not an ``EnvBackendSpec`` or its name or an alias is taken.
    """
    if not isinstance(spec, EnvBackendSpec):
        raise ConfigError(
            f"expected an EnvBackendSpec, got {type(spec).__name__}; build one with EnvBackendSpec(...)."
        )
    BACKENDS.names()  # built-ins first, so auto-selection asks them before user backends
    BACKENDS.register(spec.name, spec, aliases=spec.aliases, replace=replace)


def list_env_backends() -> list[str]:
    """Returns the canonical names of the registered backends, in auto-selection order."""
    return BACKENDS.names()


def get_env_backend_spec(name: str) -> EnvBackendSpec:
    """Returns the spec of a backend given its name or an alias (case-insensitive).

    Raises:
        UnknownEnvError: If no backend has that name or alias; the message lists the backends.
    """
    return BACKENDS.get(str(name))


def list_envs(backend: str | None = None) -> list[str]:
    """Lists known env ids, of one backend or of all of them (sorted, without duplicates).

    Args:
        backend: A backend name or alias; ``None`` or ``"auto"`` lists every backend's ids.
    """
    if backend is None or str(backend).lower() == AUTO:
        ids: set[str] = set()
        for spec in list(_iter_specs()):
            ids.update(spec.list_envs())
        return sorted(ids)
    return sorted(set(get_env_backend_spec(backend).list_envs()))


def _iter_specs() -> list[EnvBackendSpec]:
    return [BACKENDS.get(name) for name in BACKENDS.names()]


def resolve_env_backend(env_id: str) -> EnvBackendSpec:
    """Returns the first backend (in registration order) whose ``matches(env_id)`` is true.

    Raises:
        UnknownEnvError: If no backend claims the id; the message suggests close matches.
    """
    for spec in _iter_specs():
        if spec.matches(env_id):
            return spec
    raise UnknownEnvError(
        "env id",
        env_id,
        list_envs(),
        hint=(
            "Use a Gymnasium id ('CartPole-v1'), an ALE game ('ALE/Pong-v5' or 'Pong-v5'), a dm_control "
            "'domain-task' ('walker-walk'), or a path to an existing MJCF .xml file; "
            "see wmenv.envs.make.list_envs()."
        ),
    )


def make_env(env_id: str | os.PathLike[str], backend: str = AUTO, **kwargs: Any) -> gym.Env:
    """Makes a real environment from any registered backend.

    Every returned env follows the Gymnasium API (``reset(seed=...) -> (obs, info)``, five-tuple
    ``step``) and carries a ``wmenv_protocol`` dict (read it with
    :func:`wmenv.envs.backends.describe_protocol`) naming the settings a benchmark must report.

    Args:
        env_id: A Gymnasium id (``"CartPole-v1"``, ``"HalfCheetah-v5"``), an ALE id
            (``"ALE/Pong-v5"``, ``"Pong-v5"``, ``"PongNoFrameskip-v4"``), a dm_control task
            (``"walker-walk"``, ``"cup-catch"``, ``"dmc/cheetah-run"``) or a path to an MJCF file.
        backend: ``"auto"`` (pick from the id: existing ``.xml`` file -> mujoco, ALE game -> ale,
            known dm_control domain -> dmc, else gymnasium), or a backend name or alias.
        **kwargs: Passed to the backend's ``make``; see each backend module for its options.

    Returns:
        The environment, possibly wrapped in Gymnasium wrappers.

    Raises:
        UnknownEnvError: Unknown backend, or an id no backend knows (with close-match suggestions).
        ConfigError: Invalid options for the chosen backend.
    """
    if isinstance(env_id, os.PathLike):
        env_id = os.fspath(env_id)
    if not isinstance(env_id, str) or not env_id:
        raise ConfigError(
            f"env_id must be a non-empty string or path, got {env_id!r}; pass e.g. 'CartPole-v1'."
        )
    if not isinstance(backend, str):
        raise ConfigError(
            f"backend must be a string, got {type(backend).__name__}; pass e.g. 'auto' or 'dmc'."
        )
    spec = resolve_env_backend(env_id) if backend.lower() == AUTO else get_env_backend_spec(backend)
    return spec.make(env_id, **kwargs)
