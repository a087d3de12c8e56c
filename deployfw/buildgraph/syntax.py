"""A small, language-neutral view of a Gradle build script: calls, assignments, strings.

Gradle reads Groovy and Kotlin scripts; what matters for the project graph is the
same in both (``include(":a")``, ``project(":a")``, ``projects.a``, ``group = "g"``,
plugin ids). The two tree-sitter adapters (:mod:`.groovy`, :mod:`.kotlin`) turn
their concrete trees into these nodes so the Gradle rules (:mod:`.gradle`) are
written once. Anything the adapters do not model becomes :class:`Other`, keeping
the nodes found inside it: a ``project(":x")`` inside an ``if`` still counts, and
the rules can tell it sits in code they do not evaluate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Str:
    """A string literal without interpolation."""

    text: str
    line: int


@dataclass(frozen=True)
class Ref:
    """A name or a property read: ``it``, ``projects.libs.shared``, ``project(':a').projectDir``."""

    name: str
    receiver: Node | None
    line: int

    def dotted(self) -> str | None:
        """``a.b.c`` when the whole chain is plain names, else None."""
        if self.receiver is None:
            return self.name
        if isinstance(self.receiver, Ref):
            head = self.receiver.dotted()
            return f"{head}.{self.name}" if head else None
        return None


@dataclass(frozen=True)
class Call:
    """A method call, with its trailing closure (Groovy) or lambda (Kotlin) as ``body``."""

    name: str
    receiver: Node | None
    args: tuple[Node, ...]
    named: tuple[tuple[str, Node], ...]
    body: tuple[Node, ...] | None
    line: int

    def arg(self, key: str, position: int = 0) -> Node | None:
        """The argument named ``key``, else the positional one at ``position``."""
        for name, value in self.named:
            if name == key:
                return value
        return self.args[position] if len(self.args) > position else None


@dataclass(frozen=True)
class Assign:
    """``target = value`` (also Kotlin's ``target.set(value)`` is a :class:`Call`)."""

    target: Node
    value: Node
    line: int


@dataclass(frozen=True)
class Other:
    """Code the rules do not evaluate (a loop, a condition, a computed string); its inner nodes are kept."""

    kind: str
    line: int
    children: tuple[Node, ...] = field(default=())


Node = Str | Ref | Call | Assign | Other


def strings(node: Node | None) -> list[Str] | None:
    """The literal strings of an argument (one string, or a list of them); None if anything is computed."""
    if isinstance(node, Str):
        return [node]
    if isinstance(node, Other) and node.kind == "list":
        found: list[Str] = []
        for child in node.children:
            inner = strings(child)
            if inner is None:
                return None
            found.extend(inner)
        return found
    return None


def children(node: Node) -> Iterator[Node]:
    """Direct sub-nodes: receivers, arguments, bodies."""
    if isinstance(node, Ref):
        if node.receiver is not None:
            yield node.receiver
    elif isinstance(node, Call):
        if node.receiver is not None:
            yield node.receiver
        yield from node.args
        for _, value in node.named:
            yield value
        if node.body:
            yield from node.body
    elif isinstance(node, Assign):
        yield node.target
        yield node.value
    elif isinstance(node, Other):
        yield from node.children
