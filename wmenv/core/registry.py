"""One generic name registry for models, benchmark agents and env backends.

Names are case-insensitive, aliases resolve to a canonical name, registering a taken name raises
:class:`~wmenv.core.errors.ConfigError` unless ``replace=True``, and an unknown name raises the
registry's :class:`~wmenv.core.errors.UnknownNameError` subclass listing the known names with
close-match suggestions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from wmenv.core.errors import ConfigError, UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object, with aliases, case-insensitive lookup and typed errors.

    Args:
        kind: what the names name (``"model"``, ``"agent"``, ``"env backend"``), used in messages.
        error: the :class:`UnknownNameError` subclass raised for unknown names.
        loader: called once before the first lookup (imports the modules that register entries).
        hint: appended to unknown-name messages (how to add an entry).
    """

    def __init__(
        self,
        kind: str,
        *,
        error: type[UnknownNameError] = UnknownNameError,
        loader: Callable[[], None] | None = None,
        hint: str = "",
    ) -> None:
        self.kind, self.error, self.hint = kind, error, hint
        self._loader = loader
        self._loaded = loader is None
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # before loading: the loaded modules register into this registry
            assert self._loader is not None
            self._loader()

    def register(self, name: str, entry: T, *, aliases: Iterable[str] = (), replace: bool = False) -> T:
        """Register ``entry`` as ``name`` (and ``aliases``).

        Raises:
            ConfigError: an empty name, or a name/alias already taken by another entry (without ``replace``).
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if isinstance(aliases, str):
            raise ConfigError(f"{self.kind} aliases must be a tuple of strings, got the string {aliases!r}")
        key = name.lower()
        keys = [key, *(str(a).lower() for a in aliases)]
        if not replace:
            taken = [
                k for k in keys
                if (k in self._entries and (k != key or self._entries[k] is not entry))
                or (k in self._aliases and self._aliases[k] != key)
            ]
            if taken:
                raise ConfigError(
                    f"{self.kind} name(s) {taken} already registered; choose other names or pass replace=True"
                )
        old_aliases = [a for a, target in self._aliases.items() if target == key]
        for alias in old_aliases:
            del self._aliases[alias]
        self._aliases.pop(key, None)
        self._entries[key] = entry
        for alias in keys[1:]:
            if alias != key:
                self._aliases[alias] = key
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (canonical) and its aliases; unknown names are ignored."""
        key = self._aliases.get(name.lower(), name.lower())
        self._entries.pop(key, None)
        for alias in [a for a, t in self._aliases.items() if t == key]:
            del self._aliases[alias]

    def resolve(self, name: str) -> str:
        """Canonical name of ``name`` (an alias or any case); ``self.error`` when unknown."""
        self._load()
        key = str(name).lower()
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise self.error(self.kind, str(name), self.known(), hint=self.hint)
        return key

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (or an alias of it)."""
        return self._entries[self.resolve(name)]

    def names(self) -> list[str]:
        """Canonical names, in registration order."""
        self._load()
        return list(self._entries)

    def known(self) -> list[str]:
        """Canonical names and aliases (for messages)."""
        return [*self._entries, *self._aliases]

    def aliases_of(self, name: str) -> list[str]:
        """Aliases of the canonical ``name``."""
        key = self.resolve(name)
        return [a for a, t in self._aliases.items() if t == key]

    def __contains__(self, name: object) -> bool:
        self._load()
        if not isinstance(name, str):
            return False
        key = name.lower()
        return key in self._entries or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def snapshot(self) -> tuple[dict[str, T], dict[str, str]]:
        """A copy of the entries and aliases (tests restore it with :meth:`restore`)."""
        self._load()
        return dict(self._entries), dict(self._aliases)

    def restore(self, snapshot: tuple[dict[str, T], dict[str, str]]) -> None:
        """Put back what :meth:`snapshot` returned."""
        self._entries, self._aliases = dict(snapshot[0]), dict(snapshot[1])
