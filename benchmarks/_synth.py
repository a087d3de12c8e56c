"""Synthetic multi-module repositories for the detect benchmark, with their ground truth.

The repository is written with one ``git fast-import`` stream (two commits:
base with every file, head with the change) and then checked out, because
writing 200k files and running ``git add`` on them would take minutes. The
answer detect must give is computed here independently of deployfw (plain
breadth-first search over the generated ``depends_on``), so the benchmark also
checks correctness at scale.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

FILES_PER_MODULE = 100
CHANGED_SERVICES = 60
CHANGED_FILES = 2_000
CHAIN = 5  # libraries come in chains: lib-01 depends on lib-00, ... lib-04 on lib-03
_IDENT = "synth <synth@deployfw.invalid> 1700000000 +0000"
_FORMAT = 3  # bump when the generated layout changes, so stale caches are rebuilt


@dataclass(frozen=True)
class Synthetic:
    """A generated repository: where it is, the range to compare, and the right answer."""

    path: Path
    base: str
    head: str
    modules: int
    files: int
    changed_files: int
    expected: frozenset[str]


def _names(services: int, libraries: int) -> tuple[list[str], list[str]]:
    return [f"svc-{i:04d}" for i in range(services)], [f"lib-{i:02d}" for i in range(libraries)]


def _module_files(name: str, folder: str, deps: list[str], count: int) -> dict[str, str]:
    """``count`` files of one module: Java-ish sources plus the manifests Nx and Turborepo read."""
    package = name.replace("-", "")
    files = {
        f"{folder}/package.json": json.dumps(
            {"name": name, "version": "0.0.0", "private": True, "dependencies": dict.fromkeys(deps, "*")}
        )
        + "\n",
        f"{folder}/project.json": json.dumps({"name": name, "implicitDependencies": deps}) + "\n",
        f"{folder}/buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands: [./gradlew build]\n",
    }
    for index in range(count - len(files)):
        path = f"{folder}/src/main/java/com/shop/{package}/p{index % 10}/C{index}.java"
        files[path] = f"package com.shop.{package}.p{index % 10};\nclass C{index} {{ int v = {index}; }}\n"
    return files


def _config(services: list[str], libraries: list[str], deps: dict[str, list[str]]) -> str:
    lines = [
        "version: 1",
        "project: synth",
        "region: ap-northeast-2",
        'shared_paths: [build.gradle, settings.gradle, "gradle/**"]',
        "defaults:",
        "  build: {backend: local}",
        "  registry: {backend: ecr}",
        "  deploy: {backend: ecs-rolling, cluster: synth}",
        "modules:",
    ]
    for name in libraries:
        lines.append(f"  {name}: {{path: libs/{name}, kind: library, depends_on: [{', '.join(deps[name])}]}}")
    for name in services:
        lines.append(f"  {name}: {{path: services/{name}, depends_on: [{', '.join(deps[name])}]}}")
    return "\n".join(lines) + "\n"


def _expected(direct: set[str], deps: dict[str, list[str]]) -> frozenset[str]:
    """Ground truth: the directly changed modules and everything depending on them, transitively."""
    reverse: dict[str, list[str]] = {}
    for name, targets in deps.items():
        for target in targets:
            reverse.setdefault(target, []).append(name)
    seen, queue = set(direct), list(direct)
    while queue:
        for child in reverse.get(queue.pop(), []):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return frozenset(seen)


def _blob(path: str, content: str) -> bytes:
    data = content.encode()
    return b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)


def _commit(ref: str, message: str, body: list[bytes], parent: bool) -> bytes:
    header = b"commit %s\nmark :%d\ncommitter %s\ndata %d\n%s\n" % (
        ref.encode(),
        2 if parent else 1,
        _IDENT.encode(),
        len(message),
        message.encode(),
    )
    return header + (b"from :1\n" if parent else b"") + b"".join(body) + b"\n"


def generate(path: Path, modules: int, *, seed: int = 7) -> Synthetic:
    """Write a repository with ``modules`` modules (services plus libraries) under ``path``."""
    rng = random.Random(seed)
    library_count = max(CHAIN, (modules // 100) // CHAIN * CHAIN)
    services, libraries = _names(modules - library_count, library_count)
    deps: dict[str, list[str]] = {}
    for index, name in enumerate(libraries):
        deps[name] = [libraries[index - 1]] if index % CHAIN else []
    for name in services:
        deps[name] = sorted(rng.sample(libraries, rng.choice((1, 2)))) if rng.random() < 0.3 else []

    files: dict[str, str] = {
        "modules.yaml": _config(services, libraries, deps),
        "build.gradle": "allprojects { repositories { mavenCentral() } }\n",
        "settings.gradle": "rootProject.name = 'synth'\n",
        "gradle/wrapper/gradle-wrapper.properties": "distributionUrl=gradle-8.10-bin.zip\n",
        "README.md": "synthetic repository for benchmarks/detect\n",
        ".gitignore": "node_modules\n.nx\n.turbo\n",
        "nx.json": json.dumps({"$schema": "./node_modules/nx/schemas/nx-schema.json"}) + "\n",
        "turbo.json": json.dumps({"$schema": "https://turbo.build/schema.json", "tasks": {"build": {}}}) + "\n",
        "package.json": json.dumps(
            {
                "name": "synth",
                "private": True,
                "workspaces": ["services/*", "libs/*"],
                "packageManager": "npm@10.8.2",
            }
        )
        + "\n",
    }
    sources_of: dict[str, list[str]] = {}
    for name in [*libraries, *services]:
        folder = f"libs/{name}" if name in deps and not name.startswith("svc-") else f"services/{name}"
        module_files = _module_files(name, folder, deps[name], FILES_PER_MODULE)
        sources_of[name] = sorted(p for p in module_files if "/src/" in p)
        files.update(module_files)

    # The head change: ~2,000 files across CHANGED_SERVICES services and one library in the
    # middle of a chain (so its dependents include libraries and, through them, services).
    changed_lib = libraries[2]
    changed_services = rng.sample(services, CHANGED_SERVICES)
    per_module = CHANGED_FILES // (CHANGED_SERVICES + 1)
    head_body: list[bytes] = []
    changed = 0
    for name in [*changed_services, changed_lib]:
        folder = f"libs/{name}" if name in libraries else f"services/{name}"
        sources = sources_of[name]
        for number, source in enumerate(rng.sample(sources, per_module - 2)):
            if number % 10 == 9:
                head_body.append(b"D %s\n" % source.encode())  # deletions count too
            else:
                head_body.append(_blob(source, files[source] + "// changed\n"))
        head_body.append(_blob(f"{folder}/src/main/java/New1.java", "class New1 {}\n"))
        head_body.append(_blob(f"{folder}/src/main/java/New2.java", "class New2 {}\n"))
        changed += per_module
    for index in range(CHANGED_FILES - changed):  # the rest: docs nobody owns
        head_body.append(_blob(f"docs/notes-{index}.md", "note\n"))
        changed += 1

    base_body = [_blob(p, c) for p, c in sorted(files.items())]
    stream = _commit("refs/heads/main", "base", base_body, False) + _commit("refs/heads/main", "head", head_body, True)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    repo = git.Repo.init(path, initial_branch="main")
    with tempfile.TemporaryFile() as handle:
        handle.write(stream)
        handle.seek(0)
        repo.git.execute(["git", "fast-import", "--quiet"], istream=handle)
    # Check out only what the tools read from the working tree (modules.yaml and the root files,
    # each module's package.json/project.json, so its folder exists): writing all 200k files
    # costs minutes of disk I/O and changes nothing that is measured, which is commit to commit.
    sparse = "/*\n!/*/\npackage.json\nproject.json\n/gradle/\n"
    repo.git.execute(["git", "config", "core.sparseCheckout", "true"])
    (path / ".git" / "info").mkdir(exist_ok=True)
    (path / ".git" / "info" / "sparse-checkout").write_text(sparse, encoding="utf-8")
    repo.git.execute(["git", "reset", "--hard", "--quiet", "main"])
    base = repo.git.rev_parse("main~1")
    head = repo.git.rev_parse("main")
    repo.create_tag("bench-base", ref=base)
    synthetic = Synthetic(
        path=path,
        base=base,
        head=head,
        modules=modules,
        files=len(files),
        changed_files=changed,
        expected=_expected({*changed_services, changed_lib}, deps),
    )
    (path / ".git" / "synth.json").write_text(
        json.dumps(
            {**synthetic.__dict__, "path": str(path), "expected": sorted(synthetic.expected), "format": _FORMAT}
        ),
        encoding="utf-8",
    )
    return synthetic


def cached(cache: Path, modules: int) -> Synthetic:
    """The repository for ``modules`` from ``cache``, generated on first use."""
    path = cache / f"repo-{modules}"
    meta = path / ".git" / "synth.json"
    if meta.is_file():
        data = json.loads(meta.read_text(encoding="utf-8"))
        if data.get("format") == _FORMAT:
            data.pop("format")
            return Synthetic(**{**data, "path": path, "expected": frozenset(data["expected"])})
    return generate(path, modules)
