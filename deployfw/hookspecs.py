"""Every hook deployfw calls, grouped by lifecycle phase.

Call sites pass keyword arguments only, so implementations may accept any
subset of the arguments and specs can grow without breaking plugins. Built-in
backends register through these very hooks; there is no private path.

Phases, in the order a ``deployfw run`` goes through them:

1. **Registration** - :func:`deployfw_register_backends` once per process;
   :func:`deployfw_register_commands` when the command line needs plugin commands.
2. **Configuration** - :func:`deployfw_config_loaded` after modules.yaml validated;
   :func:`deployfw_state_account` when a command opens the state store.
3. **Run** - :func:`deployfw_run_start`, then per module :func:`deployfw_module_start`,
   :func:`deployfw_stage_end` after each stage, :func:`deployfw_module_end`, and
   finally :func:`deployfw_run_end` with the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from deployfw.backends import BackendRegistry, RunContext, StageResult
    from deployfw.commands import CommandRegistry
    from deployfw.config import Config, Module
    from deployfw.seeding import Seed

PROJECT = "deployfw"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- 1. registration -----------------------------------------------------------------


@hookspec
def deployfw_register_commands(commands: CommandRegistry) -> None:
    """Contribute ``deployfw`` subcommands: ``commands.add(name, "package.module:attr", help=...)``.

    Called when the command line is listed or a command it does not know is run. The target
    is a click command, imported only when it runs; it receives the session
    (:class:`deployfw.session.Session`) as click's context object (``@click.pass_obj``).
    """


@hookspec
def deployfw_register_backends(registry: BackendRegistry) -> None:
    """Register build, registry, deploy and state-store backends by id.

    Called once when the plugin manager loads. Register factories, not live
    objects, and keep imports of heavy SDKs inside the factory: this hook runs
    for ``deployfw --help``-fast commands too.

    :param registry: call ``registry.add_build/add_registry/add_deploy/add_state_store``.
    """


# -- 2. configuration ----------------------------------------------------------------


@hookspec
def deployfw_config_loaded(config: Config) -> None:
    """Inspect the validated configuration before any plan is made.

    Raise :class:`deployfw.errors.InputError` to refuse it (exit 2, nothing changed).
    """


@hookspec(firstresult=True)
def deployfw_state_account(ctx: RunContext) -> str | None:
    """The account part of the state store's scope for this run (records and locks are kept per
    account, region and environment). The first non-None answer wins.

    The built-in ``state`` plugin answers with the caller's AWS account (STS), with a custom
    endpoint folded in (``123456789012@127.0.0.1:4566``) so sandbox runs never share history or
    locks with real ones. Implement it to key state differently - e.g. a sandbox that keeps its
    account across restarts.
    """


@hookspec
def deployfw_sandbox_seed(config: Config, module: Module) -> list[Seed] | None:
    """What ``module``'s backends need to exist in the sandbox (:mod:`deployfw.seeding`).

    Called by ``--sandbox`` and ``deployfw sandbox`` for every module of every environment of
    the config. Answer for the backends your plugin registered (and only those), with the
    names those backends will use; the sandbox creates the resources idempotently.
    """


# -- 3. run --------------------------------------------------------------------------


@hookspec
def deployfw_run_start(ctx: RunContext, modules: list[str]) -> None:
    """A run begins: ``modules`` is the selected service modules in dependency order."""


@hookspec
def deployfw_module_start(ctx: RunContext, module: Module) -> None:
    """A module's stages are about to run."""


@hookspec
def deployfw_stage_end(ctx: RunContext, module: Module, stage: str, result: StageResult) -> None:
    """A stage (build, push, deploy) of a module finished, successfully or not."""


@hookspec
def deployfw_module_end(ctx: RunContext, module: Module, status: str, error: str | None) -> None:
    """A module finished with ``status`` succeeded, failed or skipped."""


@hookspec
def deployfw_run_end(ctx: RunContext, report: dict[str, Any]) -> None:
    """The run finished; ``report`` is the JSON report (DESIGN.md shape). Must not raise."""
