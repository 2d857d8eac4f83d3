"""Frozen-dataclass configs: presets, dot-notation overrides with type checks, (de)serialisation.

Every family's config is a frozen dataclass next to its code, validated in ``__post_init__``,
with presets as classmethods (``tiny()``, ``small()``, ...). This module holds the one
mechanism all of them share, so the CLI (``key=value`` overrides) and checkpoints (config as
plain data) treat every family alike.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from wmenv.core.errors import ConfigError, UnknownModelError

__all__ = [
    "PRESET_NAMES",
    "list_presets",
    "make_preset",
    "apply_overrides",
    "parse_overrides",
    "config_to_dict",
    "config_from_dict",
]

C = TypeVar("C")

#: Preset classmethod names looked up on config classes, smallest first.
PRESET_NAMES = ("debug", "tiny", "small", "medium", "large", "xlarge", "paper")


def list_presets(config_cls: type) -> list[str]:
    """Names of the presets a config class defines (classmethods named in ``PRESET_NAMES``)."""
    extra = tuple(getattr(config_cls, "EXTRA_PRESETS", ()))
    return [n for n in (*PRESET_NAMES, *extra) if callable(getattr(config_cls, n, None))]


def make_preset(config_cls: type[C], preset: str | None) -> C:
    """Build ``config_cls`` from a named preset (``None`` → the class defaults)."""
    if preset is None or preset == "default":
        return config_cls()
    known = list_presets(config_cls)
    if preset not in known:
        raise UnknownModelError("preset", preset, known, hint=f"(presets of {config_cls.__name__})")
    return getattr(config_cls, preset)()


def _resolve_type(cls: type, field: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(cls)
    return hints.get(field.name, field.type)


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Coerce ``value`` (possibly a CLI string) to ``typ`` or raise :class:`ConfigError`."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if typ is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"override {key}={value!r}: expected {typ}, " + "; ".join(errors))
    if origin is typing.Literal:
        for a in args:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise ConfigError(f"override {key}={value!r}: expected one of {list(args)}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.strip("()[] ").split(",") if v.strip() != ""]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"override {key}={value!r}: expected a sequence")
        inner = args[0] if args else Any
        out = [_coerce(v.strip() if isinstance(v, str) else v, inner, key) for v in value]
        return tuple(out) if origin is tuple else out
    if dataclasses.is_dataclass(typ):
        if isinstance(value, typ):
            return value
        if isinstance(value, Mapping):
            return config_from_dict(typ, value)
        raise ConfigError(f"override {key}={value!r}: expected a {typ.__name__} or mapping")
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"override {key}={value!r}: expected a bool (true/false)")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"override {key}={value!r}: expected an int, got a bool")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    f = None
                if f is not None and f.is_integer():
                    return int(f)
        raise ConfigError(f"override {key}={value!r}: expected an int")
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"override {key}={value!r}: expected a float, got a bool")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"override {key}={value!r}: expected a float")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"override {key}={value!r}: expected a string")
    return value


def apply_overrides(config: C, overrides: Mapping[str, Any] | None) -> C:
    """Return a copy of ``config`` with dot-notation overrides applied and type-checked.

    Args:
        config: a frozen dataclass instance (may nest other dataclasses).
        overrides: ``{"rssm.deter": 256, "lr": "3e-4"}``; string values are parsed.

    Raises:
        ConfigError: unknown key (with the valid keys) or a value of the wrong type.
    """
    if not overrides:
        return config
    grouped: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(config)}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in fields:
            raise ConfigError(
                f"unknown config key {key!r} for {type(config).__name__}; valid keys: {sorted(fields)}"
            )
        if rest:
            grouped.setdefault(head, {})[rest] = value
        else:
            direct[head] = _coerce(value, _resolve_type(type(config), fields[head]), key)
    for head, sub in grouped.items():
        child = getattr(config, head)
        if not dataclasses.is_dataclass(child):
            raise ConfigError(f"config key {head!r} of {type(config).__name__} has no sub-keys ({list(sub)})")
        try:
            direct[head] = apply_overrides(child, sub)
        except ConfigError as err:
            raise ConfigError(f"{head}.{err}") from err
    try:
        return dataclasses.replace(config, **direct)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid config after overrides {dict(overrides)}: {err}") from err


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """Parse CLI ``key=value`` items into a dict (values stay strings; types are checked later)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. rssm.deter=256)")
        out[key.strip()] = value.strip()
    return out


def parse_env_kwargs(items: Iterable[str]) -> dict[str, Any]:
    """Parse CLI ``KEY=VALUE`` env arguments into ``make_env`` keyword arguments.

    Values are read as Python literals where they are one (``true``/``false``/``none`` in any
    case, numbers, tuples, quoted strings); anything else stays a string (``render_mode=rgb_array``).
    """
    import ast

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"env argument {item!r} is not of the form KEY=VALUE (e.g. pixels=true)")
        text = text.strip()
        lowered = text.lower()
        if lowered in ("true", "false"):
            value: Any = lowered == "true"
        elif lowered in ("none", "null"):
            value = None
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
        out[key.strip()] = value
    return out


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain-data dict of a (nested) config dataclass; tuples become lists."""
    return dataclasses.asdict(config)


def config_from_dict(config_cls: type[C], data: Mapping[str, Any]) -> C:
    """Rebuild a config from :func:`config_to_dict` output, checking keys and types."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(
            f"unknown keys {sorted(unknown)} for {config_cls.__name__}; valid keys: {sorted(fields)}"
        )
    kwargs = {k: _coerce(v, _resolve_type(config_cls, fields[k]), k) for k, v in data.items()}
    try:
        return config_cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid {config_cls.__name__}: {err}") from err
