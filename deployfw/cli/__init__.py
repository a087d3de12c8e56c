"""The ``deployfw`` command line: a thin layer over the library.

Subcommands are imported only when invoked (see :class:`LazyGroup`), so
``deployfw --help`` and ``deployfw detect`` never import boto3 or jenkins. Every
:class:`~deployfw.errors.DeployfwError` becomes one line per problem on stderr
and the exit code it stands for; no traceback reaches the user.

Start-up time is part of every command (``deployfw --help`` <= 120 ms), so this
module imports click and little else: the secret registry (which needs
``logging``) is loaded by the group callback, i.e. only when a command runs.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from typing import Any

import click

from deployfw import __version__
from deployfw.cli.app import App
from deployfw.errors import DeployfwError

COMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("deployfw.cli.detect", "List the modules affected by the change base..head."),
    "init": ("deployfw.cli.init", "Write modules.yaml and per-service templates from the Gradle or Maven build."),
    "plan": ("deployfw.cli.plan", "Show what run would do, with preflight findings; changes nothing."),
    "run": ("deployfw.cli.run", "Build, push and deploy every affected service module."),
    "build": ("deployfw.cli.build", "Build one module with its buildspec.yml (what a CI job runs)."),
    "image": ("deployfw.image.cli", "Build and push OCI images without a Docker daemon."),
    "plugins": ("deployfw.cli.plugins", "List backends and hooks with the plugin providing each."),
    "schema": ("deployfw.cli.schema", "Print the JSON Schema of modules.yaml."),
    "sandbox": ("deployfw.cli.sandbox", "Serve the embedded AWS and Jenkins sandbox in the foreground."),
    "status": ("deployfw.cli.status", "Show what is deployed where."),
    "rollback": ("deployfw.cli.rollback", "Redeploy a recorded earlier task definition of a module."),
    "unpin": ("deployfw.cli.unpin", "Release a module's rollback pin: the next run deploys it again."),
    "state": ("deployfw.cli.state", "Manage the deploy state store."),
    "iam": ("deployfw.cli.iam", "Least-privilege IAM policies built from modules.yaml."),
    "doctor": ("deployfw.cli.doctor", "Check the live account against modules.yaml; changes nothing."),
    "report": ("deployfw.cli.report", "Turn a run's JSON report into an HTML page."),
}


class LazyGroup(click.Group):
    """A group whose subcommands live in modules imported on first use.

    The core's commands are listed above; plugins contribute theirs through the
    ``deployfw_register_commands`` hook (asked only when a name is not a core command, or for help).
    """

    def _plugin_commands(self, ctx: click.Context) -> dict[str, tuple[str, str]]:
        app = ctx.find_object(App)
        if app is None:  # --help: the group callback has not run; build the plugins once, not per question
            inline = tuple(ctx.obj) if isinstance(ctx.obj, tuple) else ()
            app = ctx.meta.get("deployfw.help_app")
            if app is None:
                app = App(disabled=tuple(ctx.params.get("disabled") or ()), inline=inline)
                ctx.meta["deployfw.help_app"] = app
        specs = app.plugins.commands(frozenset(COMMANDS)).specs()
        return {spec.name: (spec.target, spec.help) for spec in specs}

    def list_commands(self, ctx: click.Context) -> list[str]:
        core = [name for name, (module, _) in COMMANDS.items() if _importable(module)]
        return sorted([*core, *self._plugin_commands(ctx)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is not None and _importable(entry[0]):
            module = importlib.import_module(entry[0])
            return getattr(module, "command", None) or getattr(module, cmd_name)
        target = self._plugin_commands(ctx).get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        helps = {name: text for name, (_, text) in COMMANDS.items()}
        helps.update({name: text for name, (_, text) in self._plugin_commands(ctx).items()})
        rows = [(name, helps[name]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _importable(module: str) -> bool:
    """Whether ``module`` exists, without importing it or its parent packages.

    ``importlib.util.find_spec("deployfw.image.cli")`` imports ``deployfw.image`` (the
    whole image builder) just so ``deployfw --help`` can list the command; walking the
    package folders with the path finder answers the same question from the file system.
    """
    if module in sys.modules:
        return True
    head, *rest = module.split(".")
    root = sys.modules.get(head)
    search = getattr(root, "__path__", None)
    if search is None:
        return importlib.util.find_spec(module) is not None
    name = head
    for index, part in enumerate(rest):
        name = f"{name}.{part}"
        loaded = sys.modules.get(name)
        spec = loaded.__spec__ if loaded is not None else importlib.machinery.PathFinder.find_spec(name, search)
        if spec is None:
            return False
        if index < len(rest) - 1:
            if spec.submodule_search_locations is None:
                return False
            search = list(spec.submodule_search_locations)
    return True


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="modules.yaml to use (default: the nearest one from the current folder up).",
)
@click.option("-e", "--env", "env", help="Environment overlay from modules.yaml `environments`.")
@click.option(
    "--sandbox",
    is_flag=True,
    help="Run against this checkout's background AWS + Jenkins sandbox, started if none serves "
    "(DEPLOYFW_SANDBOX_IN_PROCESS=1: one in this process, for this command only).",
)
@click.option(
    "--sandbox-reset",
    is_flag=True,
    help="--sandbox, on a new background sandbox: stop this checkout's and forget its deploy state first.",
)
@click.option(
    "--disable-plugin",
    "disabled",
    multiple=True,
    metavar="NAME",
    help="Do not load this plugin (repeatable; also DEPLOYFW_DISABLE_PLUGINS=a,b).",
)
@click.version_option(__version__, prog_name="deployfw")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    env: str | None,
    sandbox: bool,
    sandbox_reset: bool,
    disabled: tuple[str, ...],
) -> None:
    """Deploy the changed service modules of a multi-module repository to AWS ECS."""
    _register_secrets()  # before any command can print or log
    inline = tuple(ctx.obj) if isinstance(ctx.obj, tuple) else ()  # main(plugins=...)
    ctx.obj = App(config_path=config_path, env=env, sandbox=sandbox, sandbox_reset=sandbox_reset, disabled=disabled,
                  inline=inline)  # fmt: skip
    ctx.call_on_close(ctx.obj.close)


def _register_secrets() -> Any:
    """Register the environment's secrets with :mod:`deployfw.redact` (idempotent) and return the module."""
    from deployfw import redact

    redact.register_environment()
    return redact


def main(argv: list[str] | None = None, *, plugins: tuple[object, ...] = ()) -> Any:
    """Console-script entry point: run the CLI, mapping deployfw errors to exit codes.

    ``plugins`` are registered in-process after the installed ones (tests and embedders).
    """
    try:
        return cli.main(args=argv, prog_name="deployfw", standalone_mode=False, obj=tuple(plugins))
    except click.exceptions.Abort:
        click.echo("deployfw: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DeployfwError as exc:
        redact = _register_secrets()  # the error may come before the group callback ran
        for line in redact.mask(str(exc)).splitlines() or [type(exc).__name__]:
            click.echo(f"deployfw: error: {line}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
