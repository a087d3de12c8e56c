"""Ask every backend a config uses what its AWS calls need (``DeclaresIam``), for every module.

The answers are resolved to principals here: a need of ``BUILDER`` goes to whoever runs that
module's build (``BuildsAs``; the run itself for a build backend without the ability). Backends
are made exactly as a run makes them (their constructors touch nothing), and asked with the
account and region the policy is for, so every ARN is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from deployfw.backends import STAGE_NAMES, BackendRegistry, BuildsAs, DeclaresIam, RunContext, backend_for
from deployfw.iam.needs import BUILDER, IamNeed, IamScope

if TYPE_CHECKING:
    from deployfw.config import Config, Module


@dataclass(frozen=True)
class Declared:
    """A need with where it came from: the module (None: run-wide) and the backend that declared it."""

    need: IamNeed
    module: str | None
    backend: str
    env: str | None = None  # the environment overlay of the config it was declared for (None: the base)


def collect(
    configs: Iterable[Config], registry: BackendRegistry, ctx: RunContext, *, account: str, region: str
) -> list[Declared]:
    """Every backend's needs for every service module of every config (one per environment)."""
    found: list[Declared] = []
    for config in configs:
        found.extend(_config_needs(config, registry, ctx, account, region))
    return found


def _config_needs(
    config: Config, registry: BackendRegistry, ctx: RunContext, account: str, region: str
) -> Iterator[Declared]:
    for module in config.modules.values():
        if not module.is_service:
            continue
        scope = IamScope(config, module, account, config.region or region)
        builder = _builder_principal(config, module, registry, ctx)
        for stage in STAGE_NAMES:
            section = module.section(stage)
            if section is None:
                continue
            backend = _any_stage(ctx, registry, stage, section.backend)
            if isinstance(backend, DeclaresIam):
                for need in backend.iam_needs(scope):
                    if need.principal == BUILDER:
                        need = replace(need, principal=builder)
                    yield Declared(need, module.name, f"{stage}.{section.backend}", config.env)
    options = dict(config.state or {})
    backend_id = options.pop("backend", None) or "sqlite"
    store = registry.get("state", backend_id).create(ctx, options)  # one per config: options may differ
    run_wide = IamScope(config, None, account, config.region or region)
    if isinstance(store, DeclaresIam):
        for need in store.iam_needs(run_wide):
            yield Declared(need, None, f"state.{backend_id}", config.env)
    for plugin, declarer in registry.iam_declarers():  # plugins' calls outside any backend (notifications)
        for need in declarer(run_wide):
            yield Declared(need, None, f"plugin.{plugin}", config.env)


# ``backend_for`` is overloaded per stage literal; here the stage is a loop variable.
_any_stage: Callable[[RunContext, BackendRegistry, str, str], object] = backend_for  # type: ignore[assignment]


def _builder_principal(config: Config, module: Module, registry: BackendRegistry, ctx: RunContext) -> str:
    section = module.build
    if section is None:
        return "ci"
    builder = backend_for(ctx, registry, "build", section.backend)
    return builder.builds_as(module, config) if isinstance(builder, BuildsAs) else "ci"
