"""What a backend is: the typed contract between the runner and every plugin's backends.

A backend is the code behind one stage id in modules.yaml (``build: {backend: codebuild}``).
Plugins register backends through the ``deployfw_register_backends`` hook with a *factory*
rather than a live object, so that registering costs nothing: ``deployfw plugins`` and
config validation never import boto3 or python-jenkins. A factory is either the backend
class itself (checked against its protocol at once), a ``"package.module:Class"`` string
(imported and checked when a plan first needs it, before anything changes), or any callable
taking the :class:`RunContext` (its result checked when made). A backend that lacks a
required method is bad input naming the plugin and the method - never an AttributeError
halfway through a deploy.

The whole contract is in this module:

- every stage backend: :class:`Backend` (``steps`` for ``plan``, ``preflight`` checks);
- required per stage: :class:`BuildBackend`, :class:`RegistryBackend`, :class:`DeployBackend`;
- optional abilities of a deploy backend, tested with ``isinstance``: :class:`WritesArtifacts`
  (CodePipeline files for ``run --artifacts-dir``), :class:`Recovers` (find and conclude what a
  killed run left in flight), :class:`Describes` (what runs now, for ``status`` and drift),
  :class:`Redeploys` (put a recorded deploy back into service, for ``rollback``);
- optional abilities of any backend (state stores included): :class:`DeclaresIam` (the IAM actions
  its AWS calls need, per resource, for ``deployfw iam policy``, AccessDenied fixes and ``doctor``),
  :class:`BuildsAs` (a build backend whose builds run as another principal), :class:`ChecksLive`
  (read-only checks of the live account for ``deployfw doctor`` and ``plan``);
- what flows between them: :class:`ModuleJob` in, :class:`StageResult` / :class:`DeployOutcome` out.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, overload, runtime_checkable

from deployfw.errors import InputError, Problem

if TYPE_CHECKING:
    from deployfw.config import Config, Module
    from deployfw.iam.needs import IamNeed, IamScope
    from deployfw.state import DeployRecord, StateStore

Stage = Literal["build", "registry", "deploy", "state"]
STAGE_NAMES: tuple[Stage, ...] = ("build", "registry", "deploy")
# What the state store records for a concluded deploy.
Recorded = Literal["succeeded", "failed", "rolled_back", "abandoned"]
# The catalog's key for plugin-owned top-level sections of modules.yaml (name -> schema).
SECTIONS = "section"


# -- what flows between the runner and a backend -----------------------------------------------


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
    # The registry the run's backends come from: lets the AWS boundary turn an AccessDenied
    # into the statement the backends declare for it (:mod:`deployfw.iam.denied`).
    backends: BackendRegistry | None = field(default=None, repr=False)
    repository_url: str | None = None  # the repository's web address, when CI names it (report links)
    time_scale: float = 1.0
    """AWS seconds per real second at the endpoint: 1 for AWS, a sandbox's clock scale for a sandbox
    (0: its instant clock). Backends that poll shorten their pauses by it, so a deployment whose
    minutes pass in seconds is watched as often, step for step, as one on AWS."""
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


ArtifactKind = Literal["image", "bundle"]
"""What a registry stores for a module: a container image (``ecr``) or a CodeDeploy revision bundle (``s3``)."""


@dataclass(frozen=True)
class ArtifactRef:
    """Where a module's artifact goes: its repository, the commit tag and the content tag a build must push.

    One shape for every kind, so the runner's build reuse, push and deploy sequence is the same for an
    ECS image and for a server revision:

    - ``kind="image"``: ``repository`` is the image repository (``IMAGE_REPO_NAME``), ``repository_uri``
      its URI; a tag is an image tag and the digest the manifest's ``sha256:...``; the artifact is
      located as ``REPOSITORY_URI@sha256:...``.
    - ``kind="bundle"``: ``repository`` is the bucket, ``repository_uri`` ``s3://BUCKET/PREFIX/MODULE``;
      a tag names the object ``REPOSITORY_URI/TAG.zip`` and the digest is that object's ETag; the
      artifact is located as ``s3://BUCKET/PREFIX/MODULE/CONTENT_TAG.zip@ETAG``.
    """

    repository: str
    repository_uri: str
    commit_tag: str
    content_tag: str
    kind: ArtifactKind = "image"

    @property
    def tags(self) -> tuple[str, str]:
        return (self.commit_tag, self.content_tag)

    def tagged(self, tag: str) -> str:
        """The address of the artifact under ``tag``: ``URI:TAG`` for an image, ``URI/TAG.zip`` for a bundle."""
        return f"{self.repository_uri}/{tag}.zip" if self.kind == "bundle" else f"{self.repository_uri}:{tag}"

    def locate(self, digest: str) -> str:
        """The artifact pinned by ``digest``: ``URI@sha256:...`` (image) or ``URI/CONTENT_TAG.zip@ETAG`` (bundle)."""
        base = self.tagged(self.content_tag) if self.kind == "bundle" else self.repository_uri
        return f"{base}@{digest}"

    def by_digest(self, digest: str) -> str:
        """The name :meth:`locate` had when every artifact was an image."""
        return self.locate(digest)


ImageRef = ArtifactRef
"""The name :class:`ArtifactRef` had when every artifact was an image (kept for plugins written then)."""


@dataclass(frozen=True)
class BundleLocation:
    """A revision bundle in S3, as CodeDeploy's ``s3Location`` names it; parsed from an artifact locator."""

    bucket: str
    key: str
    etag: str

    @classmethod
    def parse(cls, locator: str) -> BundleLocation | None:
        """``s3://BUCKET/KEY@ETAG`` -> location; None for anything else (an image, a malformed string)."""
        if not locator.startswith("s3://") or "@" not in locator:
            return None
        where, _, etag = locator.rpartition("@")
        bucket, _, key = where[len("s3://") :].partition("/")
        return cls(bucket, key, etag) if bucket and key and etag else None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}@{self.etag}"


