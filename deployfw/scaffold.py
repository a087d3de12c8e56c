"""``deployfw init``: a modules.yaml and per-service templates, inferred from the build.

The build already names its modules: Gradle's ``settings.gradle(.kts)`` or Maven's
``<modules>``. This reads that project graph (:mod:`deployfw.buildgraph`) and turns it
into a *plan* of files - nothing is written until :func:`write` - so the command can
print what it inferred and what the user must still fill in, and so tests can look
at the plan without a file system round trip:

* every project with a build file becomes a module named after the project
  (``services-api`` when two projects share a name); an application (the Spring
  Boot plugin, the ``application`` plugin, a main class set in the build or a
  ``main`` method / ``@SpringBootApplication`` in its sources) is a service, the
  rest libraries; a folder that only groups other projects is not a module;
* ``graph:`` is set, so dependencies come from the build files on every run (the
  ones found now are listed as comments, never copied into ``depends_on``, where
  they would go stale);
* root build files, wrappers, version catalogs and build logic (``buildSrc``,
  plugin builds, parent POMs) become ``shared_paths``;
* each service gets a ``buildspec.yml`` that builds its jar with the repository's
  wrapper and packs it with ``deployfw image build`` on a base image the user
  gives, a ``taskdef.json`` and an ``appspec.yml``, each only where missing.

Re-running never overwrites anything without ``force``: with a modules.yaml in place
it proposes the modules that are not in it yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deployfw.buildgraph import module_graph, read_build
from deployfw.buildgraph.model import BuildGraph, Project
from deployfw.configmodel import CONFIG_NAME
from deployfw.errors import InputError
from deployfw.schema import NAME_PATTERN

SOURCE_FOLDERS = ("src/main/java", "src/main/kotlin", "src/main/groovy", "src/main/scala")
_MAIN = re.compile(
    rb"@SpringBootApplication|@QuarkusMain|\bstatic\s+void\s+main\s*\(|^\s*fun\s+main\s*\(", re.MULTILINE
)
MAX_SOURCES = 500  # per module: a sniff for a main class, not a compiler
CONTAINER_PORT = 8080
BASE_IMAGE_VARIABLE = "BASE_IMAGE"


@dataclass(frozen=True)
class PlannedModule:
    name: str
    path: str
    kind: str  # service | library
    why: str  # why it is a service (or "no application plugin or main class")
    dependencies: tuple[str, ...]  # what the build files say today, for the record


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative to the repository root
    text: str
    exists: bool


@dataclass
class Scaffold:
    """What ``init`` would write, and what it wants the user to know."""

    tool: str
    root: Path
    modules: list[PlannedModule] = field(default_factory=list)
    shared_paths: list[str] = field(default_factory=list)
    files: list[PlannedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the build files compute: not followed
    todo: list[str] = field(default_factory=list)  # values only the user knows
    proposed: list[PlannedModule] = field(default_factory=list)  # re-run: modules missing from modules.yaml
    existing_config: bool = False


def detect_tool(root: Path) -> str:
    """``gradle`` or ``maven`` from the files in ``root``; a located error when it is neither."""
    if (root / "settings.gradle").is_file() or (root / "settings.gradle.kts").is_file():
        return "gradle"
    if (root / "pom.xml").is_file():
        return "maven"
    raise InputError(f"{root}: no settings.gradle, settings.gradle.kts or pom.xml: not a Gradle or Maven build root")


def plan(root: Path, *, project: str | None = None) -> Scaffold:
    """Read the build in ``root`` and plan modules.yaml and the per-service templates."""
    root = root.resolve()
    tool = detect_tool(root)
    build = read_build(tool, root, "")
    scaffold = Scaffold(tool, root)
    candidates = _modules(build, root)
    names = {p.dir: n for n, p in candidates.items()}
    graph = module_graph(tool, root, {n: p.dir for n, p in candidates.items()}) if candidates else None
    for name, proj in candidates.items():
        deps = tuple(sorted(graph.edges.get(name, {}))) if graph else ()
        kind, why = _kind(proj, root)
        scaffold.modules.append(PlannedModule(name, proj.dir, kind, why, deps))
    scaffold.shared_paths = _shared_paths(tool, build, root, set(names))
    if graph is not None:
        scaffold.notes = [str(n) for n in graph.notes if "no build-graph dependencies" not in n.message]
    config_path = root / CONFIG_NAME
    scaffold.existing_config = config_path.exists()
    if scaffold.existing_config:
        scaffold.proposed = _missing_from(config_path, scaffold.modules)
    services = [m for m in scaffold.modules if m.kind == "service"]
    text = render_config(scaffold, project or _project_name(root))
    scaffold.files.append(PlannedFile(CONFIG_NAME, text, scaffold.existing_config))
    for module in services:
        for name, body in _templates(tool, module, build, root).items():
            rel = f"{module.path}/{name}"
            scaffold.files.append(PlannedFile(rel, body, (root / rel).exists()))
    scaffold.todo = _todo(scaffold)
    return scaffold


def write(scaffold: Scaffold, *, force: bool) -> tuple[list[str], list[str]]:
    """Write the planned files: (written, kept because they exist). Nothing is overwritten without ``force``.

    A modules.yaml that exists is kept (its proposed additions are printed instead),
    and so is every template that exists.
    """
    written, kept = [], []
    for planned in scaffold.files:
        if planned.exists and not force:
            kept.append(planned.path)
            continue
        target = scaffold.root / planned.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(planned.text, encoding="utf-8")
        written.append(planned.path)
    return written, kept


# -- modules -------------------------------------------------------------------------------------


def _modules(build: BuildGraph, root: Path) -> dict[str, Project]:
    """Projects that become modules, by unique name: each project with a build file, except the root,
    Maven aggregators and folders that only group other projects."""
    projects = [p for p in build.projects.values() if p.dir and not p.dir.startswith("../") and p.build_file]
    chosen = []
    for proj in sorted(projects, key=lambda p: p.dir):
        if proj.aggregator:
            continue
        nested = any(o.dir.startswith(proj.dir + "/") for o in projects)
        if nested and not (root / proj.dir / "src").is_dir():
            continue
        chosen.append(proj)
    short: dict[str, list[Project]] = {}
    for proj in chosen:
        short.setdefault(_short_name(proj), []).append(proj)
    names: dict[str, Project] = {}
    for name, group in short.items():
        for proj in group:
            names[name if len(group) == 1 else _safe(proj.dir.replace("/", "-"))] = proj
    return dict(sorted(names.items()))


def _short_name(proj: Project) -> str:
    """The artifactId of a Maven module, the project name (its folder's) of a Gradle project."""
    if proj.coordinates and not proj.name.startswith(":"):
        return _safe(proj.coordinates[1])
    return _safe(proj.name.rsplit(":", 1)[-1] or proj.dir.rsplit("/", 1)[-1])


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", name).strip("-._") or "module"
    return cleaned if re.match(NAME_PATTERN, cleaned) else f"m-{cleaned}"


def _kind(proj: Project, root: Path) -> tuple[str, str]:
    if proj.application:
        return "service", proj.application
    found = _main_class(root / proj.dir)
    if found:
        return "service", f"main class in {found}"
    return "library", "no application plugin or main class"


def _main_class(folder: Path) -> str | None:
    """The first source file with a ``main`` entry point (a sniff over at most :data:`MAX_SOURCES` files)."""
    seen = 0
    for sub in SOURCE_FOLDERS:
        base = folder / sub
        if not base.is_dir():
            continue
        for source in sorted(base.rglob("*")):
            if source.suffix not in (".java", ".kt", ".groovy", ".scala") or not source.is_file():
                continue
            seen += 1
            if seen > MAX_SOURCES:
                return None
            try:
                if _MAIN.search(source.read_bytes()):
                    return source.relative_to(folder).as_posix()
            except OSError:
                continue
    return None


def _shared_paths(tool: str, build: BuildGraph, root: Path, module_dirs: set[str]) -> list[str]:
    """Build files every module's build reads: a change there affects every service."""
    shared: list[str] = []
    if tool == "gradle":
        candidates = [
            "settings.gradle",
            "settings.gradle.kts",
            "build.gradle",
            "build.gradle.kts",
            "gradle.properties",
            "gradlew",
        ]
        shared.extend(c for c in candidates if (root / c).is_file())
        if (root / "gradle").is_dir():
            shared.append("gradle/**")
        shared.extend(s for s in build.shared if s.endswith("/**"))
    else:
        shared.append("pom.xml")
        for proj in build.projects.values():
            if proj.aggregator and proj.dir and proj.dir not in module_dirs and proj.build_file:
                shared.append(proj.build_file)
        if (root / ".mvn").is_dir():
            shared.append(".mvn/**")
        if (root / "mvnw").is_file():
            shared.append("mvnw")
    return list(dict.fromkeys(shared))


def _missing_from(config_path: Path, modules: Iterable[PlannedModule]) -> list[PlannedModule]:
    """Modules whose folder no module of the existing modules.yaml owns (read without validating it)."""
    from deployfw.yamlsrc import parse

    try:
        data = parse(config_path.read_text(encoding="utf-8"), CONFIG_NAME, strict=False).data
    except (InputError, OSError, UnicodeDecodeError):
        return []
    entries = data.get("modules") if isinstance(data, dict) else None
    paths = {str(v.get("path")).strip("/") for v in (entries or {}).values() if isinstance(v, dict)}
    names = set(entries or {})
    return [m for m in modules if m.path not in paths and m.name not in names]


def _project_name(root: Path) -> str:
    name = _safe(root.name)
    return name if re.match(NAME_PATTERN, name) else "app"


# -- rendering -----------------------------------------------------------------------------------


def render_config(scaffold: Scaffold, project: str) -> str:
    """modules.yaml text, with comments saying where each value came from."""
    lines = [
        "# yaml-language-server: $schema=https://deployfw.dev/schema/modules-v1.json",
        f"# Written by `deployfw init` from the {scaffold.tool.capitalize()} build. Dependencies between modules",
        f"# come from the build files on every run (graph: {scaffold.tool}); add depends_on only for what",
        "# the build does not say.",
        "version: 1",
        f"project: {project}",
        "region: us-east-1  # FILL IN: the AWS region you deploy to",
        f"graph: {scaffold.tool}",
        "shared_paths:  # build files every module's build reads",
        *(f'  - "{p}"' for p in scaffold.shared_paths),
        "",
        "defaults:",
        "  build: {backend: local}",
        "  registry: {backend: ecr}",
        "  deploy:",
        "    backend: ecs-bluegreen",
        f"    cluster: {project}  # FILL IN: your ECS cluster",
        f"    container_port: {CONTAINER_PORT}",
        "",
        "modules:",
    ]
    for module in scaffold.modules:
        lines.append(f"  {module.name}:")
        lines.append(f"    path: {module.path}")
        if module.kind == "library":
            lines.append("    kind: library")
        else:
            lines.append(f"    # service: {module.why}")
            lines.append(f"    deploy: {{taskdef: {module.path}/taskdef.json, appspec: {module.path}/appspec.yml}}")
        if module.dependencies:
            lines.append(f"    # depends on (from the build files): {', '.join(module.dependencies)}")
    return "\n".join(lines) + "\n"


def proposal(modules: Iterable[PlannedModule]) -> str:
    """The ``modules:`` entries to add to an existing modules.yaml."""
    out = []
    for module in modules:
        out.append(f"  {module.name}:")
        out.append(f"    path: {module.path}")
        if module.kind == "library":
            out.append("    kind: library")
        else:
            out.append(f"    deploy: {{taskdef: {module.path}/taskdef.json, appspec: {module.path}/appspec.yml}}")
    return "\n".join(out) + ("\n" if out else "")


def _templates(tool: str, module: PlannedModule, build: BuildGraph, root: Path) -> Mapping[str, str]:
    return {
        "buildspec.yml": _buildspec(tool, module, build, root),
        "taskdef.json": _TASKDEF,
        "appspec.yml": _APPSPEC,
    }


def _buildspec(tool: str, module: PlannedModule, build: BuildGraph, root: Path) -> str:
    boot = module.why.startswith("plugin org.springframework.boot") or "spring-boot" in module.why
    if tool == "gradle":
        wrapper = "./gradlew" if (root / "gradlew").is_file() else "gradle"
        project_path = next((p.name for p in build.projects.values() if p.dir == module.path), f":{module.name}")
        task = "bootJar" if boot else "jar"
        compile_cmd = f"{wrapper} --no-daemon {project_path}:{task} -x test"
        jars = '"$DEPLOYFW_MODULE_PATH"/build/libs/*.jar'
    else:
        wrapper = "./mvnw" if (root / "mvnw").is_file() else "mvn"
        compile_cmd = f"{wrapper} -B -q -pl {module.path} -am package -DskipTests"
        jars = '"$DEPLOYFW_MODULE_PATH"/target/*.jar'
    return f"""\
# The build of {module.name}, written by `deployfw init`: CodeBuild, a Jenkins job
# (`deployfw build {module.name}`) and deployfw's local backend all run it, with REPOSITORY_URI,
# IMAGE_TAG, IMAGE_CONTENT_TAG, DEPLOYFW_MODULE and DEPLOYFW_MODULE_PATH set.
version: 0.2

env:
  variables:
    # FILL IN: a JRE base image on disk, as `deployfw image build --base` reads it (an OCI
    # image layout folder or an image tarball), e.g. one copied from eclipse-temurin:21-jre.
    {BASE_IMAGE_VARIABLE}: /opt/base-images/jre

phases:
  build:
    commands:
      - {compile_cmd}
      - export CONTEXT=".deployfw/context/$DEPLOYFW_MODULE"
      - rm -rf "$CONTEXT" && mkdir -p "$CONTEXT"
      - |
        for jar in {jars}; do
          case "$jar" in *-plain.jar|*-sources.jar|*-javadoc.jar|*/original-*) ;; *) cp "$jar" "$CONTEXT/app.jar";; esac
        done
      - test -f "$CONTEXT/app.jar"
  post_build:
    commands:
      - >-
        deployfw image build "$CONTEXT" --base "${BASE_IMAGE_VARIABLE}" --dest /app --workdir /app
        --entrypoint '["java", "-jar", "/app/app.jar"]' --port {CONTAINER_PORT}
        --label "org.opencontainers.image.revision=$IMAGE_TAG"
        --push "$REPOSITORY_URI:$IMAGE_TAG" --tag "$IMAGE_CONTENT_TAG"
"""


_TASKDEF = """\
{
  "family": "${FAMILY}",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "512",
  "memory": "1024",
  "executionRoleArn": "arn:aws:iam::${ACCOUNT_ID}:role/ecsTaskExecutionRole",
  "containerDefinitions": [
    {
      "name": "${MODULE}",
      "image": "<IMAGE1_NAME>",
      "essential": true,
      "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
      "logConfiguration": {
        "logDriver": "awslogs",
        "options": {
          "awslogs-group": "/ecs/${MODULE}",
          "awslogs-region": "${REGION}",
          "awslogs-stream-prefix": "${MODULE}"
        }
      }
    }
  ]
}
"""

_APPSPEC = """\
# CodeDeploy ECS appspec written by `deployfw init`: <TASK_DEFINITION> becomes the registered
# task definition, ${MODULE} the module's name (the container name in taskdef.json).
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: <TASK_DEFINITION>
        LoadBalancerInfo:
          ContainerName: ${MODULE}
          ContainerPort: 8080
"""


def _todo(scaffold: Scaffold) -> list[str]:
    todo = [
        f"{CONFIG_NAME}: region (us-east-1 written) and defaults.deploy.cluster, the ECS cluster the services run in",
    ]
    if any(m.kind == "service" for m in scaffold.modules):
        todo += [
            f"each service's buildspec.yml: {BASE_IMAGE_VARIABLE}, a JRE base image on disk (OCI layout or tarball)",
            "each service's taskdef.json: executionRoleArn (role name), cpu/memory, container port"
            f" {CONTAINER_PORT}, environment and secrets",
            "AWS: the ECS services, CodeDeploy applications and deployment groups the services deploy to"
            " (`deployfw iam policy` and `deployfw doctor` help)",
        ]
    return todo
