"""Optional dependencies: import them where needed, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from modeltap.errors import MissingExtraError


def require(module: str, *, feature: str, extra: str) -> ModuleType:
    """Import ``module`` or raise MissingExtraError saying which extra installs it.

    >>> require("json", feature="reports", extra="reports").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(feature, extra, module.split(".", maxsplit=1)[0]) from None
