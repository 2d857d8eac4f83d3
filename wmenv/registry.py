"""Registries: one generic :class:`Registry` and the typed family contract :class:`ModelSpec`.

A family registers its :class:`ModelSpec` objects from its own package
(``wmenv/models/<family>/__init__.py``) with one call, :func:`register_model`. Families are
discovered without a hand-kept list: on first use the registry imports every subpackage of
:mod:`wmenv.models` and every module named by an entry point of the group ``wmenv.models``
(third-party families). ``import wmenv`` stays cheap: nothing is imported before the first lookup.

The same :class:`Registry` class keeps benchmark agents (:mod:`wmenv.benchmarks.adapters`) and real-env
backends (:mod:`wmenv.envs.backends.registry`), with the same rules: names are case-insensitive,
aliases resolve to a canonical name, registering a taken name raises :class:`ConfigError` unless
``replace=True``, and an unknown name raises a subclass of :class:`UnknownNameError` that lists the
known ones and suggests close matches.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import gymnasium as gym

from wmenv.config import apply_overrides, list_presets, make_preset
from wmenv.core.errors import ConfigError, UnknownModelError
from wmenv.core.registry import Registry

__all__ = [
    "Registry",
    "ModelSpec",
    "MODELS",
    "ENTRY_POINT_GROUP",
    "register_model",
    "list_models",
    "get_model_spec",
    "create_config",
    "create_model",
    "make_policy",
]

#: Entry-point group through which installed packages add families (``module`` registers on import).
ENTRY_POINT_GROUP = "wmenv.models"


def make_policy(model: Any, *, seed: int | None = None, explore: bool = False) -> Any:
    """The standard ``ModelSpec.policy``: ``model.make_policy(explore=..., seed=...)``.

    The policy maps an observation batch ``(N, ...)`` (NumPy) to actions ``(N, ...)`` and may have
    ``reset(mask)`` (see :class:`wmenv.core.contracts.ActingModel`).
    """
    return model.make_policy(explore=explore, seed=seed)


@dataclass(frozen=True)
class ModelSpec:
    """The typed contract of one registered model (a family may register several: variants, aliases).

    Attributes:
        name: canonical registry name (e.g. ``"dreamerv3"``).
        config_cls: frozen dataclass with preset classmethods (``tiny()``, ``small()``, ...).
        build: ``build(config, observation_space, action_space) -> torch.nn.Module`` with
            ``loss(batch) -> TensorDict`` (:class:`wmenv.core.contracts.TrainableModel`).
        family: family name shared by variants (``"dreamer"`` for v1/v2/v3); checkpoints record
            it so a checkpoint of another family is refused.
        aliases: other names resolving to this spec.
        description: one line for ``wmenv list``.
        config_overrides: overrides applied on top of the preset (how variants differ).
        default_preset: preset used when none is given.
        to_world_model: ``to_world_model(model, *, observation_mode=None, **kwargs) -> WorldModel``:
            the trained model as an imagination env (``None``: it cannot be imagined in).
        policy: ``policy(model, *, seed=None, explore=False) -> batched policy`` acting in the real env
            (``None``: the model does not act; benchmark agents exist for the models that do).
            :func:`make_policy` is the standard one for models with ``make_policy``.
        trainer_defaults: :class:`~wmenv.train.trainer.TrainerConfig` overrides the family suggests, a
            mapping or ``preset -> mapping``.
        stages: names of training stages for families not trained by one loss (World Models).
        run_stages: ``run_stages(stage, run_dir, *, env_id, env_kwargs, preset, overrides, seed, device,
            progress) -> dict`` drives a staged family (``wmenv train MODEL --stage S``).
        benchmark_agent: an :class:`~wmenv.benchmarks.adapters.AgentAdapter` factory of the family's
            own (else, when ``policy`` is set, the generic registry agent is used).
        envs: env ids the family is known to train on (``list_envs(model)``); empty: any env whose
            observation kind is in ``observations``.
        observations: observation kinds the family accepts: ``"vector"``, ``"image"``, ``"dict"``.
    """

    name: str
    config_cls: type
    build: Callable[..., Any]
    family: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    config_overrides: Mapping[str, Any] = field(default_factory=dict)
    default_preset: str = "tiny"
    to_world_model: Callable[..., Any] | None = None
    policy: Callable[..., Any] | None = None
    trainer_defaults: Mapping[str, Any] | Callable[[str], Mapping[str, Any]] = field(default_factory=dict)
    stages: tuple[str, ...] = ()
    run_stages: Callable[..., Mapping[str, Any]] | None = None
    benchmark_agent: Callable[..., Any] | None = None
    envs: tuple[str, ...] = ()
    observations: tuple[str, ...] = ("vector", "image")

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.lower():
            raise ConfigError(f"ModelSpec.name must be a non-empty lower-case string, got {self.name!r}")
        if not isinstance(self.config_cls, type):
            raise ConfigError(f"ModelSpec.config_cls must be a dataclass type, got {self.config_cls!r}")
        for name in ("build", "to_world_model", "policy", "run_stages", "benchmark_agent"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(f"ModelSpec.{name} of {self.name!r} must be callable, got {type(value).__name__}")
        if isinstance(self.aliases, str) or isinstance(self.stages, str) or isinstance(self.envs, str):
            raise ConfigError(f"ModelSpec {self.name!r}: aliases, stages and envs are tuples of strings")
        if bool(self.stages) != (self.run_stages is not None):
            raise ConfigError(f"ModelSpec {self.name!r}: stages and run_stages go together")
        if not self.family:
            object.__setattr__(self, "family", self.name)

    @property
    def presets(self) -> list[str]:
        """Preset names the config class defines."""
        return list_presets(self.config_cls)

    @property
    def can_act(self) -> bool:
        """Whether a trained model of this spec can act in the real env (a policy or its own agent)."""
        return self.policy is not None or self.benchmark_agent is not None

    @property
    def can_imagine(self) -> bool:
        """Whether a trained model of this spec is exposed as an imagination env."""
        return self.to_world_model is not None

    def trainer_overrides(self, preset: str | None = None) -> dict[str, Any]:
        """The family's :class:`TrainerConfig` suggestions for ``preset`` (default: ``default_preset``)."""
        hint = self.trainer_defaults
        if callable(hint):
            hint = hint(preset or self.default_preset)
        return dict(hint or {})


