"""The model registry: families register themselves; users create models by name.

A family registers a :class:`ModelSpec` at import time of its package
(``wmenv/models/<family>/__init__.py``). The registry imports the known family packages
lazily on first use, so ``import wmenv`` stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from wmenv.config import apply_overrides, list_presets, make_preset
from wmenv.core.errors import UnknownModelError

__all__ = [
    "ModelSpec",
    "register_model",
    "list_models",
    "get_model_spec",
    "create_config",
    "create_model",
    "FAMILY_MODULES",
]

#: Family packages imported on first registry use (each calls ``register_model``).
FAMILY_MODULES: list[str] = [
    "wmenv.models.dreamer",
    "wmenv.models.planet",
    "wmenv.models.ha",
    "wmenv.models.modular_rssm",
]

_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}
_loaded = False


@dataclass(frozen=True)
class ModelSpec:
    """How to configure and build one registered model.

    Attributes:
        name: canonical registry name (e.g. ``"dreamerv3"``).
        config_cls: frozen dataclass with preset classmethods.
        build: ``build(config, observation_space, action_space) -> torch.nn.Module``.
        family: family name shared by variants (``"dreamer"`` for v1/v2/v3); checkpoints
            record it so a checkpoint of another family is refused.
        aliases: other names resolving to this spec.
        description: one line for ``wmenv list``.
        config_overrides: overrides applied on top of the preset (how variants differ).
        default_preset: preset used when none is given.
        extras: free-form family hooks (e.g. ``"to_world_model"``, ``"agent"``).
    """

    name: str
    config_cls: type
    build: Callable[..., Any]
    family: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    config_overrides: Mapping[str, Any] = field(default_factory=dict)
    default_preset: str = "tiny"
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def presets(self) -> list[str]:
        """Preset names the config class defines."""
        return list_presets(self.config_cls)


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in FAMILY_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name is None or not mod.startswith(err.name):
                raise


def register_model(spec: ModelSpec, *, overwrite: bool = False) -> ModelSpec:
    """Register a model spec under its name and aliases."""
    if not overwrite and spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"model {spec.name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def list_models() -> list[str]:
    """Canonical names of every registered model."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up by name or alias (case-insensitive)."""
    _ensure_loaded()
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise UnknownModelError("model", name, [*_REGISTRY, *_ALIASES])
    return _REGISTRY[key]


def create_config(name: str, preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> Any:
    """Config of a registered model: preset, then the variant's overrides, then the user's.

    Args:
        name: model name or alias.
        preset: preset name (default: the spec's ``default_preset``).
        overrides: dot-notation overrides, values may be strings (from the CLI).
    """
    spec = get_model_spec(name)
    config = make_preset(spec.config_cls, preset or spec.default_preset)
    config = apply_overrides(config, dict(spec.config_overrides))
    return apply_overrides(config, overrides)


def create_model(
    name: str,
    env: gym.Env | None = None,
    *,
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    preset: str | None = None,
    config: Any = None,
    device: str | None = None,
    **overrides: Any,
) -> Any:
    """Build a registered model for an env (or explicit spaces).

    Args:
        name: model name or alias (``list_models()``).
        env: real env whose spaces the model is built for.
        observation_space: used when ``env`` is not given.
        action_space: used when ``env`` is not given.
        preset: config preset (``"tiny"``, ``"small"``, ...).
        config: a ready config (then ``preset`` and ``overrides`` are ignored).
        device: torch device to move the model to.
        **overrides: dot-notation overrides with ``__`` for dots (``rssm__deter=64``).

    Returns:
        The family's model (a ``torch.nn.Module``).
    """
    spec = get_model_spec(name)
    if env is not None:
        observation_space = env.observation_space
        action_space = env.action_space
    if observation_space is None or action_space is None:
        raise TypeError(f"create_model({name!r}) needs env= or both observation_space= and action_space=")
    if config is None:
        config = create_config(name, preset, {k.replace("__", "."): v for k, v in overrides.items()})
    model = spec.build(config, observation_space, action_space)
    if device is not None:
        model = model.to(device)
    return model
