"""Subcommands that plugins contribute to the ``deployfw`` command line.

The core knows no command line, and the CLI must not import plugin internals: a plugin whose
backends come with a command of their own (``render`` for the ECS templates, ``bundle`` for
server revisions) registers it here by name, as tox's subcommands are plugins. Registration
names a ``"package.module:attr"`` target, imported only when the command runs, so listing
commands for ``deployfw --help`` imports no SDK.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployfw.errors import InputError, Problem


@dataclass(frozen=True)
class CommandSpec:
    name: str
    target: str  # "package.module:attr" naming a click command
    help: str
    plugin: str = ""


class CommandRegistry:
    """Handed to ``deployfw_register_commands``; collects every plugin's subcommands."""

    def __init__(self, reserved: frozenset[str] = frozenset()) -> None:
        self._specs: dict[str, CommandSpec] = {}
        self._reserved = reserved
        self._current_plugin = ""

    def set_owner(self, plugin: str) -> None:
        self._current_plugin = plugin

    def add(self, name: str, target: str, *, help: str) -> None:
        """Add subcommand ``name``, the click command at ``target`` (``"package.module:attr"``)."""
        where = f"plugins.{self._current_plugin or 'inline'}"
        if ":" not in target:
            raise InputError(Problem(None, None, where, f"command {name!r}: target {target!r} is not 'module:attr'"))
        if name in self._reserved or name in self._specs:
            owner = self._specs[name].plugin if name in self._specs else "deployfw"
            raise InputError(Problem(None, None, where, f"command {name!r} is already provided by {owner}"))
        self._specs[name] = CommandSpec(name, target, help, self._current_plugin)

    def get(self, name: str) -> CommandSpec | None:
        return self._specs.get(name)

    def specs(self) -> list[CommandSpec]:
        return sorted(self._specs.values(), key=lambda s: s.name)
