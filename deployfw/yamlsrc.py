"""Load YAML safely while remembering where every key came from.

Error messages must name the file, line and key path of the bad value. PyYAML's
constructors throw the marks away, so we compose the node tree ourselves (with
the C loader when it is available - it is several times faster on large
configs) and build plain Python values; the ``{key path: line}`` map is only
built when somebody asks for a line. A valid config never needs one, and at
thousands of modules recording a line per key costs more than the parse itself:
the fast path turns nodes into values without marks, and :attr:`Document.lines`
walks a fresh parse of the same text on first use. Anything the fast path does
not handle exactly like the full walker (merge keys, non-string keys, duplicate
keys, constructor errors) sends the whole document through the full walker.
Duplicate mapping keys, which YAML silently collapses, are reported here
because a duplicated module name would otherwise vanish without a word.
"""

from __future__ import annotations

from collections.abc import Iterator
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


class Document:
    """A parsed YAML document and the line of every key and list item in it.

    ``lines`` is computed on first access when the document came from :func:`parse`'s
    fast path (``text`` given, no ``lines``): only error reporting needs it.
    """

    def __init__(
        self,
        file: str,
        data: Any,
        lines: dict[KeyPath, int] | None = None,
        problems: list[Problem] | None = None,
        *,
        text: str | None = None,
    ) -> None:
        self.file = file
        self.data = data
        self.problems: list[Problem] = problems if problems is not None else []  # duplicate keys, strict=False
        self._lines = lines
        self._text = text

    @property
    def lines(self) -> dict[KeyPath, int]:
        """``{key path: line}``; built by the full walker over the same text the first time it is read."""
        if self._lines is None:
            self._lines = _full_walk(self._text, self.file)[1] if self._text is not None else {}
        return self._lines

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while True:
            found = self.lines.get(path)
            if found is not None or not path:
                return found
            path = path[:-1]

    def problem(self, path: KeyPath, message: str) -> Problem:
        return Problem(self.file, self.line(path), dotted(path) or None, message)

    def __repr__(self) -> str:
        return f"Document(file={self.file!r}, data={self.data!r}, problems={self.problems!r})"


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


_STR_TAG = "tag:yaml.org,2002:str"


class _NotPlain(Exception):
    """The document needs the full walker: merge keys, non-string or duplicate keys."""


class _Plain:
    """Nodes to values without line bookkeeping; raises :class:`_NotPlain` where that would differ.

    Mappings and sequences become dicts and lists whatever their tag, and scalars go
    through the same ``SafeConstructor`` as in :class:`_Builder`, so a document this
    accepts yields exactly the values the full walker would build.
    """

    def __init__(self) -> None:
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node) -> Any:
        kind = type(node)
        if kind is yaml.ScalarNode:
            # A str-tagged scalar constructs to its text; skip the constructor's dispatch.
            return node.value if node.tag == _STR_TAG else self._scalars.construct_object(node, deep=True)
        if kind is yaml.MappingNode:
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if type(key_node) is not yaml.ScalarNode or key_node.tag != _STR_TAG:
                    raise _NotPlain  # merge key (<<), or a key the full walker converts or rejects
                key = key_node.value
                if key in result:
                    raise _NotPlain  # duplicate: the full walker reports it with both lines
                result[key] = self.build(value_node)
            return result
        if kind is yaml.SequenceNode:
            return [self.build(child) for child in node.value]
        raise _NotPlain  # pragma: no cover - compose yields only the three node kinds


def _compose(text: str, file: str) -> yaml.Node | None:
    """The node tree of ``text``; syntax errors become a located :class:`InputError`."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        raise InputError(Problem(file, line, None, f"YAML syntax error: {reason}")) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(file, None, None, f"YAML error: {exc}")) from None


def _full_walk(text: str, file: str, root: yaml.Node | None = None) -> tuple[Any, dict[KeyPath, int], list[Problem]]:
    """Values, lines and duplicate-key problems of ``text`` by the line-tracking walker."""
    if root is None:
        root = _compose(text, file)
        if root is None:
            return None, {}, []
    builder = _Builder(file)
    try:
        data = builder.build(root, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise InputError(Problem(file, mark.line + 1 if mark else None, None, str(exc.problem))) from None
    return data, builder.lines, builder.problems


def parse(text: str, file: str, *, strict: bool = True) -> Document:
    """Parse one YAML document; syntax errors and duplicate keys become :class:`InputError`.

    With ``strict=False`` duplicate keys (the first one kept) are returned in
    ``Document.problems`` instead, so a caller can list them with its own findings.
    """
    root = _compose(text, file)
    if root is None:
        return Document(file, None, {})
    try:
        return Document(file, _Plain().build(root), text=text)
    except (_NotPlain, yaml.constructor.ConstructorError):
        pass  # the full walker builds the same values, or the located error
    data, lines, problems = _full_walk(text, file, root)
    if problems and strict:
        raise InputError(problems)
    return Document(file, data, lines, problems)
