"""URL tables for our backend subclasses, which live outside moto.

moto derives a backend's urls module from its class's module name, which is wrong for a
class defined here; each backend's ``_url_module`` returns :func:`url_module` instead.
Kept apart from :mod:`deployfw.sandbox.aws.install` (which imports every backend) so the
backends depend on this small module, not the other way round.
"""

from __future__ import annotations

import types
from typing import Any


def url_module(moto_urls: types.ModuleType, response_cls: type | None = None) -> Any:
    """A urls "module" for a subclassed backend living outside moto.

    moto derives the urls module from the backend class's module name, which is wrong
    for a class defined here (every call would 500). With ``response_cls`` the
    ``dispatch`` handlers are pointed at our response subclass.
    """
    paths = dict(moto_urls.url_paths)
    if response_cls is not None:
        for pattern, handler in list(paths.items()):
            if getattr(handler, "__name__", "") == "dispatch":
                paths[pattern] = response_cls.dispatch
    return types.SimpleNamespace(url_bases=moto_urls.url_bases, url_paths=paths)