def _discover_families() -> None:
    """Import every subpackage of :mod:`wmenv.models` and every ``wmenv.models`` entry point."""
    package = "wmenv.models"  # by name: the registry sits below the families it finds
    found = importlib.util.find_spec(package)
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for info in sorted(pkgutil.iter_modules(locations), key=lambda m: m.name):
        if info.ispkg:
            importlib.import_module(f"{package}.{info.name}")
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as err:  # noqa: BLE001 - a broken plugin must not take the built-in families down
            warnings.warn(f"wmenv: the family plugin {ep.value!r} (entry point {ep.name!r}) failed to load: "
                          f"{type(err).__name__}: {err}", stacklevel=2)


MODELS: Registry[ModelSpec] = Registry(
    "model",
    error=UnknownModelError,
    loader=_discover_families,
    hint="Families register themselves from wmenv/models/<family>/__init__.py (or a 'wmenv.models' entry point).",
)


def register_model(spec: ModelSpec, *, replace: bool = False, overwrite: bool | None = None) -> ModelSpec:
    """Register a model spec under its name and aliases (``overwrite`` is the old name of ``replace``)."""
    if not isinstance(spec, ModelSpec):
        raise ConfigError(f"register_model expects a ModelSpec, got {type(spec).__name__}")
    return MODELS.register(spec.name, spec, aliases=spec.aliases, replace=replace or bool(overwrite))


