"""Refuse, before anything runs, a buildspec that can never push the image under its content tag.

After a build the push stage asks the registry for ``$IMAGE_CONTENT_TAG``; a buildspec that never
pushes that tag builds for minutes and then fails every time ("has no image tagged content-..."),
typically because ``--tag "$IMAGE_CONTENT_TAG"`` was left out of ``deployfw image build --push``.

Statically that is known only in one case, and only that case is refused: the buildspec names
``IMAGE_CONTENT_TAG`` nowhere (commands, ``finally`` blocks, its ``env``) *and* every command it runs
is a program known not to read that variable by itself - shell built-ins, file tools, ``docker``,
``aws``, ``git`` and ``deployfw image`` (whose ``--push`` defaults to ``$IMAGE_TAG``, never the
content tag). Any other program (a script, ``make``, ``./gradlew`` with Jib, ``deployfw bundle``,
a shell loop, a command substitution) may read the variable from its environment, so the buildspec
is given the benefit of the doubt.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from deployfw.buildspec import Buildspec
from deployfw.errors import Problem

VARIABLE = "IMAGE_CONTENT_TAG"
_MENTION = re.compile(r"\bIMAGE_CONTENT_TAG\b")
# Programs that cannot push an image under $IMAGE_CONTENT_TAG unless their command line names it.
_NEUTRAL = frozenset(
    {
        ":", "[", "aws", "awk", "basename", "cat", "cd", "chmod", "chown", "cp", "curl", "cut", "date", "dirname",
        "docker", "echo", "exit", "export", "false", "git", "grep", "gzip", "head", "ln", "ls", "mkdir",
        "mv", "printf", "pwd", "rm", "rmdir", "sed", "set", "sleep", "sort", "tail", "tar", "tee", "test",
        "touch", "tr", "true", "uname", "unset", "unzip", "wc", "wget", "zip",
    }
)  # fmt: skip
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "\n"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_DEPLOYFW = re.compile(r"^(?:\$DEPLOYFW|\$\{DEPLOYFW(?::-[^}]*)?\}|(?:.*/)?deployfw)$")


class PushProblem(Problem):
    """A problem only a run that pushes has: the planner drops it for ``--stop-after build``."""


def content_tag_problem(spec: Buildspec) -> Problem | None:
    """The problem when ``spec`` can be shown never to push ``$IMAGE_CONTENT_TAG``; None otherwise."""
    commands = [c for phase in spec.phases for c in (*phase.commands, *phase.finally_commands)]
    env_values = [*spec.env.variables.values(), *spec.env.variables.keys(), *spec.env.exported_variables]
    if any(_MENTION.search(text) for text in (*commands, *env_values)):
        return None
    if not all(_neutral(program, rest) for command in commands for program, rest in _simple_commands(command)):
        return None
    pushing = next((p for p in spec.phases if any("push" in c for c in p.commands)), None)
    phase = pushing or next((p for p in spec.phases if p.commands), None)
    where = f"phases.{phase.name}" if phase else "phases"
    return PushProblem(
        spec.filename,
        phase.line if phase else None,
        where,
        f'no command pushes the image under "${VARIABLE}", which the push stage looks it up by; '
        f'add --tag "${VARIABLE}" to deployfw image build --push (or tag and push it with docker)',
    )


def _neutral(program: str, rest: list[str]) -> bool:
    if any("$(" in word or "`" in word for word in (program, *rest)):
        return False  # a command substitution runs a program of its own
    if program in _NEUTRAL:
        return True
    return bool(_DEPLOYFW.match(program)) and rest[:1] == ["image"]


def _simple_commands(command: str) -> Iterator[tuple[str, list[str]]]:
    """``(program, arguments)`` of each simple command in a shell command line; ``("?", [])`` when unsure."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = ""
        words = list(lexer)
    except ValueError:  # unbalanced quotes: not something to judge
        yield "?", []
        return
    current: list[str] = []
    for word in [*words, ";"]:
        if word in _SEPARATORS or set(word) <= set(";&|()"):
            if current:
                yield _program(current)
            current = []
        else:
            current.append(word)


def _program(words: list[str]) -> tuple[str, list[str]]:
    index = 0
    while index < len(words) and _ASSIGNMENT.match(words[index]):
        index += 1  # VAR=value prog ...: the assignments are not the program
    if index == len(words):
        return ":", []  # only assignments
    return words[index], words[index + 1 :]
