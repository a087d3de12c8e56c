"""The JSON Schema of modules.yaml, and a small validator for the subset it uses.

One schema serves two purposes: ``deployfw schema`` prints it for editors
(``# yaml-language-server: $schema=...``), and config loading validates with it,
so the documented shape and the enforced shape cannot drift apart. The
validator covers exactly the keywords used here (type, properties, required,
additionalProperties, items, enum, pattern, minimum, minLength) and reports every
problem with its key path instead of stopping at the first; a full JSON Schema
engine would cost more start-up time than ``deployfw detect`` can afford.
:func:`checker` compiles a schema into a plain yes/no predicate with the same
rules: a valid config (the common case) is confirmed without building key paths
and messages, and only an invalid one goes through :func:`validate`.
Backends contribute the schema of their own sections (see hookspecs).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from deployfw.yamlsrc import KeyPath

SCHEMA_ID = "https://deployfw.dev/schema/modules-v1.json"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
EXECUTION_MODES = ("queue", "supersede", "fail")
GRAPH_TOOLS = ("gradle", "maven")  # kept equal to deployfw.buildgraph.TOOLS (a test checks)

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def section_schema(stage: str, backend_schemas: Mapping[str, Mapping[str, Any]] | None) -> dict:
    """Schema of a build/registry/deploy section; one ``if backend == id`` branch per backend."""
    base: dict[str, Any] = {
        "type": "object",
        "description": f"The {stage} stage: `backend` picks the plugin, the other keys are its options.",
        "properties": {"backend": {"type": "string", "description": f"{stage} backend id"}},
    }
    if backend_schemas:
        base["properties"]["backend"]["enum"] = sorted(backend_schemas)
        base["allOf"] = [
            {
                "if": {"properties": {"backend": {"const": backend_id}}},
                "then": {
                    "properties": {"backend": {"const": backend_id}, **schema.get("properties", {})},
                    "additionalProperties": False,
                },
            }
            for backend_id, schema in sorted(backend_schemas.items())
        ]
    return base


def modules_schema(backends: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> dict:
    """The whole modules.yaml schema; ``backends`` maps stage -> backend id -> section schema.

    Its ``section`` entry (name -> schema) adds the top-level sections plugins own.
    """
    backends = backends or {}
    stages = {s: section_schema(s, backends.get(s)) for s in ("build", "registry", "deploy")}
    module = {
        "type": "object",
        "description": "A module of the repository: a deployable service or a shared library.",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "Folder of the module, relative to the repository root.",
            },
            "kind": {"enum": ["service", "library"], "description": "Default: service."},
            "depends_on": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Modules whose changes also affect this one (transitive).",
            },
            "execution_mode": {"enum": list(EXECUTION_MODES)},
            **stages,
        },
    }
    overlay_module = {**module, "required": []}
    top_properties: dict[str, Any] = {
        "version": {"const": 1, "description": "Config format version; only 1 exists."},
        "project": {"type": "string", "pattern": NAME_PATTERN},
        "region": {"type": "string", "pattern": r"^[a-z]{2}(-[a-z]+)+-\d$"},
        "shared_paths": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "Globs from the repository root; a change there affects every service.",
        },
        "execution_mode": {
            "enum": list(EXECUTION_MODES),
            "description": "What a run does when another run holds a module's lock.",
        },
        "graph": {
            "enum": list(GRAPH_TOOLS),
            "description": "Also follow the build tool's project dependencies (settings.gradle / pom.xml "
            "modules): each module depends on the modules its build files reference, besides depends_on.",
        },
        "state": {
            **section_schema("state", backends.get("state")),
            "description": "Where deploy records and locks live (default: sqlite under .deployfw/).",
        },
        "defaults": {
            "type": "object",
            "additionalProperties": False,
            "description": "Merged under every service module; the module's own values win.",
            "properties": stages,
        },
        "modules": {
            "type": "object",
            "propertyNames": {"pattern": NAME_PATTERN},
            "additionalProperties": module,
        },
    }
    # Top-level sections plugins own (BackendRegistry.add_section), overridable per environment like the rest.
    for name, section in sorted((backends.get("section") or {}).items()):
        top_properties.setdefault(name, dict(section))
    overlay = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **{k: v for k, v in top_properties.items() if k not in ("version", "project", "graph")},
            "modules": {"type": "object", "additionalProperties": overlay_module},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "deployfw modules.yaml",
        "type": "object",
        "required": ["version", "modules"],
        "additionalProperties": False,
        "properties": {
            **top_properties,
            "environments": {
                "type": "object",
                "description": "Overlays selected with --env, deep-merged over the whole document.",
                "additionalProperties": overlay,
            },
        },
    }


def validate(value: Any, schema: Mapping[str, Any], path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Yield ``(key path, message)`` for every violation of ``schema`` in ``value``."""
    if "const" in schema and value != schema["const"]:
        yield path, f"must be {schema['const']!r}, got {value!r}"
        return
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(map(str, schema["enum"]))
        yield path, f"unknown value {value!r}; expected one of: {choices}"
        return
    expected = schema.get("type")
    if expected and not _TYPES[expected](value):
        yield path, f"must be {_article(expected)}, got {_describe(value)}"
        return
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            yield path, "must not be empty"
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            yield path, f"{value!r} does not match {pattern}"
    if isinstance(value, int | float) and "minimum" in schema and value < schema["minimum"]:
        yield path, f"must be at least {schema['minimum']}"
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from validate(item, schema["items"], (*path, index))
    if isinstance(value, dict):
        yield from _validate_object(value, schema, path)


