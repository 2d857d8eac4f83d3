"""Typed exceptions shared by every part of wmenv.

Each error message names what was expected, what came, and, where there is one, the fix.
User-input errors subclass the builtin that fits (``ValueError``, ``TypeError``, ``KeyError``)
so that callers catching the builtin keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class WMEnvError(Exception):
    """Base class of every wmenv error."""


class InvalidActionError(WMEnvError, ValueError):
    """An action had the wrong shape, dtype or range, or contained NaN/inf."""


class ModelOutputError(WMEnvError, RuntimeError):
    """A world model returned NaN/inf, wrongly shaped tensors or missing keys."""


class ResetNeededError(WMEnvError, RuntimeError):
    """``step`` was called before ``reset``."""


class UnknownNameError(WMEnvError, KeyError):
    """A name (env id, backend, model, preset, agent) is not registered.

    ``str(err)`` is the plain message (``KeyError`` would otherwise quote it).
    """

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        known = sorted(set(known))
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        msg = f"unknown {kind} {name!r}"
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        shown = ", ".join(known[:40]) + (", ..." if len(known) > 40 else "")
        msg += f" Known {kind}s: {shown}."
        if hint:
            msg += f" {hint}"
        self.kind, self.name, self.known, self.close_matches = kind, name, known, close
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownEnvError(UnknownNameError):
    """An env id or backend is unknown."""


class UnknownModelError(UnknownNameError):
    """A model (family) name or preset is unknown."""


class ConfigError(WMEnvError, ValueError):
    """A config value or override is invalid (unknown key, wrong type, invalid combination)."""


class UnsupportedSpaceError(WMEnvError, ValueError):
    """An env's observation or action space is not supported by a family or face."""


class CheckpointError(WMEnvError, ValueError):
    """A checkpoint is missing, corrupt, truncated, of another family, or has mismatched shapes."""


class RunDirError(WMEnvError, ValueError):
    """A run directory is missing, foreign, or would be overwritten."""


class InvalidArgumentError(WMEnvError, ValueError):
    """An argument to a face, the core or the callables API has an invalid value
    (``num_envs``, ``seed``, ``options``, ``reset_mask``, ``render_mode``, ...)."""


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument has the wrong type (e.g. ``num_envs="4"``, ``seed="abc"``).

    Also a ``TypeError`` (and, as an :class:`InvalidArgumentError`, a ``ValueError``), so callers
    catching either builtin keep working.
    """


class MissingActionError(InvalidActionError, KeyError):
    """A TensorDict given to ``step`` has no action entry.

    ``str(err)`` is the plain message (``KeyError`` would otherwise quote it).
    """

    def __str__(self) -> str:
        return str(self.args[0])


class EpisodeEndedError(ResetNeededError):
    """``step`` was called after the episode ended (terminated or truncated) without ``reset``."""
