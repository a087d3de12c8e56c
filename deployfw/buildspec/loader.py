"""Parse and validate a buildspec (CodeBuild syntax version 0.2).

Every problem is collected and raised together as one InputError, each with
file, line and key path, so a user fixes a buildspec in one pass and learns
about it before a build starts rather than minutes into one. The schema
follows CodeBuild's build specification reference; keys CodeBuild accepts
but a local run cannot act on (``cache``, ``reports``, ``run-as`` ...) are
validated for shape and listed in :attr:`Buildspec.ignored`.
"""

from __future__ import annotations

import re

import yaml

from deployfw.buildspec.model import (
    PHASE_TYPES,
    ArtifactsSpec,
    Buildspec,
    EnvSpec,
    OnFailure,
    Phase,
)
from deployfw.buildspec.nodes import NodeReader, compose, join, line_of
from deployfw.buildspec.secrets import parse_secret_reference
from deployfw.errors import InputError, Problem

SUPPORTED_VERSION = "0.2"
TOP_LEVEL_KEYS = ("version", "run-as", "env", "proxy", "batch", "phases", "reports",
                  "artifacts", "cache")
ENV_KEYS = ("shell", "variables", "parameter-store", "exported-variables", "secrets-manager",
            "git-credential-helper")
PHASE_KEYS = ("run-as", "on-failure", "runtime-versions", "commands", "finally")
ARTIFACT_KEYS = ("files", "name", "discard-paths", "base-directory", "exclude-paths",
                 "enable-symlinks", "s3-prefix", "secondary-artifacts")
LINUX_SHELLS = ("bash", "/bin/sh")
WINDOWS_SHELLS = ("powershell.exe", "cmd.exe")
_IGNORED_SECTIONS = ("run-as", "proxy", "batch", "reports", "cache")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RETRY = re.compile(r"^RETRY(-.*)?$")


def load_buildspec(text: str, filename: str) -> Buildspec:
    """Parse ``text`` (the contents of ``filename``) into a :class:`Buildspec`.

    Raises :class:`deployfw.errors.InputError` listing every problem found.
    """
    try:
        root = compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "cannot be parsed"
        raise InputError(Problem(filename, line, None, f"invalid YAML: {reason}")) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(filename, None, None, f"invalid YAML: {exc}")) from None
    if root is None:
        raise InputError(Problem(filename, None, None, "the buildspec is empty"))
    reader = NodeReader(filename)
    spec = _Schema(reader).buildspec(root)
    if reader.problems or spec is None:
        raise InputError(reader.problems)
    return spec