def list_models() -> list[str]:
    """Canonical names of every registered model, sorted."""
    return sorted(MODELS.names())


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up by name or alias (case-insensitive)."""
    return MODELS.get(name)


def create_config(
    name: str, preset: str | None = None, overrides: Mapping[str, Any] | None = None, **kw_overrides: Any
) -> Any:
    """Config of a registered model: preset, then the variant's overrides, then the user's.

    Args:
        name: model name or alias.
        preset: preset name (default: the spec's ``default_preset``).
        overrides: dot-notation overrides, values may be strings (from the CLI).
        **kw_overrides: the same as keywords, ``__`` standing for a dot (``rssm__deter=64``).
            ``env=`` and ``seed=`` (TorchWM style) are not model settings; they are accepted and
            ignored here (pass them to :func:`create_model` / ``wmenv.train.train``).
    """
    spec = get_model_spec(name)
    extra = {k.replace("__", "."): v for k, v in kw_overrides.items() if k not in ("env", "seed")}
    config = make_preset(spec.config_cls, preset or spec.default_preset)
    config = apply_overrides(config, dict(spec.config_overrides))
    config = apply_overrides(config, dict(overrides or {}))
    return apply_overrides(config, extra)


def create_model(
    name: str,
    config_or_env: Any = None,
    *,
    env: gym.Env | str | None = None,
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    preset: str | None = None,
    config: Any = None,
    device: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Any:
    """Build a registered model for an env (or explicit spaces).

    Call forms: ``create_model(name, env)``, ``create_model(name, config, env=...)``,
    ``create_model(name, env="walker-walk", rssm__deter=64)`` (an env id is made with
    :func:`wmenv.envs.make.make_env` to read its spaces), ``create_model(name,
    observation_space=..., action_space=...)``.

    Args:
        name: model name or alias (``list_models()``).
        config_or_env: a config from :func:`create_config`, or an env / env id (positional).
        env: real env (or env id) whose spaces the model is built for.
        observation_space: used when no env is given.
        action_space: used when no env is given.
        preset: config preset (``"tiny"``, ``"small"``, ...).
        config: a ready config (then ``preset`` and ``overrides`` are ignored).
        device: torch device to move the model to.
        env_kwargs: ``make_env`` arguments when ``env`` is an id.
        **overrides: dot-notation overrides with ``__`` for dots (``rssm__deter=64``); ``seed`` and
            ``total_steps`` (TorchWM style) are training settings and are ignored here.

    Returns:
        The family's model (a ``torch.nn.Module``).
    """
    spec = get_model_spec(name)
    if config_or_env is not None:
        if isinstance(config_or_env, gym.Env | str):
            if env is not None:
                raise TypeError(f"create_model({name!r}) got an env both positionally and as env=")
            env = config_or_env
        elif isinstance(config_or_env, spec.config_cls):
            if config is not None:
                raise TypeError(f"create_model({name!r}) got a config both positionally and as config=")
            config = config_or_env
        else:
            raise TypeError(
                f"create_model({name!r}, x): x must be a {spec.config_cls.__name__} (create_config), a "
                f"gymnasium.Env or an env id string, got {type(config_or_env).__name__}"
            )
    made = None
    if isinstance(env, str):
        from wmenv.envs.make import make_env

        made = env = make_env(env, **dict(env_kwargs or {}))
    try:
        if env is not None:
            observation_space, action_space = env.observation_space, env.action_space
    finally:
        if made is not None:
            made.close()
    if observation_space is None or action_space is None:
        raise TypeError(f"create_model({name!r}) needs env= or both observation_space= and action_space=")
    for ignored in ("seed", "total_steps"):
        overrides.pop(ignored, None)
    if config is None:
        config = create_config(name, preset, {k.replace("__", "."): v for k, v in overrides.items()})
    elif overrides:
        config = apply_overrides(config, {k.replace("__", "."): v for k, v in overrides.items()})
    model = spec.build(config, observation_space, action_space)
    if device is not None:
        model = model.to(device)
    return model
