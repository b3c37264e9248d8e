"""One generic, lazy registry used for models, metrics and datasets.

Entries are registered by decorators in their own modules. A registry knows the
modules that define its entries and imports them only when a name is first
looked up or listed, so ``import colorbench`` stays cheap and touches no weights.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional


class UnknownNameError(KeyError):
    """Raised for a name no registry entry has; the message suggests close names."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry:
    name: str
    fn: Callable[..., Any]
    meta: Dict[str, Any] = field(default_factory=dict)


class Registry:
    """A name -> factory table with lazy module discovery and "did you mean" hints.

    Args:
        kind: what the entries are ("model", "metric", "dataset"), used in messages.
        modules: dotted module paths imported on first use; importing them runs
            their ``@registry.register`` decorators.
    """

    def __init__(self, kind: str, modules: Iterable[str] = ()) -> None:
        self.kind = kind
        self._modules = list(modules)
        self._entries: Dict[str, Entry] = {}
        self._loaded = False
        self._lock = threading.RLock()

    # -- registration -------------------------------------------------------
    def register(self, fn: Optional[Callable] = None, *, name: Optional[str] = None, **meta: Any):
        """Decorator: ``@reg.register`` or ``@reg.register(name=..., key=value)``."""

        def deco(f: Callable) -> Callable:
            key = name or f.__name__
            with self._lock:
                if key in self._entries and self._entries[key].fn is not f:
                    raise ValueError(f"{self.kind} {key!r} is registered twice")
                self._entries[key] = Entry(key, f, dict(meta))
            return f

        return deco(fn) if fn is not None else deco

    def add_module(self, module: str) -> None:
        """Declare one more module that registers entries (for plugins)."""
        with self._lock:
            self._modules.append(module)
            self._loaded = False

    # -- lookup -------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for mod in self._modules:
                importlib.import_module(mod)
            self._loaded = True

    def names(self) -> List[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def get(self, name: str) -> Entry:
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(self._entries))
            raise UnknownNameError(f"Unknown {self.kind} {name!r}.{hint} Known: {known}.") from None

    def meta(self, name: str) -> Dict[str, Any]:
        return dict(self.get(name).meta)

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name).fn(*args, **kwargs)
