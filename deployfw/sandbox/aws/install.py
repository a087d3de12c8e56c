"""Swap our backend subclasses into moto, through moto's own lazy ``BackendDict``.

Each ``BackendDict`` builds its per-account/region backend from its ``.backend``
class on first use, and moto's Flask app derives its URL table from that instance's
``_url_module``. Setting the class and dropping already-built instances is therefore
all it takes; moto itself is not modified.
"""

from __future__ import annotations

import types
from typing import Any

from moto.core.base_backend import BackendDict


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


def _swaps() -> list[tuple[BackendDict[Any], type]]:
    from moto.codebuild.models import codebuild_backends
    from moto.codedeploy.models import codedeploy_backends
    from moto.ecr.models import ecr_backends
    from moto.ecs.models import ecs_backends

    from deployfw.sandbox.aws.codebuild import SandboxCodeBuildBackend
    from deployfw.sandbox.aws.codedeploy import SandboxCodeDeployBackend
    from deployfw.sandbox.aws.ecr import SandboxEcrBackend
    from deployfw.sandbox.aws.ecs import SandboxEcsBackend

    return [
        (codedeploy_backends, SandboxCodeDeployBackend),
        (ecs_backends, SandboxEcsBackend),
        (ecr_backends, SandboxEcrBackend),
        (codebuild_backends, SandboxCodeBuildBackend),
    ]


def install(reset: bool) -> None:
    """Make moto build our backends; with ``reset`` start every service from empty.

    Resetting is process-wide (moto's state is): it happens only when no other
    sandbox is running in this process.
    """
    if reset:
        BackendDict.reset()
    for backends, cls in _swaps():
        if backends.backend is not cls:
            backends.backend = cls
            backends.clear()


def sandbox_backends() -> list[Any]:
    """Every built instance of our backends (all accounts and regions)."""
    found: list[Any] = []
    for backends, cls in _swaps():
        for _, _, backend in backends.iter_backends():
            if isinstance(backend, cls):
                found.append(backend)
    return found
