"""Groovy build scripts (``build.gradle``, ``settings.gradle``) into :mod:`.syntax` nodes.

The tree-sitter Groovy grammar cannot always tell a command expression apart:
``implementation project(':a')`` comes out as the statement ``implementation``
followed by the statement ``project(':a')`` on the same line, ``apply plugin:
'java'`` as ``apply`` followed by the labeled statement ``plugin: 'java'``, and
``project(':a') { ... }`` as a call followed by a closure. Gradle reads all of
them as one call, so :func:`_statements` joins a bare name (or a call without a
closure) with what follows it on the same line, up to a ``;``. That keeps the
grammar's real parse and adds only the rule the Groovy language itself applies.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from deployfw.buildgraph.syntax import Assign, Call, Node, Other, Ref, Str

_QUOTES = ("'''", '"""', "'", '"', "/")


@cache
def _parser() -> Any:
    import dekobon_tree_sitter_groovy
    import tree_sitter

    return tree_sitter.Parser(tree_sitter.Language(dekobon_tree_sitter_groovy.language()))


def parse(source: bytes) -> tuple[Node, ...]:
    """The statements of a Groovy script."""
    root = _parser().parse(source).root_node
    return tuple(_Converter(source).statements(root))


def _line(node: Any) -> int:
    return int(node.start_point[0]) + 1


