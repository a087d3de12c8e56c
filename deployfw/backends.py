"""What a backend is, and the registry plugins fill with them.

A backend is the code behind one stage id in modules.yaml (``build: {backend:
codebuild}``). Plugins register backends through the ``deployfw_register_backends``
hook with a *factory* rather than an instance or a class import, so that
registering costs nothing: ``deployfw plugins`` and config validation never
import boto3 or python-jenkins. Each registration carries the JSON Schema of its
section, which config validation and ``deployfw schema`` use.

The stage protocols below are the whole contract between the runner and a
backend; everything a backend needs from the run comes in through
:class:`ModuleJob`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from deployfw.errors import InputError, Problem

if TYPE_CHECKING:
    from deployfw.config import Config, Module

Stage = Literal["build", "registry", "deploy"]
STAGE_NAMES: tuple[Stage, ...] = ("build", "registry", "deploy")


@dataclass(frozen=True)
class BackendSpec:
    """One registered backend: its id, stage, section schema and how to make one."""

    stage: str
    id: str
    factory: Callable[[RunContext], Any]
    schema: Mapping[str, Any]
    description: str
    plugin: str = ""
    version: str = ""


class BackendRegistry:
    """Handed to ``deployfw_register_backends``; collects what every plugin offers."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], BackendSpec] = {}
        self._current_plugin = ""
        self._current_version = ""

    def set_owner(self, plugin: str, version: str) -> None:
        """Attribute the registrations that follow to ``plugin`` (the manager calls this)."""
        self._current_plugin = plugin
        self._current_version = version

    def _register(
        self, stage: str, backend_id: str, factory: Callable, schema: Mapping[str, Any] | None, description: str
    ) -> None:
        key = (stage, backend_id)
        if key in self._specs:
            other = self._specs[key].plugin
            raise InputError(
                Problem(None, None, f"{stage}.{backend_id}", f"registered twice: by {other} and {self._current_plugin}")
            )
        schema = dict(schema or {"type": "object", "properties": {}})
        self._specs[key] = BackendSpec(
            stage, backend_id, factory, schema, description, self._current_plugin, self._current_version
        )

    def add_build(
        self, backend_id: str, factory: Callable, *, schema: Mapping[str, Any] | None = None, description: str = ""
    ) -> None:
        """Register a build backend: turns a module's source into an image in the registry."""
        self._register("build", backend_id, factory, schema, description)

    def add_registry(
        self, backend_id: str, factory: Callable, *, schema: Mapping[str, Any] | None = None, description: str = ""
    ) -> None:
        """Register a registry backend: where images live, content tags and digests."""
        self._register("registry", backend_id, factory, schema, description)

    def add_deploy(
        self, backend_id: str, factory: Callable, *, schema: Mapping[str, Any] | None = None, description: str = ""
    ) -> None:
        """Register a deploy backend: puts an image digest into service and waits for the outcome."""
        self._register("deploy", backend_id, factory, schema, description)

    def add_state_store(
        self, backend_id: str, factory: Callable, *, schema: Mapping[str, Any] | None = None, description: str = ""
    ) -> None:
        """Register a state store: where deploy records and locks are kept."""
        self._register("state", backend_id, factory, schema, description)

    def specs(self) -> list[BackendSpec]:
        return sorted(self._specs.values(), key=lambda s: (s.stage, s.id))

    def get(self, stage: str, backend_id: str) -> BackendSpec:
        try:
            return self._specs[(stage, backend_id)]
        except KeyError:
            valid = ", ".join(sorted(i for s, i in self._specs if s == stage)) or "none installed"
            raise InputError(f"unknown {stage} backend {backend_id!r}; valid: {valid}") from None

    def catalog(self) -> dict[str, dict[str, Mapping[str, Any]]]:
        """stage -> backend id -> section schema, the shape config validation takes."""
        out: dict[str, dict[str, Mapping[str, Any]]] = {}
        for spec in self._specs.values():
            out.setdefault(spec.stage, {})[spec.id] = spec.schema
        return out


@dataclass
class RunContext:
    """What every backend of one run shares: config, commits, cancellation, resources.

    ``resource`` memoises expensive per-run objects (an AWS client factory, a
    Jenkins connection) so backends of many modules share them.
    """

    config: Config
    head: str
    run_id: str
    region: str
    endpoint_url: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    ci_url: str | None = None
    _resources: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def root(self) -> Path:
        return self.config.root

    def resource(self, key: str, create: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._resources:
                self._resources[key] = create()
            return self._resources[key]


@dataclass(frozen=True)
class ImageRef:
    """Where a module's image goes: repository URI plus the tags a build must push."""

    repository: str
    repository_uri: str
    commit_tag: str
    content_tag: str

    @property
    def tags(self) -> tuple[str, str]:
        return (self.commit_tag, self.content_tag)

    def by_digest(self, digest: str) -> str:
        return f"{self.repository_uri}@{digest}"


@dataclass
class ModuleJob:
    """One module's pass through the stages; ``log`` prefixes lines with module and stage."""

    ctx: RunContext
    module: Module
    log: Callable[[str], None]
    image: ImageRef | None = None
    digest: str | None = None
    # Deployers call ``progress(deployment_id=..., task_definition=...)`` as soon as the
    # deployment exists, so a run killed while waiting can be recovered by the next one.
    progress: Callable[..., None] = field(default=lambda **_: None, repr=False)

    @property
    def image_uri(self) -> str | None:
        return self.image.by_digest(self.digest) if self.image and self.digest else None


@dataclass
class StageResult:
    """What a stage did; ``details`` go into the JSON report under the stage's key."""

    ok: bool
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class BuildBackend(Protocol):
    def steps(self, module: Module, config: Config) -> Sequence[str]:
        """Human-readable steps for ``plan``; must not call any external system."""

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        """Static checks run before anything changes (files exist, templates valid)."""

    def build(self, job: ModuleJob) -> StageResult:
        """Build and push ``job.image`` under both of its tags; honour ``job.ctx.cancel``."""


class RegistryBackend(Protocol):
    def steps(self, module: Module, config: Config) -> Sequence[str]: ...

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]: ...

    def prepare(self, job: ModuleJob, content_tag: str) -> ImageRef:
        """Ensure the repository exists and say where the image goes."""

    def find(self, job: ModuleJob, tag: str) -> str | None:
        """Digest of ``tag`` when the registry has it (content-tag reuse), else None."""

    def promote(self, job: ModuleJob, digest: str, tags: Sequence[str]) -> None:
        """Add ``tags`` to the image ``digest`` (re-tagging, no rebuild)."""


class DeployBackend(Protocol):
    def steps(self, module: Module, config: Config) -> Sequence[str]: ...

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]: ...

    def deploy(self, job: ModuleJob) -> StageResult:
        """Deploy ``job.image_uri``, wait for the outcome, roll back on failure or cancel.

        ``details`` must carry ``id``, ``task_definition`` and ``rolled_back``.
        """
