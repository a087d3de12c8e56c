"""moto's URL table for a backend subclass living outside moto.

moto derives the urls module from the backend class's module name, which is wrong for a
class defined here (every call would 500). Each sandbox backend's ``_url_module`` calls
:func:`url_module` with moto's own urls module and the response class that
:mod:`.install` assigned to it (``sandbox_response``), so backends never import their
response classes (which import the backends).
"""

from __future__ import annotations

import types
from typing import Any


def url_module(moto_urls: types.ModuleType, response_cls: type | None = None) -> Any:
    """moto's URL table with the ``dispatch`` handlers pointed at ``response_cls`` (if given)."""
    paths = dict(moto_urls.url_paths)
    if response_cls is not None:
        for pattern, handler in list(paths.items()):
            if getattr(handler, "__name__", "") == "dispatch":
                paths[pattern] = getattr(response_cls, "dispatch")  # noqa: B009 - any response class
    return types.SimpleNamespace(url_bases=moto_urls.url_bases, url_paths=paths)
