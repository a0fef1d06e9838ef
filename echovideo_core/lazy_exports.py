"""Package names imported when first used (PEP 562), so importing a package stays cheap and a
missing optional dependency only affects the names that need it."""
from __future__ import annotations

import importlib
from typing import Any, Callable, MutableMapping


def lazy_getattr(namespace: MutableMapping[str, Any], exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `name` from `exports[name]` (a module path) on first
    use and keeps it in `namespace` (the package's globals()). Usage, in a package's __init__:
    `__getattr__ = lazy_getattr(globals(), {"Name": "package.module", ...})`."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
