"""Swap our backend subclasses into moto, through moto's own lazy ``BackendDict``.

Each ``BackendDict`` builds its per-account/region backend from its ``.backend``
class on first use, and moto's Flask app derives its URL table from that instance's
``_url_module``. Setting the class and dropping already-built instances is therefore
all it takes; moto itself is not modified.
"""

from __future__ import annotations

from typing import Any

from moto.core.base_backend import BackendDict


def _swaps() -> list[tuple[BackendDict[Any], type]]:
    from moto.codebuild.models import codebuild_backends
    from moto.codedeploy.models import codedeploy_backends
    from moto.ecr.models import ecr_backends
    from moto.ecs.models import ecs_backends
    from moto.elbv2.models import elbv2_backends

    from deployfw.sandbox.aws.codebuild import SandboxCodeBuildBackend, SandboxCodeBuildResponse
    from deployfw.sandbox.aws.codedeploy import SandboxCodeDeployBackend
    from deployfw.sandbox.aws.codedeploy_responses import SandboxCodeDeployResponse
    from deployfw.sandbox.aws.ecr import SandboxEcrBackend
    from deployfw.sandbox.aws.ecs import SandboxEcsBackend, SandboxEcsResponse
    from deployfw.sandbox.aws.elbv2 import SandboxElbv2Backend

    SandboxCodeDeployBackend.sandbox_response = SandboxCodeDeployResponse
    SandboxEcsBackend.sandbox_response = SandboxEcsResponse
    SandboxCodeBuildBackend.sandbox_response = SandboxCodeBuildResponse

    return [
        (codedeploy_backends, SandboxCodeDeployBackend),
        (ecs_backends, SandboxEcsBackend),
        (ecr_backends, SandboxEcrBackend),
        (codebuild_backends, SandboxCodeBuildBackend),
        (elbv2_backends, SandboxElbv2Backend),
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
