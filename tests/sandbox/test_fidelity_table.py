"""docs/sandbox-fidelity.md stays true: every operation it calls faithful names a contract test that calls it.

A row marked ``faithful`` must name ``tests/...py::test_function``; that function must
exist and call the operation (its boto3 name, in its body or a helper of the same
module it calls). The named tests run in this suite, so an operation that stops being
faithful fails its test, and a row claimed faithful without one fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "sandbox-fidelity.md"


def _rows() -> list[dict[str, str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("service", "---") or set(cells[0]) <= {"-"}:
            continue
        service, operation, status, _does, _differs, test = cells
        rows.append({"service": service, "operation": operation, "status": status, "test": test})
    return rows


ROWS = _rows()
FAITHFUL = [r for r in ROWS if r["status"] == "faithful"]


def test_the_table_is_there_and_says_something() -> None:
    assert len(ROWS) >= 20
    assert {r["status"] for r in ROWS} <= {"faithful", "partial", "moto"}
    assert len(FAITHFUL) >= 15


def _calls(function: ast.FunctionDef, module: ast.Module) -> set[str]:
    """Attribute and function names called by ``function`` and by the module's functions it calls."""
    helpers = {n.name: n for n in module.body if isinstance(n, ast.FunctionDef)}
    seen: set[str] = set()
    names: set[str] = set()
    todo = [function]
    while todo:
        node = todo.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        for call in ast.walk(node):
            if isinstance(call, ast.Call):
                target = call.func
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                names.add(name)
                if name in helpers:
                    todo.append(helpers[name])
            elif isinstance(call, ast.Constant) and isinstance(call.value, str):
                names.update(call.value.split())
    return names


@pytest.mark.parametrize("row", FAITHFUL, ids=[f"{r['service']}:{r['operation']}" for r in FAITHFUL])
def test_each_faithful_operation_has_a_contract_test_that_calls_it(row: dict[str, str]) -> None:
    path, sep, name = row["test"].partition("::")
    assert sep and name, f"{row['operation']}: a faithful row names its contract test as path::function"
    source = ROOT / path
    assert source.is_file(), f"{row['test']}: no such file"
    module = ast.parse(source.read_text(encoding="utf-8"))
    function = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    assert function is not None, f"{row['test']}: no such test"
    if row["service"] == "any":
        return
    called = _calls(function, module)
    wanted = {xform_name(op.strip()) for op in row["operation"].split(",")}
    assert wanted & called, f"{row['test']} does not call {row['operation']} ({sorted(wanted)})"