def checker(schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A predicate that is true exactly when :func:`validate` would yield nothing for ``schema``.

    Every keyword is looked up once here instead of once per value, and nothing is
    allocated on success; keep the two functions in step (tests compare them).
    """
    has_const, const = "const" in schema, schema.get("const")
    has_enum, enum = "enum" in schema, schema.get("enum")
    expected = schema.get("type")
    type_ok = _TYPES[expected] if expected else None
    min_length = schema.get("minLength", 0)
    pattern = re.compile(schema["pattern"]) if schema.get("pattern") else None
    minimum = schema.get("minimum")
    items = checker(schema["items"]) if "items" in schema else None
    required = tuple(schema.get("required", ()))
    properties = {key: checker(sub) for key, sub in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    extra_ok = checker(extra) if isinstance(extra, Mapping) else None
    closed = extra is False
    names = checker(schema["propertyNames"]) if schema.get("propertyNames") else None

    def check(value: Any) -> bool:
        if has_const and value != const:
            return False
        if has_enum and value not in enum:  # type: ignore[operator]
            return False
        if type_ok is not None and not type_ok(value):
            return False
        if isinstance(value, str):
            if len(value) < min_length or (pattern is not None and not pattern.search(value)):
                return False
        elif isinstance(value, dict):
            for key in required:
                if key not in value:
                    return False
            for key, item in value.items():
                if names is not None and not names(key):
                    return False
                sub = properties.get(key)
                if sub is not None:
                    if not sub(item):
                        return False
                elif closed or (extra_ok is not None and not extra_ok(item)):
                    return False
        elif isinstance(value, list):
            if items is not None:
                for item in value:
                    if not items(item):
                        return False
        elif minimum is not None and isinstance(value, int | float) and value < minimum:
            return False
        return True

    return check


@functools.cache
def modules_checker() -> Callable[[Any], bool]:
    """:func:`checker` of the backend-less :func:`modules_schema`, compiled once per process."""
    return checker(modules_schema())


def _validate_object(value: dict, schema: Mapping[str, Any], path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    for key in schema.get("required", ()):
        if key not in value:
            yield path, f"missing required key '{key}'"
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames")
    for key, item in value.items():
        if names:
            for _, message in validate(key, names):
                yield (*path, key), f"invalid name: {message}"
        if key in properties:
            yield from validate(item, properties[key], (*path, key))
        elif extra is False:
            known = ", ".join(sorted(properties)) or "none"
            yield (*path, key), f"unknown key; valid keys: {known}"
        elif isinstance(extra, Mapping):
            yield from validate(item, extra, (*path, key))


def _article(type_name: str) -> str:
    noun = {"object": "mapping", "array": "list"}.get(type_name, type_name)
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    kind = {dict: "mapping", list: "list", str: "string", bool: "boolean"}.get(type(value))
    return f"{kind or type(value).__name__} {value!r}" if kind != "mapping" else "a mapping"