def _no_progress(**_fields: Any) -> None:
    return None


def _no_marks(kind: str, fields: dict[str, Any]) -> None:
    return None


@dataclass
class ModuleJob:
    """One module's pass through the stages; ``log`` prefixes lines with module and stage."""

    ctx: RunContext
    module: Module
    log: Callable[[str], None]
    artifact: ArtifactRef | None = None
    digest: str | None = None
    # Build backends that read the source here build a clean checkout of ``ctx.head`` (see
    # :func:`deployfw.builds.source.build_workdir`); True only for ``run --allow-dirty`` and a module
    # whose inputs have uncommitted changes: then the working tree, under a run-only tag.
    from_worktree: bool = False
    # Deployers call ``progress(deployment_id=..., task_definition=..., extra=...)`` as soon as the
    # deployment exists, so a run killed while waiting can be recovered by the next one.
    progress: Callable[..., None] = field(default=_no_progress, repr=False)
    # Set by the runner for each stage: where :meth:`mark` records.
    marker: Callable[[str, dict[str, Any]], None] = field(default=_no_marks, repr=False)

    @property
    def image(self) -> ArtifactRef | None:
        """The name ``artifact`` had when every artifact was an image."""
        return self.artifact

    @image.setter
    def image(self, value: ArtifactRef | None) -> None:
        self.artifact = value

    @property
    def artifact_uri(self) -> str | None:
        """The artifact pinned by digest (see :meth:`ArtifactRef.locate`); None before it exists."""
        return self.artifact.locate(self.digest) if self.artifact and self.digest else None

    @property
    def image_uri(self) -> str | None:
        """``REPOSITORY_URI@sha256:...`` when the artifact is an image, else None."""
        return self.artifact_uri if self.artifact is not None and self.artifact.kind == "image" else None

    def mark(self, kind: str, **fields: Any) -> None:
        """Record a moment of the current stage on the module's timeline in the report.

        For what a person reading the run wants placed in time: a traffic step
        (``mark("traffic", percent=10)``), a rollout state, an instance finishing,
        a rollback starting, a wait ended (``mark("waited", seconds=..., reason=...)``).
        The runner adds the time (UTC) and the stage; ``fields`` must be JSON values and
        are masked like the rest of the report.
        """
        self.marker(kind, fields)


