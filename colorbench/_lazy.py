"""Lazy package attributes: a package's public names resolved from their modules on first use."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, MutableMapping, Tuple


def lazy_api(package: str, api: Dict[str, str], namespace: MutableMapping[str, Any]
             ) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """``(__getattr__, __dir__)`` for a package whose names map to defining modules in ``api``.

    A resolved name is stored in ``namespace`` (the package's ``globals()``), so each is
    imported once.
    """

    def __getattr__(name: str) -> Any:
        if name in api:
            value = getattr(importlib.import_module(api[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> List[str]:
        return sorted(namespace.get("__all__", api))

    return __getattr__, __dir__
