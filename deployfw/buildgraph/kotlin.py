"""Kotlin build scripts (``build.gradle.kts``, ``settings.gradle.kts``) into :mod:`.syntax` nodes.

Kotlin's grammar is regular enough that the tree maps one to one: calls with
value arguments and a trailing lambda, navigation (``projects.libs.shared``),
assignments, and infix calls (``id("x") version "1"``) as a call on the left side.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from deployfw.buildgraph.syntax import Assign, Call, Node, Other, Ref, Str


@cache
def _parser() -> Any:
    import tree_sitter
    import tree_sitter_kotlin

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_kotlin.language()))


def parse(source: bytes) -> tuple[Node, ...]:
    """The statements of a Kotlin script."""
    root = _parser().parse(source).root_node
    return tuple(_Converter(source).statements(root))


def _line(node: Any) -> int:
    return int(node.start_point[0]) + 1


_STATEMENT_LISTS = ("source_file", "statements", "lambda_literal", "block", "control_structure_body")


class _Converter:
    def __init__(self, source: bytes) -> None:
        self.source = source

    def _text(self, node: Any) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def statements(self, node: Any) -> list[Node]:
        out: list[Node] = []
        for child in node.named_children:
            if "comment" in child.type or child.type in ("lambda_parameters", "label"):
                continue
            if child.type in ("statements",):
                out.extend(self.statements(child))
            else:
                out.append(self.convert(child))
        return out

    def convert(self, node: Any) -> Node:
        kind = node.type
        line = _line(node)
        if kind in ("identifier", "simple_identifier", "type_identifier"):
            return Ref(self._text(node).strip("`"), None, line)
        if kind == "navigation_expression":
            named = [c for c in node.named_children if "comment" not in c.type]
            if len(named) == 2 and named[1].type in ("identifier", "simple_identifier", "navigation_suffix"):
                name_node = named[1]
                if name_node.type == "navigation_suffix" and name_node.named_children:
                    name_node = name_node.named_children[-1]
                return Ref(self._text(name_node).strip("`"), self.convert(named[0]), line)
            return self._other(node)
        if kind == "string_literal":
            parts = node.named_children
            if all(c.type in ("string_content", "escape_sequence") for c in parts):
                return Str("".join(self._text(c) for c in parts), line)
            return Other("interpolated string", line, tuple(self.convert(c) for c in parts))
        if kind == "call_expression":
            return self._call(node)
        if kind == "assignment":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is None or right is None:
                named = node.named_children
                if len(named) != 2:
                    return self._other(node)
                left, right = named
            return Assign(self.convert(left), self.convert(right), line)
        if kind == "infix_expression":
            named = node.named_children
            if len(named) == 3 and named[1].type in ("identifier", "simple_identifier"):
                return Call(self._text(named[1]), self.convert(named[0]), (self.convert(named[2]),), (), None, line)
            return self._other(node)
        if kind == "parenthesized_expression" and len(node.named_children) == 1:
            return self.convert(node.named_children[0])
        if kind in ("lambda_literal", "annotated_lambda"):
            return Other(kind, line, tuple(self._lambda(node)))
        if kind == "collection_literal":
            return Other("list", line, tuple(self.convert(c) for c in node.named_children))
        return self._other(node)

    def _other(self, node: Any) -> Other:
        kids: list[Node] = []
        for child in node.named_children:
            if "comment" in child.type:
                continue
            if child.type in _STATEMENT_LISTS:
                kids.extend(self.statements(child))
            else:
                kids.append(self.convert(child))
        return Other(node.type, _line(node), tuple(kids))

    def _lambda(self, node: Any) -> list[Node]:
        if node.type == "annotated_lambda":
            for child in node.named_children:
                if child.type == "lambda_literal":
                    return self.statements(child)
            return []
        return self.statements(node)

    def _call(self, node: Any) -> Node:
        named = [c for c in node.named_children if "comment" not in c.type]
        if not named:
            return self._other(node)
        callee = named[0]
        if callee.type in ("identifier", "simple_identifier"):
            name, receiver = self._text(callee).strip("`"), None
        elif callee.type == "navigation_expression":
            ref = self.convert(callee)
            if not isinstance(ref, Ref):
                return self._other(node)
            name, receiver = ref.name, ref.receiver
        else:
            return self._other(node)
        args: list[Node] = []
        keyed: list[tuple[str, Node]] = []
        body: tuple[Node, ...] | None = None
        for part in named[1:]:
            if part.type in ("value_arguments", "call_suffix"):
                self._arguments(part, args, keyed)
                for inner in part.named_children:
                    if inner.type in ("annotated_lambda", "lambda_literal"):
                        body = tuple(self._lambda(inner))
            elif part.type in ("annotated_lambda", "lambda_literal"):
                body = tuple(self._lambda(part))
        return Call(name, receiver, tuple(args), tuple(keyed), body, _line(node))

    def _arguments(self, node: Any, args: list[Node], keyed: list[tuple[str, Node]]) -> None:
        for argument in node.named_children:
            if argument.type == "value_arguments":
                self._arguments(argument, args, keyed)
                continue
            if argument.type != "value_argument":
                continue
            parts = [c for c in argument.named_children if "comment" not in c.type]
            has_equals = any(not c.is_named and self._text(c) == "=" for c in argument.children)
            if has_equals and len(parts) == 2 and parts[0].type in ("identifier", "simple_identifier"):
                keyed.append((self._text(parts[0]), self.convert(parts[1])))
            elif parts:
                args.append(self.convert(parts[-1]))
