"""Validation of the keyword options shared by several backends."""

from __future__ import annotations

from wmenv.core.errors import ConfigError


def require_int(name: str, value: object, *, minimum: int, example: int) -> int:
    """Returns ``value`` if it is an int (not a bool) ``>= minimum``.

    Raises:
        ConfigError: Naming the option, the expected range, the value given and an example.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}; pass e.g. {name}={example}.")
    return value


def require_probability(name: str, value: object, *, example: float) -> float:
    """Returns ``value`` as a float if it is a real number in ``[0, 1]``.

    Raises:
        ConfigError: Naming the option, the expected range, the value given and an example.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}; pass e.g. {name}={example}.")
    return float(value)