class _Converter:
    def __init__(self, source: bytes) -> None:
        self.source = source

    def statements(self, node: Any) -> list[Node]:
        raws = [c for c in node.named_children if "comment" not in c.type]
        out: list[Node] = []
        index = 0
        while index < len(raws):
            raw = raws[index]
            head = self.convert(raw)
            index += 1
            if self._joinable(raw, head):
                args: list[Node] = []
                named: list[tuple[str, Node]] = []
                body: list[Node] | None = None
                prev = raw
                while index < len(raws) and self._same_statement(prev, raws[index]):
                    nxt = raws[index]
                    inner = nxt.named_children[0] if nxt.type == "expression_statement" and nxt.named_children else nxt
                    if inner.type == "closure":
                        body = self.statements(inner)
                    elif isinstance(head, Call):
                        break  # a call takes only a closure from the next statement
                    elif nxt.type == "labeled_statement":
                        label = nxt.child_by_field_name("label")
                        stmt = nxt.child_by_field_name("statement")
                        value = self._expression_of(stmt)
                        if label is not None and value is not None:
                            named.append((self._text(label), value))
                    elif nxt.type != "ERROR":
                        args.append(self.convert(nxt))
                    prev = nxt
                    index += 1
                    if body is not None:
                        break
                head = self._join(head, args, named, body)
            out.append(head)
        return out

    def _joinable(self, raw: Any, head: Node) -> bool:
        if raw.type != "expression_statement":
            return False
        if isinstance(head, Ref):
            return True
        return isinstance(head, Call) and head.body is None

    def _same_statement(self, prev: Any, nxt: Any) -> bool:
        if prev.end_point[0] != nxt.start_point[0]:
            return False
        between = self.source[prev.end_byte : nxt.start_byte]
        return b";" not in between

    @staticmethod
    def _join(head: Node, args: list[Node], named: list[tuple[str, Node]], body: list[Node] | None) -> Node:
        if isinstance(head, Ref):
            if not args and not named and body is None:
                return head
            return Call(
                head.name,
                head.receiver,
                tuple(args),
                tuple(named),
                tuple(body) if body is not None else None,
                head.line,
            )
        if isinstance(head, Call) and body is not None:
            return Call(head.name, head.receiver, head.args, head.named, tuple(body), head.line)
        return head

    def _expression_of(self, stmt: Any) -> Node | None:
        if stmt is None:
            return None
        if stmt.type == "expression_statement" and stmt.named_children:
            return self.convert(stmt.named_children[0])
        return self.convert(stmt)

    def _text(self, node: Any) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def convert(self, node: Any) -> Node:
        kind = node.type
        line = _line(node)
        if kind == "expression_statement":
            named = node.named_children
            return self.convert(named[0]) if len(named) == 1 else Other(kind, line, tuple(map(self.convert, named)))
        if kind == "identifier":
            return Ref(self._text(node), None, line)
        if kind == "field_access":
            obj, field = node.child_by_field_name("object"), node.child_by_field_name("field")
            if field is None:
                return self._other(node)
            return Ref(self._text(field), self.convert(obj) if obj is not None else None, line)
        if kind == "string_literal":
            return self._string(node)
        if kind == "method_invocation":
            return self._invocation(node)
        if kind == "command_chain":
            return self._command(node)
        if kind == "assignment_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is None or right is None:
                return self._other(node)
            return Assign(self.convert(left), self.convert(right), line)
        if kind == "object_creation_expression":
            type_node = node.child_by_field_name("type")
            arguments = node.child_by_field_name("arguments")
            args, named = self._arguments(arguments)
            name = f"new {self._text(type_node)}" if type_node is not None else "new"
            return Call(name, None, args, named, None, line)
        if kind == "list_literal":
            return Other("list", line, tuple(self.convert(c) for c in node.named_children if "comment" not in c.type))
        if kind in ("closure", "block"):
            return Other(kind, line, tuple(self.statements(node)))
        if kind == "method_declaration":
            return self._misread_command(node)
        if kind == "parenthesized_expression" and len(node.named_children) == 1:
            return self.convert(node.named_children[0])
        return self._other(node)

    def _other(self, node: Any) -> Other:
        kids = [c for c in node.named_children if "comment" not in c.type]
        if any(c.type in ("block", "closure") for c in kids) or node.type in ("source_file",):
            converted: list[Node] = []
            for child in kids:
                if child.type in ("block", "closure"):
                    converted.extend(self.statements(child))
                else:
                    converted.append(self.convert(child))
            return Other(node.type, _line(node), tuple(converted))
        return Other(node.type, _line(node), tuple(self.convert(c) for c in kids))

    def _string(self, node: Any) -> Node:
        if any(c.type != "string_fragment" and "escape" not in c.type for c in node.named_children):
            return Other("interpolated string", _line(node), tuple(self.convert(c) for c in node.named_children))
        text = self._text(node)
        for quote in _QUOTES:
            if len(text) >= 2 * len(quote) and text.startswith(quote) and text.endswith(quote):
                text = text[len(quote) : -len(quote)]
                break
        return Str(text, _line(node))

    def _callee(self, node: Any) -> tuple[str, Node | None]:
        if node is None:
            return "", None
        if node.type == "identifier":
            return self._text(node), None
        if node.type == "field_access":
            obj, field = node.child_by_field_name("object"), node.child_by_field_name("field")
            return (self._text(field) if field is not None else ""), (self.convert(obj) if obj is not None else None)
        return "", self.convert(node)

    def _arguments(self, node: Any) -> tuple[tuple[Node, ...], tuple[tuple[str, Node], ...]]:
        args: list[Node] = []
        named: list[tuple[str, Node]] = []
        if node is None:
            return (), ()
        for child in node.named_children:
            if "comment" in child.type:
                continue
            if child.type == "named_argument":
                key, value = child.child_by_field_name("key"), child.child_by_field_name("value")
                if key is not None and value is not None:
                    named.append((self._text(key).strip("'\""), self.convert(value)))
            else:
                args.append(self.convert(child))
        return tuple(args), tuple(named)

    def _invocation(self, node: Any) -> Node:
        name, receiver = self._callee(node.child_by_field_name("function"))
        if not name:
            obj = node.child_by_field_name("object")
            if obj is not None:
                name, receiver = self._text(node.child_by_field_name("name") or obj), self.convert(obj)
        args, named = self._arguments(node.child_by_field_name("arguments"))
        body = None
        for child in node.named_children:
            if child.type == "closure":
                body = tuple(self.statements(child))
        return Call(name, receiver, args, named, body, _line(node))

    def _command(self, node: Any) -> Node:
        name, receiver = self._callee(node.child_by_field_name("receiver"))
        args: list[Node] = []
        body: tuple[Node, ...] | None = None
        named: list[tuple[str, Node]] = []
        for index, child in enumerate(node.children):
            if node.field_name_for_child(index) != "argument":
                continue
            if child.type == "closure":
                body = tuple(self.statements(child))
            elif child.type == "named_argument":
                key, value = child.child_by_field_name("key"), child.child_by_field_name("value")
                if key is not None and value is not None:
                    named.append((self._text(key), self.convert(value)))
            else:
                args.append(self.convert(child))
        return Call(name, receiver, tuple(args), tuple(named), body, _line(node))

    def _misread_command(self, node: Any) -> Node:
        """``implementation project(name)`` read as a method declaration: give back the two calls."""
        return_type = node.child_by_field_name("return_type")
        name = node.child_by_field_name("name")
        params = node.child_by_field_name("parameters")
        if node.child_by_field_name("body") is not None or return_type is None or name is None:
            return self._other(node)
        inner_args: list[Node] = []
        if params is not None:
            for param in params.named_children:
                pname = param.child_by_field_name("name")
                inner_args.append(Ref(self._text(pname or param), None, _line(param)))
        inner = Call(self._text(name), None, tuple(inner_args), (), None, _line(name))
        return Call(self._text(return_type), None, (inner,), (), None, _line(node))