@dataclass
class StageResult:
    """What a build stage did; ``details`` go into the JSON report under ``build``."""

    ok: bool
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeployOutcome:
    """What a deploy (or redeploy, or the recovery of one) came to.

    One typed object instead of string keys that the runner, the state record and the report
    each read on their own. ``task_definition`` is what was put into service in the form the
    backend can put it into service again (``rollback``); ``rolled_back`` means the deployment
    undid itself (a failure to the user, always); ``live`` means it went live although the
    stage failed (a cancel that came after the traffic switch), so the state store records it
    succeeded and the next run does not deploy that commit again; ``gone`` means the deployment
    a killed run left behind no longer exists anywhere (recorded ``abandoned``). ``details``
    are the backend's own report fields (application, deployment config, instances, ...).
    ``extra`` is what the state record keeps besides the task definition so the backend can put
    the deploy back into service (``rollback``) - a server revision has no task definition, so
    ``codedeploy-server`` keeps ``{"revision": "s3://BUCKET/KEY@ETAG"}`` here.
    """

    ok: bool
    error: str | None = None
    deployment_id: str | None = None
    task_definition: str | None = None
    rolled_back: bool = False
    live: bool = False
    gone: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def recorded(self) -> Recorded:
        """The outcome the state store records."""
        if self.ok or self.live:
            return "succeeded"
        if self.gone:
            return "abandoned"
        return "rolled_back" if self.rolled_back else "failed"

    def report(self, backend: str) -> dict[str, Any]:
        """The JSON report's ``deploy`` section (DESIGN.md keys first, then the backend's own)."""
        return {
            **self.details,
            "backend": backend,
            "id": self.deployment_id,
            "task_definition": self.task_definition,
            "rolled_back": self.rolled_back,
            **({"deployed": True} if self.live and not self.ok else {}),
        }


# -- the stage protocols -------------------------------------------------------------------------


class Backend(Protocol):
    """What the planner asks of every stage backend."""

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        """Human-readable steps for ``plan``; must not call any external system."""
        ...

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        """Static checks run before anything changes (files exist, templates valid)."""
        ...


class BuildBackend(Backend, Protocol):
    def build(self, job: ModuleJob) -> StageResult:
        """Build and push ``job.artifact`` under both of its tags; honour ``job.ctx.cancel``."""
        ...


class RegistryBackend(Backend, Protocol):
    def prepare(self, job: ModuleJob, content_tag: str) -> ArtifactRef:
        """Ensure the repository (or bucket) exists and say where the artifact goes, and of which kind."""
        ...

    def find(self, job: ModuleJob, tag: str) -> str | None:
        """Digest (image) or ETag (bundle) of ``tag`` when the registry has it (content-tag reuse), else None."""
        ...

    def promote(self, job: ModuleJob, digest: str, tags: Sequence[str]) -> None:
        """Add ``tags`` to the artifact ``digest`` (re-tagging or copying, no rebuild)."""
        ...


class DeployBackend(Backend, Protocol):
    def deploy(self, job: ModuleJob) -> DeployOutcome:
        """Deploy ``job.artifact_uri``, wait for the outcome, roll back on failure or cancel.

        Report the deployment id through ``job.progress(deployment_id=..., task_definition=...)``
        as soon as it exists, so a run killed while waiting can be concluded by the next one.
        """
        ...


# -- optional abilities of a deploy backend -------------------------------------------------------


@runtime_checkable
class WritesArtifacts(Protocol):
    """``run --stop-after push --artifacts-dir``: the files CodePipeline's deploy actions consume."""

    def write_artifacts(self, job: ModuleJob, out_dir: Path) -> list[Path]: ...