class _Schema:
    """One method per buildspec section; each records problems and returns what it could read."""

    def __init__(self, reader: NodeReader) -> None:
        self.r = reader

    def buildspec(self, root: yaml.Node) -> Buildspec | None:
        top = self.r.mapping(root, "")
        if top is None:
            return None
        self.r.check_keys(top, TOP_LEVEL_KEYS, "", "top-level key")
        version = self.version(root, top)
        env = self.env(top["env"][1]) if "env" in top else EnvSpec()
        phases: tuple[Phase, ...] = ()
        if "phases" in top:
            phases = self.phases(top["phases"][1])
        else:
            self.r.problem(root, "phases", "is required: the buildspec has no phases to run")
        artifacts = self.artifacts(top["artifacts"][1]) if "artifacts" in top else None
        ignored = tuple(key for key in _IGNORED_SECTIONS if key in top)
        for key in ignored:
            self.ignored_section(key, top[key][1])
        if version is None:
            return None
        return Buildspec(self.r.filename, version, phases, env, artifacts, ignored)

    def version(self, root: yaml.Node, top: dict[str, tuple[yaml.Node, yaml.Node]]) -> str | None:
        if "version" not in top:
            self.r.problem(root, "version", f"is required; use version: {SUPPORTED_VERSION}")
            return None
        node = top["version"][1]
        value = self.r.string(node, "version")
        if value is None:
            return None
        if value.strip() == "0.1":
            self.r.problem(
                node,
                "version",
                "0.1 is not supported (it runs every command in its own shell); "
                f"use {SUPPORTED_VERSION}",
            )
            return None
        if value.strip() != SUPPORTED_VERSION:
            self.r.problem(
                node, "version", f"unsupported version {value!r}; only {SUPPORTED_VERSION} is"
            )
            return None
        return SUPPORTED_VERSION

    def ignored_section(self, key: str, node: yaml.Node) -> None:
        if key == "run-as":
            self.r.nonempty_string(node, key)
        else:
            self.r.mapping(node, key)

    # -- env ---------------------------------------------------------------------------

    def env(self, node: yaml.Node) -> EnvSpec:
        env = self.r.mapping(node, "env")
        if env is None:
            return EnvSpec()
        self.r.check_keys(env, ENV_KEYS, "env")
        shell = self.shell(env["shell"][1]) if "shell" in env else None
        variables = self.variables(env, "variables")
        parameters = self.variables(env, "parameter-store")
        secrets = self.variables(env, "secrets-manager")
        for name, (key_node, value) in parameters.items():
            if not value.strip():
                self.r.problem(key_node, f"env.parameter-store.{name}", "names no parameter")
        for name, (key_node, value) in secrets.items():
            try:
                parse_secret_reference(value)
            except ValueError as exc:
                self.r.problem(key_node, f"env.secrets-manager.{name}", str(exc))
        exported: list[str] = []
        if "exported-variables" in env:
            exported = self.exported(env["exported-variables"][1])
        helper = False
        if "git-credential-helper" in env:
            helper = bool(self.r.boolean(env["git-credential-helper"][1],
                                         "env.git-credential-helper"))
        return EnvSpec(
            shell=shell,
            variables={k: v for k, (_, v) in variables.items()},
            parameter_store={k: v for k, (_, v) in parameters.items()},
            secrets_manager={k: v for k, (_, v) in secrets.items()},
            exported_variables=tuple(exported),
            git_credential_helper=helper,
        )

    def shell(self, node: yaml.Node) -> str | None:
        value = self.r.string(node, "env.shell")
        if value is None:
            return None
        if value in WINDOWS_SHELLS:
            self.r.problem(node, "env.shell", f"{value} is a Windows shell; builds here run on "
                           f"Linux ({' or '.join(LINUX_SHELLS)})")
            return None
        if value not in LINUX_SHELLS:
            self.r.problem(node, "env.shell", f"must be one of {', '.join(LINUX_SHELLS)}, "
                           f"got {value!r}")
            return None
        return value

    def variables(
        self, env: dict[str, tuple[yaml.Node, yaml.Node]], section: str
    ) -> dict[str, tuple[yaml.Node, str]]:
        if section not in env:
            return {}
        path = f"env.{section}"
        values = self.r.string_map(env[section][1], path)
        for name, (key_node, _) in list(values.items()):
            if not self.variable_name(key_node, join(path, name), name):
                del values[name]
        return values

    def variable_name(self, node: yaml.Node, path: str, name: str) -> bool:
        if not _VAR_NAME.match(name):
            self.r.problem(node, path, "is not a valid environment variable name")
            return False
        if name.startswith("CODEBUILD_"):
            self.r.problem(node, path, "the CODEBUILD_ prefix is reserved for the build itself")
            return False
        return True

    def exported(self, node: yaml.Node) -> list[str]:
        names = []
        path = "env.exported-variables"
        items = node.value if isinstance(node, yaml.SequenceNode) else []
        for index, name in enumerate(self.r.string_list(node, path)):
            item_node = items[index] if index < len(items) else node
            item_path = f"{path}[{index}]"
            if not _VAR_NAME.match(name):
                self.r.problem(item_node, item_path, f"{name!r} is not a valid variable name")
            elif name.startswith("AWS_"):
                self.r.problem(item_node, item_path, "variables starting with AWS_ cannot be "
                               "exported")
            else:
                names.append(name)
        return names

    # -- phases ------------------------------------------------------------------------

    def phases(self, node: yaml.Node) -> tuple[Phase, ...]:
        phases = self.r.mapping(node, "phases")
        if phases is None:
            return ()
        self.r.check_keys(phases, PHASE_TYPES, "phases", "phase")
        if not phases:
            self.r.problem(node, "phases", f"declares no phase (use {', '.join(PHASE_TYPES)})")
        found = []
        for name in PHASE_TYPES:
            if name in phases:
                key_node, value_node = phases[name]
                phase = self.phase(name, key_node, value_node)
                if phase is not None:
                    found.append(phase)
        return tuple(found)

    def phase(self, name: str, key_node: yaml.Node, node: yaml.Node) -> Phase | None:
        path = f"phases.{name}"
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            self.r.problem(key_node, path, "is empty; give it commands (or remove it)")
            return None
        body = self.r.mapping(node, path)
        if body is None:
            return None
        self.r.check_keys(body, PHASE_KEYS, path)
        commands: list[str] = []
        if "commands" in body:
            commands = self.r.string_list(body["commands"][1], f"{path}.commands")
        elif name != "install" or "runtime-versions" not in body:
            self.r.problem(key_node, f"{path}.commands", "is required")
        finally_commands: list[str] = []
        if "finally" in body:
            finally_commands = self.r.string_list(body["finally"][1], f"{path}.finally")
        on_failure = self.on_failure(body["on-failure"][1], path) if "on-failure" in body else None
        run_as = None
        if "run-as" in body:
            run_as = self.r.nonempty_string(body["run-as"][1], f"{path}.run-as")
        runtimes: dict[str, str] = {}
        if "runtime-versions" in body:
            rv_key, rv_node = body["runtime-versions"]
            if name != "install":
                self.r.problem(rv_key, f"{path}.runtime-versions", "is only allowed in the "
                               "install phase")
            else:
                runtimes = {k: v for k, (_, v) in
                            self.r.string_map(rv_node, f"{path}.runtime-versions").items()}
        return Phase(
            name=name,
            commands=tuple(commands),
            finally_commands=tuple(finally_commands),
            on_failure=on_failure,
            run_as=run_as,
            runtime_versions=runtimes,
            line=line_of(key_node),
        )

    def on_failure(self, node: yaml.Node, path: str) -> OnFailure | None:
        key = f"{path}.on-failure"
        value = self.r.string(node, key)
        if value is None:
            return None
        if value in ("ABORT", "CONTINUE"):
            return value  # type: ignore[return-value]
        if _RETRY.match(value.upper()):
            self.r.problem(node, key, f"{value!r}: the RETRY forms are not supported by "
                           "deployfw's buildspec runner; use ABORT or CONTINUE")
        elif value.upper() in ("ABORT", "CONTINUE"):
            self.r.problem(node, key, f"{value!r} must be upper case: {value.upper()}")
        else:
            self.r.problem(node, key, f"must be ABORT or CONTINUE, got {value!r}")
        return None

    # -- artifacts ---------------------------------------------------------------------

    def artifacts(self, node: yaml.Node) -> ArtifactsSpec | None:
        section = self.r.mapping(node, "artifacts")
        if section is None:
            return None
        self.r.check_keys(section, ARTIFACT_KEYS, "artifacts")
        if "files" not in section:
            self.r.problem(node, "artifacts.files", "is required when artifacts is given")
            return None
        files_node = section["files"][1]
        files = self.r.string_list(files_node, "artifacts.files")
        if isinstance(files_node, yaml.SequenceNode) and not files_node.value:
            self.r.problem(files_node, "artifacts.files", "lists no files")
        if isinstance(files_node, yaml.SequenceNode):
            for index, item in enumerate(files_node.value):
                if isinstance(item, yaml.ScalarNode):
                    self.relative(item, f"artifacts.files[{index}]", str(item.value))
        name = base = None
        if "name" in section:
            name = self.r.nonempty_string(section["name"][1], "artifacts.name")
        if "base-directory" in section:
            base_node = section["base-directory"][1]
            base = self.r.nonempty_string(base_node, "artifacts.base-directory")
            if base is not None:
                self.relative(base_node, "artifacts.base-directory", base)
        exclude: list[str] = []
        if "exclude-paths" in section:
            exclude = self.r.string_list(section["exclude-paths"][1], "artifacts.exclude-paths",
                                         allow_scalar=True)
        flags = {}
        for key in ("discard-paths", "enable-symlinks"):
            flags[key] = bool(self.r.boolean(section[key][1], f"artifacts.{key}")) \
                if key in section else False
        if "s3-prefix" in section:
            self.r.string(section["s3-prefix"][1], "artifacts.s3-prefix")
        if "secondary-artifacts" in section:
            self.r.mapping(section["secondary-artifacts"][1], "artifacts.secondary-artifacts")
        return ArtifactsSpec(
            files=tuple(files),
            name=name,
            base_directory=base,
            discard_paths=flags["discard-paths"],
            exclude_paths=tuple(exclude),
            enable_symlinks=flags["enable-symlinks"],
        )

    def relative(self, node: yaml.Node, path: str, value: str) -> None:
        """Artifact paths are relative to the source directory and may not leave it."""
        if value.startswith("/") or ".." in value.split("/"):
            self.r.problem(node, path, f"{value!r} must be a path inside the source directory")

