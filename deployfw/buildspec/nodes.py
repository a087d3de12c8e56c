"""Read a composed YAML node tree while collecting located problems.

Validating the *node* tree instead of constructed Python objects keeps the
line of every key and value, so each problem can say ``buildspec.yml:12:
phases.build.commands[2]: ...``. It also lets us read plain scalars as the
text the user wrote: ``version: 0.2`` is ``"0.2"`` and ``- true`` is the
command ``true``, not a float and a boolean.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import yaml

from deployfw.errors import Problem

_NULL_TAG = "tag:yaml.org,2002:null"
_TRUE = {"yes", "true", "on", "y"}
_FALSE = {"no", "false", "off", "n"}

Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str) -> yaml.Node | None:
    """Compose ``text`` into a node tree (raises yaml.YAMLError on bad YAML)."""
    return yaml.compose(text, Loader=Loader)


def line_of(node: yaml.Node) -> int:
    """1-based line where ``node`` starts."""
    return node.start_mark.line + 1


def kind(node: yaml.Node) -> str:
    """How to name a node's type in a message."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing (null)"
    return f"the scalar {node.value!r}"


class NodeReader:
    """Typed accessors over nodes that record a Problem instead of raising."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node | None, key: str | None, message: str) -> None:
        line = line_of(node) if node is not None else None
        self.problems.append(Problem(self.filename, line, key or None, message))

    def mapping(self, node: yaml.Node, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """Return ``{key: (key_node, value_node)}``; duplicates and bad keys are problems.

        ``<<`` merge keys are expanded (lower precedence than the mapping's own
        keys) because compose leaves them unresolved.
        """
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, f"must be a mapping, got {kind(node)}")
            return None
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                for source in _merge_sources(value_node):
                    for k, pair in (self.mapping(source, path) or {}).items():
                        merged.setdefault(k, pair)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _NULL_TAG:
                self.problem(key_node, path, f"keys must be strings, got {kind(key_node)}")
                continue
            key = key_node.value
            if key in result:
                first = line_of(result[key][0])
                self.problem(key_node, join(path, key), f"duplicate key (first on line {first})")
                continue
            result[key] = (key_node, value_node)
        return {**merged, **result}

    def check_keys(
        self,
        mapping: dict[str, tuple[yaml.Node, yaml.Node]],
        allowed: Iterable[str],
        path: str,
        what: str = "key",
    ) -> None:
        """Report every key outside ``allowed``, with a spelling suggestion."""
        allowed = list(allowed)
        for key, (key_node, _) in mapping.items():
            if key in allowed:
                continue
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            self.problem(
                key_node,
                join(path, key),
                f"unknown {what} {key!r} (expected one of: {', '.join(allowed)}){suggestion}",
            )

    def string(self, node: yaml.Node, path: str) -> str | None:
        """A scalar's text as written; lists, mappings and null are problems."""
        if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
            return str(node.value)
        self.problem(node, path, f"must be a string, got {kind(node)}")
        return None

    def nonempty_string(self, node: yaml.Node, path: str) -> str | None:
        value = self.string(node, path)
        if value is not None and not value.strip():
            self.problem(node, path, "must not be empty")
            return None
        return value

    def boolean(self, node: yaml.Node, path: str) -> bool | None:
        """CodeBuild's yes/no flags (YAML 1.1 booleans, so ``yes`` and ``true`` both work)."""
        if isinstance(node, yaml.ScalarNode):
            text = str(node.value).lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        self.problem(node, path, f"must be yes or no, got {kind(node)}")
        return None

    def string_list(self, node: yaml.Node, path: str, *, allow_scalar: bool = False) -> list[str]:
        """A list of strings; each bad item is its own problem with its own line."""
        if allow_scalar and isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
            return [str(node.value)]
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, path, f"must be a list, got {kind(node)}")
            return []
        items: list[str] = []
        for index, item in enumerate(node.value):
            item_path = f"{path}[{index}]"
            if isinstance(item, yaml.MappingNode):
                self.problem(
                    item,
                    item_path,
                    "is a mapping, not a string: a ': ' inside an unquoted item makes YAML "
                    "read it as a key; quote the whole item",
                )
                continue
            value = self.string(item, item_path)
            if value is not None:
                items.append(value)
        return items

    def string_map(self, node: yaml.Node, path: str) -> dict[str, tuple[yaml.Node, str]]:
        """A mapping of names to string values, keeping each key node for later checks."""
        result: dict[str, tuple[yaml.Node, str]] = {}
        for key, (key_node, value_node) in (self.mapping(node, path) or {}).items():
            value = self.string(value_node, join(path, key))
            if value is not None:
                result[key] = (key_node, value)
        return result


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _merge_sources(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return [node]