@runtime_checkable
class Recovers(Protocol):
    """Conclude a deployment a killed run left in flight, never starting a second one."""

    def locate(self, job: ModuleJob, run_id: str, task_definition: str | None) -> str | None:
        """The id of the deployment run ``run_id`` created but did not live to record, if any."""
        ...

    def recover(self, job: ModuleJob, deployment_id: str) -> DeployOutcome:
        """Follow ``deployment_id`` to its end (stop it with rollback on cancel or timeout)."""
        ...


@runtime_checkable
class Describes(Protocol):
    """What runs now, for ``status`` and for drift: at least ``task_definition`` (None when nothing runs)
    and ``exists`` (False when the target is gone); ``in_progress`` when a deployment is active.

    A backend whose deploys have no task definition (``codedeploy-server``) says what runs as
    ``revision`` instead - the same form its deploy records keep (:attr:`DeployRecord.revision`).
    """

    def describe(self, job: ModuleJob) -> Mapping[str, Any]: ...


@runtime_checkable
class Redeploys(Protocol):
    """``rollback``: put a recorded successful deploy back into service, the way ``deploy`` does."""

    def redeploy(self, job: ModuleJob, record: DeployRecord) -> DeployOutcome: ...


# -- optional abilities of any backend ---------------------------------------------------------


@runtime_checkable
class DeclaresIam(Protocol):
    """The IAM actions this backend's AWS calls need, per resource, resolved from modules.yaml.

    Declared next to the calls, pure (no AWS call, no file written): ``scope.module`` is the module
    (None for a state store, whose needs are run-wide), ``scope.arn(...)`` builds exact ARNs. A need
    for whoever runs the module's build uses ``principal=BUILDER`` (see :class:`BuildsAs`).
    ``deployfw iam policy``, the fix printed for an AccessDenied and ``deployfw doctor``'s IAM rows
    all come from these answers; a test checks every AWS call a backend makes against them.
    """

    def iam_needs(self, scope: IamScope) -> Sequence[IamNeed]: ...


@runtime_checkable
class BuildsAs(Protocol):
    """A build backend whose builds run as another principal than ``deployfw run`` (CodeBuild's
    service role, a Jenkins agent): ``"codebuild"``, ``"jenkins"``... A build backend without this
    ability builds as the run itself (``"ci"``)."""

    def builds_as(self, module: Module, config: Config) -> str: ...


@dataclass(frozen=True)
class LiveCheck:
    """One row of ``deployfw doctor``: a read-only fact about the live account and, when it is
    not as the backend needs it, the fix (a command, a setting, a statement to add)."""

    check: str
    ok: bool
    detail: str
    fix: str | None = None


@runtime_checkable
class ChecksLive(Protocol):
    """Read-only checks of what the backend needs in the live account (``deployfw doctor``, and
    ``plan`` after it connects, which exits 1 when a row fails).

    Only Describe/Get/List calls: the doctor never changes anything. A check that cannot run
    (AccessDenied) is a failed row whose fix names the permission. The deploy itself must not rely
    on them having run: a backend checks again before it changes anything.
    """

    def live_checks(self, job: ModuleJob) -> Sequence[LiveCheck]: ...


# -- registration --------------------------------------------------------------------------------

# The methods a backend of each stage must have, checked when it is registered or made.
REQUIRED: Mapping[str, tuple[str, ...]] = {
    "build": ("steps", "preflight", "build"),
    "registry": ("steps", "preflight", "prepare", "find", "promote"),
    "deploy": ("steps", "preflight", "deploy"),
    "state": (
        "record_start",
        "record_progress",
        "record_end",
        "last_success",
        "in_flight",
        "history",
        "find",
        "modules",
        "lock_info",
        "acquire",
        "close",
    ),
}

Factory = Callable[..., Any] | str | type
# A plugin's run-wide IAM needs: a function of the scope, or its "package.module:function" name.
IamDeclarer = Callable[["IamScope"], Sequence["IamNeed"]] | str


