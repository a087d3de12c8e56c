"""Load YAML safely while remembering where every key came from.

Error messages must name the file, line and key path of the bad value. PyYAML's
constructors throw the marks away, so we compose the node tree ourselves (with
the C loader when it is available - it is several times faster on large
configs) and build plain Python values alongside a ``{key path: line}`` map.
Duplicate mapping keys, which YAML silently collapses, are reported here
because a duplicated module name would otherwise vanish without a word.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from deployfw.errors import InputError, Problem

try:  # pragma: no cover - depends on how PyYAML was built
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """Render a key path the way users write it: ``modules.api.depends_on[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """A parsed YAML document and the line of every key and list item in it."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # duplicate keys, with ``strict=False``

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while True:
            found = self.lines.get(path)
            if found is not None or not path:
                return found
            path = path[:-1]

    def problem(self, path: KeyPath, message: str) -> Problem:
        return Problem(self.file, self.line(path), dotted(path) or None, message)


class _Builder:
    """Turns a composed node tree into Python values, recording lines and duplicate keys."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                self.lines[(*path, index)] = child.start_mark.line + 1
                items.append(self.build(child, (*path, index)))
            return items
        return self._scalars.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in self._pairs(node):
            key = self.build(key_node, path)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool) or key is None:
                self.problems.append(
                    Problem(self.file, line, dotted(path) or None, "mapping keys must be plain strings")
                )
                continue
            key = str(key)
            if key in result:
                first = self.lines.get((*path, key))
                self.problems.append(
                    Problem(
                        self.file,
                        line,
                        dotted((*path, key)),
                        f"duplicate key (first defined on line {first})",
                    )
                )
                continue
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
        return result

    def _pairs(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """Mapping pairs with YAML merge keys (``<<: *defaults``) expanded, own keys winning."""
        own = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    for k, v in source.value:
                        if k.value not in own_keys:
                            own_keys.add(k.value)
                            yield k, v
        yield from own


def parse(text: str, file: str, *, strict: bool = True) -> Document:
    """Parse one YAML document; syntax errors and duplicate keys become :class:`InputError`.

    With ``strict=False`` duplicate keys (the first one kept) are returned in
    ``Document.problems`` instead, so a caller can list them with its own findings.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        raise InputError(Problem(file, line, None, f"YAML syntax error: {reason}")) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(file, None, None, f"YAML error: {exc}")) from None
    if root is None:
        return Document(file, None)
    builder = _Builder(file)
    try:
        data = builder.build(root, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise InputError(Problem(file, mark.line + 1 if mark else None, None, str(exc.problem))) from None
    if builder.problems and strict:
        raise InputError(builder.problems)
    return Document(file, data, builder.lines, builder.problems)