@dataclass(frozen=True)
class BackendSpec:
    """One registered backend: its id, stage, section schema and how to make one."""

    stage: str
    id: str
    factory: Factory
    schema: Mapping[str, Any]
    description: str
    plugin: str = ""
    version: str = ""

    def create(self, *args: Any) -> Any:
        """Make the backend (a state store's factory also takes its options) and check its contract."""
        made = self._callable()(*args)
        missing_method(self, made, raise_=True)
        return made

    def _callable(self) -> Callable[..., Any]:
        if not isinstance(self.factory, str):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        try:
            loaded = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise InputError(self._problem(f"cannot load {self.factory!r}: {exc}")) from None
        if isinstance(loaded, type):
            missing_method(self, loaded, raise_=True)
        return cast(Callable[..., Any], loaded)

    def _problem(self, message: str) -> Problem:
        return Problem(None, None, f"plugins.{self.plugin or 'inline'}", f"{self.stage} backend {self.id!r}: {message}")


def missing_method(spec: BackendSpec, backend: object, *, raise_: bool = False) -> str | None:
    """The first required method ``backend`` (a class or an instance) lacks, or None."""
    for name in REQUIRED.get(spec.stage, ()):
        if not callable(getattr(backend, name, None)):
            if raise_:
                what = backend.__name__ if isinstance(backend, type) else type(backend).__name__
                raise InputError(spec._problem(f"{what} lacks the required method {name}()"))
            return name
    return None


@dataclass(frozen=True)
class SectionSpec:
    """A top-level section of modules.yaml that a plugin owns (``notify:``), with its schema."""

    name: str
    schema: Mapping[str, Any]
    description: str
    plugin: str = ""
    version: str = ""


class BackendRegistry:
    """Handed to ``deployfw_register_backends``; collects what every plugin offers."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], BackendSpec] = {}
        self._sections: dict[str, SectionSpec] = {}
        self._iam: list[tuple[str, IamDeclarer]] = []
        self._current_plugin = ""
        self._current_version = ""

    def set_owner(self, plugin: str, version: str) -> None:
        """Attribute the registrations that follow to ``plugin`` (the manager calls this)."""
        self._current_plugin = plugin
        self._current_version = version

    def _register(
        self, stage: str, backend_id: str, factory: Factory, schema: Mapping[str, Any] | None, description: str
    ) -> None:
        key = (stage, backend_id)
        if key in self._specs:
            other = self._specs[key].plugin
            raise InputError(
                Problem(None, None, f"{stage}.{backend_id}", f"registered twice: by {other} and {self._current_plugin}")
            )
        schema = dict(schema or {"type": "object", "properties": {}})
        spec = BackendSpec(stage, backend_id, factory, schema, description, self._current_plugin, self._current_version)
        if isinstance(factory, type):
            missing_method(spec, factory, raise_=True)
        self._specs[key] = spec

    def add_build(
        self, backend_id: str, factory: Factory, *, schema: Mapping[str, Any] | None = None, description: str = ""
    ) -> None:
        """Register a build backend (:class:`BuildBackend`): module source -> artifact in the registry."""
        self._register("build", backend_id, factory, schema, description)

    def add_registry(
        self, backend_id: str, factory: Factory, *, schema: Mapping[str, Any] | None = None, description: str = ""
    ) -> None:
        """Register a registry backend (:class:`RegistryBackend`): where artifacts live, content tags, digests."""
        self._register("registry", backend_id, factory, schema, description)

    def add_deploy(
        self, backend_id: str, factory: Factory, *, schema: Mapping[str, Any] | None = None, description: str = ""
    ) -> None:
        """Register a deploy backend (:class:`DeployBackend`): puts an artifact into service and waits."""
        self._register("deploy", backend_id, factory, schema, description)

    def add_state_store(
        self, backend_id: str, factory: Factory, *, schema: Mapping[str, Any] | None = None, description: str = ""
    ) -> None:
        """Register a state store (:class:`deployfw.state.StateStore`); its factory takes ``(ctx, options)``."""
        self._register("state", backend_id, factory, schema, description)

    def add_section(self, name: str, *, schema: Mapping[str, Any], description: str = "") -> None:
        """Own the top-level section ``name`` of modules.yaml (overridable in ``environments.ENV.name``).

        Config validation checks it against ``schema`` with file, line and key like any
        other section, ``deployfw schema`` includes it, and the plugin reads the
        environment's merged value from ``config.sections[name]``.
        """
        if name in self._sections:
            other = self._sections[name].plugin
            where = f"plugins.{self._current_plugin}"
            raise InputError(Problem(None, None, where, f"section {name!r} is already owned by {other}"))
        self._sections[name] = SectionSpec(name, dict(schema), description, self._current_plugin, self._current_version)

    def add_iam_needs(self, declarer: IamDeclarer) -> None:
        """Declare the IAM needs of a plugin's run-wide AWS calls that no backend makes (a notification
        to an SNS topic its section names): ``declarer(scope) -> Sequence[IamNeed]`` with ``scope.module``
        None, as a callable or a lazy ``"package.module:function"`` string. Backends declare theirs with
        :class:`DeclaresIam` instead."""
        self._iam.append((self._current_plugin, declarer))

    def iam_declarers(self) -> list[tuple[str, Callable[[IamScope], Sequence[IamNeed]]]]:
        """``(plugin, declarer)`` for every plugin's run-wide needs (string declarers imported now)."""
        found: list[tuple[str, Callable[[IamScope], Sequence[IamNeed]]]] = []
        for plugin, declarer in self._iam:
            if isinstance(declarer, str):
                module_name, _, attr = declarer.partition(":")
                try:
                    declarer = cast(Callable[["IamScope"], Sequence["IamNeed"]],
                                    getattr(importlib.import_module(module_name), attr))  # fmt: skip
                except (ImportError, AttributeError) as exc:
                    where = f"plugins.{plugin or 'inline'}"
                    raise InputError(Problem(None, None, where, f"cannot load {declarer!r}: {exc}")) from None
            found.append((plugin, declarer))
        return found

    def specs(self) -> list[BackendSpec]:
        return sorted(self._specs.values(), key=lambda s: (s.stage, s.id))

    def sections(self) -> list[SectionSpec]:
        return sorted(self._sections.values(), key=lambda s: s.name)

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
        if self._sections:  # plugin-owned top-level sections ride along under their own key
            self._refuse_core_keys()
            out[SECTIONS] = {s.name: {**s.schema, "description": s.description or s.schema.get("description", "")}
                             for s in self._sections.values()}  # fmt: skip
        return out

    def _refuse_core_keys(self) -> None:
        """A section named like a core key is a plugin error; checked here, not at registration,
        because the core's keys live with the schema (and YAML), which ``deployfw --help`` must not load."""
        from deployfw.schema import modules_schema

        core = modules_schema()["properties"]
        clashes = [s for s in self._sections.values() if s.name in core]
        problems = [
            Problem(None, None, f"plugins.{s.plugin}", f"section {s.name!r} is a core key of modules.yaml")
            for s in clashes
        ]
        if problems:
            raise InputError(problems)


@overload
def backend_for(
    ctx: RunContext, registry: BackendRegistry, stage: Literal["build"], backend_id: str
) -> BuildBackend: ...
@overload
def backend_for(
    ctx: RunContext, registry: BackendRegistry, stage: Literal["registry"], backend_id: str
) -> RegistryBackend: ...
@overload
def backend_for(
    ctx: RunContext, registry: BackendRegistry, stage: Literal["deploy"], backend_id: str
) -> DeployBackend: ...
def backend_for(ctx: RunContext, registry: BackendRegistry, stage: str, backend_id: str) -> Backend:
    """The run's one instance of a backend (made by its plugin's factory on first use, then checked)."""
    spec = registry.get(stage, backend_id)
    return cast(Backend, ctx.resource(f"backend:{stage}:{backend_id}", lambda: spec.create(ctx)))


def store_for(ctx: RunContext, registry: BackendRegistry, backend_id: str, options: Mapping[str, Any]) -> StateStore:
    """The run's state store of that backend id (one per run, shared by every module)."""
    spec = registry.get("state", backend_id)
    return cast("StateStore", ctx.resource(f"state:{backend_id}", lambda: spec.create(ctx, options)))
