"""A corpus of malformed inputs: each is exit 2, one clear message, and not one mutating AWS call.

The table below is the corpus: configs, templates, buildspecs and CLI arguments, each
broken in one way an operator really breaks them. Every case runs ``deployfw run``
(in-process, for speed) against the suite's live sandbox with everything else valid, so
a case that slipped past validation would deploy - and the request log would show it.
Expected fragments are what makes a message *clear*: the file, the key or the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from reliability_kit import Repo, figure, git

from deployfw.testing import SandboxProcess, mutating, run_cli

USAGE = re.compile(r"^(Usage: |Try '|Error: |\s*$)")
Edit = Callable[[str], str]


@dataclass(frozen=True)
class Case:
    """One malformed input: files to change (path -> edit of its text), extra argv, expected message fragments."""

    id: str
    kind: str
    edits: dict[str, Edit] = field(default_factory=dict)
    argv: tuple[str, ...] = ("run", "--all")
    expect: tuple[str, ...] = ()


def put(text: str) -> Edit:
    return lambda _old: text


def sub(old: str, new: str, count: int = 1) -> Edit:
    def edit(text: str) -> str:
        assert old in text, f"corpus edit no longer applies: {old!r} not found"
        return text.replace(old, new, count)

    return edit


def chain(*edits: Edit) -> Edit:
    def edit(text: str) -> str:
        for one in edits:
            text = one(text)
        return text

    return edit


def resub(pattern: str, new: str) -> Edit:
    def edit(text: str) -> str:
        changed, found = re.subn(pattern, new, text, count=1, flags=re.S)
        assert found, f"corpus edit no longer applies: {pattern!r} not found"
        return changed

    return edit


def append(extra: str) -> Edit:
    return lambda text: text.rstrip("\n") + "\n" + extra


M = "modules.yaml"
USER = "examples/shop/services/user-api"
BS = f"{USER}/buildspec.yml"
ORDER_BS = "examples/shop/services/order-api/buildspec.yml"
PRODUCT = "  product-api:\n    path: examples/shop/services/product-api\n"

CORPUS: tuple[Case, ...] = (
    # -- modules.yaml -------------------------------------------------------------------------------
    Case("yaml-unclosed-bracket", "config", {M: sub(PRODUCT, PRODUCT + "    depends_on: [common\n")}, expect=(M,)),
    Case("yaml-bad-indent", "config", {M: sub("    kind: library", "      kind: library\n   oops: 1")}, expect=(M,)),
    Case("yaml-tab", "config", {M: sub("    kind: library", "\tkind: library")}, expect=(M,)),
    Case("top-level-list", "config", {M: put("- version: 1\n")}, expect=(M,)),
    Case("empty-file", "config", {M: put("")}, expect=(M,)),
    Case("version-2", "config", {M: sub("version: 1", "version: 2")}, expect=(M, "version")),
    Case("version-string", "config", {M: sub("version: 1", "version: one")}, expect=(M, "version")),
    Case("unknown-top-key", "config", {M: append("projet: shop\n")}, expect=(M, "projet")),
    Case(
        "unknown-module-key",
        "config",
        {M: sub("    kind: library", "    kind: library\n    dependson: [x]")},
        expect=(M, "dependson"),
    ),
    Case("path-wrong-type", "config", {M: sub("path: examples/shop/libs/common", "path: 5")}, expect=(M, "path")),
    Case(
        "depends-on-wrong-type", "config", {M: sub(PRODUCT, PRODUCT + "    depends_on: 5\n")}, expect=(M, "depends_on")
    ),
    Case(
        "depends-on-unknown",
        "config",
        {M: sub(PRODUCT, PRODUCT + "    depends_on: [commons]\n")},
        expect=(M, "commons"),
    ),
    Case(
        "dependency-cycle",
        "config",
        {
            M: chain(
                sub(PRODUCT, PRODUCT + "    depends_on: [payment-api]\n"),
                sub("services/payment-api\n", "services/payment-api\n    depends_on: [product-api]\n"),
            )
        },
        expect=("cycle",),
    ),
    Case("graph-unknown-tool", "config", {M: sub("graph: gradle", "graph: bazel")}, expect=(M, "graph", "bazel")),
    Case(
        "graph-cycle-through-build-files",
        "config",
        {"examples/shop/libs/common/build.gradle": put("dependencies { api project(':services:user-api') }\n")},
        expect=(M, "cycle", "examples/shop/libs/common/build.gradle:1"),
    ),
    Case(
        "path-missing",
        "config",
        {M: sub("path: examples/shop/libs/common", "path: examples/shop/libs/nope")},
        expect=(M, "examples/shop/libs/nope"),
    ),
    Case(
        "path-escapes-repo",
        "config",
        {M: sub("path: examples/shop/libs/common", "path: ../outside")},
        expect=(M, "../outside"),
    ),
    Case("path-absolute", "config", {M: sub("path: examples/shop/libs/common", "path: /etc")}, expect=(M, "/etc")),
    Case("kind-unknown", "config", {M: sub("kind: library", "kind: lib")}, expect=(M, "lib")),
    Case(
        "build-backend-unknown",
        "config",
        {M: sub("build: {backend: local}", "build: {backend: gradle}")},
        expect=("gradle",),
    ),
    Case(
        "deploy-backend-unknown",
        "config",
        {M: sub("deploy: {backend: ecs-rolling}", "deploy: {backend: ecs-roll}")},
        expect=("ecs-roll",),
    ),
    Case(
        "registry-backend-unknown",
        "config",
        {M: sub("registry: {backend: ecr}", "registry: {backend: gcr}")},
        expect=("gcr",),
    ),
    Case(
        "deploy-unknown-key",
        "config",
        {M: sub("    cluster: shop\n", "    clustr: shop\n    cluster: shop\n")},
        expect=("clustr",),
    ),
    Case("deploy-wrong-type", "config", {M: sub("    cluster: shop\n", "    cluster: [shop]\n")}, expect=("cluster",)),
    Case(
        "build-project-wrong-type",
        "config",
        {M: sub("project: order-api-build", "project: {name: order-api-build}")},
        expect=("project",),
    ),
    Case(
        "nlb-linear-config",
        "config",
        {
            M: sub(
                "deploy: {backend: ecs-nlb}",
                "deploy: {backend: ecs-nlb, deployment_config: CodeDeployDefault.ECSLinear10PercentEvery1Minutes}",
            )
        },
        expect=("ECSAllAtOnce",),
    ),
    Case(
        "deployment-config-unknown",
        "config",
        {
            M: sub(
                "deployment_config: CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
                "deployment_config: CodeDeployDefault.ECSSometimes",
            )
        },
        expect=("ECSSometimes",),
    ),
    Case(
        "shared-paths-wrong-type",
        "config",
        {M: resub(r"shared_paths:\n(  - [^\n]*\n)+", "shared_paths: 7\n")},
        expect=(M, "shared_paths"),
    ),
    Case("env-unknown", "config", argv=("-e", "staging", "run", "--all"), expect=("staging",)),
    Case(
        "env-overlay-unknown-key",
        "config",
        {M: sub("      deploy: {cluster: shop-prod}", "      deploy: {clustr: shop-prod}")},
        argv=("-e", "prod", "run", "--all"),
        expect=("clustr",),
    ),
    Case(
        "execution-mode-unknown",
        "config",
        {M: sub("version: 1", "version: 1\nexecution_mode: sometimes")},
        expect=("sometimes",),
    ),
    Case("state-backend-unknown", "config", {M: append("state: {backend: etcd}\n")}, expect=("etcd",)),
    Case(
        "library-with-deploy",
        "config",
        {M: sub("    kind: library", "    kind: library\n    deploy: {cluster: x}")},
        expect=("common",),
    ),
    # -- templates ------------------------------------------------------------------------------------
    Case(
        "taskdef-bad-json", "template", {"taskdef.json": sub('"cpu": "256",', '"cpu": "256"')}, expect=("taskdef.json",)
    ),
    Case(
        "taskdef-container-name-mismatch",
        "template",
        {"taskdef.json": sub('"name": "${MODULE}"', '"name": "app"')},
        expect=("appspec.yml", "app"),
    ),
    Case(
        "taskdef-unknown-placeholder",
        "template",
        {"taskdef.json": sub('"memory": "512"', '"memory": "${MEMORY}"')},
        expect=("taskdef.json", "MEMORY"),
    ),
    Case(
        "taskdef-no-containers",
        "template",
        {"taskdef.json": resub(r'"containerDefinitions": \[.*\]\n', '"containerDefinitions": []\n')},
        expect=("taskdef.json", "containerDefinitions"),
    ),
    Case(
        "taskdef-missing-file",
        "template",
        {M: sub("taskdef: taskdef.json", "taskdef: nope/taskdef.json")},
        expect=("nope/taskdef.json",),
    ),
    Case(
        "appspec-bad-yaml", "template", {"appspec.yml": sub("version: 0.0", "version: [0.0")}, expect=("appspec.yml",)
    ),
    Case("appspec-no-resources", "template", {"appspec.yml": sub("Resources:", "Resourcez:")}, expect=("appspec.yml",)),
    Case(
        "appspec-port-mismatch",
        "template",
        {"appspec.yml": sub("ContainerPort: 8080", "ContainerPort: 9090")},
        expect=("appspec.yml", "9090"),
    ),
    Case(
        "appspec-unknown-placeholder",
        "template",
        {"appspec.yml": sub("${MODULE}", "${SERVICE_NAME}")},
        expect=("appspec.yml", "SERVICE_NAME"),
    ),
    # -- buildspecs -----------------------------------------------------------------------------------
    Case("buildspec-version", "buildspec", {BS: sub("version: 0.2", "version: 0.3")}, expect=(BS, "version")),
    Case("buildspec-unknown-phase", "buildspec", {BS: sub("  post_build:", "  deploy:")}, expect=(BS, "deploy")),
    Case(
        "buildspec-commands-not-list",
        "buildspec",
        {BS: resub(r"  post_build:\n    commands:\n.*\Z", "  post_build:\n    commands: 5\n")},
        expect=(BS, "commands"),
    ),
    Case("buildspec-bad-yaml", "buildspec", {BS: sub("phases:", "phases: [")}, expect=(BS,)),
    Case("buildspec-no-phases", "buildspec", {BS: resub(r"phases:\n.*\Z", "")}, expect=(BS, "phases")),
    Case(
        "buildspec-codebuild-version",
        "buildspec",
        {ORDER_BS: sub("version: 0.2", "version: 2")},
        expect=(ORDER_BS, "version"),
    ),
    # -- CLI arguments --------------------------------------------------------------------------------
    Case("module-unknown", "cli", argv=("run", "-m", "users-api"), expect=("users-api",)),
    Case("stop-after-unknown", "cli", argv=("run", "--all", "--stop-after", "release"), expect=("release",)),
    Case(
        "artifacts-with-stop-after-build",
        "cli",
        argv=("run", "--all", "--stop-after", "build", "--artifacts-dir", "out"),
        expect=("--artifacts-dir",),
    ),
    Case("option-unknown", "cli", argv=("run", "--all", "--frobnicate"), expect=("--frobnicate",)),
    Case("max-parallel-zero", "cli", argv=("run", "--all", "--max-parallel", "0"), expect=("--max-parallel",)),
    Case("max-parallel-text", "cli", argv=("run", "--all", "--max-parallel", "many"), expect=("--max-parallel",)),
    Case("mode-unknown", "cli", argv=("run", "--all", "--mode", "sometimes"), expect=("--mode",)),
    Case("base-unknown-revision", "cli", argv=("run", "--base", "no-such-rev"), expect=("no-such-rev",)),
    Case("config-file-missing", "cli", argv=("-c", "nope.yaml", "run", "--all"), expect=("nope.yaml",)),
)


@pytest.fixture(scope="module")
def corpus_repo(warmed: Repo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A committed copy of the warmed example; each case edits its working tree and is reverted after."""
    path = Repo.create(tmp_path_factory.mktemp("corpus") / "repo").path
    yield path


_tally: dict[str, int] = {}


def _place(line: str) -> str:
    """``modules.yaml:20`` of ``deployfw: error: modules.yaml:20: defaults.deploy.x: ...``; the message if no file."""
    message = line.removeprefix("deployfw: error:").strip()
    head = message.split(": ", 1)[0]
    return head if re.fullmatch(r"[\w./-]+\.(ya?ml|json)(:\d+)?", head) else message


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_malformed_input_exits_2_with_one_clear_message_and_changes_nothing(
    case: Case, corpus_repo: Path, rel_sandbox: SandboxProcess
) -> None:
    for rel, edit in case.edits.items():
        target = corpus_repo / rel
        target.write_text(edit(target.read_text()))
    rel_sandbox.clear_requests()
    try:
        result = run_cli(rel_sandbox.run_env(), corpus_repo, *case.argv)
    finally:
        git(corpus_repo, "checkout", "--quiet", "--", ".")
        git(corpus_repo, "clean", "-fdq")
    code, stdout, stderr = result.code, result.stdout, result.stderr
    changed = mutating(rel_sandbox.requests())
    _tally[case.kind] = _tally.get(case.kind, 0) + 1
    lines = [line for line in stderr.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("deployfw: error:")]
    kinds = {f"{k}_cases": v for k, v in sorted(_tally.items()) if not k.startswith("_")}
    figure("malformed inputs", cases=len(CORPUS), **kinds, passed=_tally.get("_passed", 0))
    assert code == 2, f"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert changed == [], f"mutating AWS calls: {changed}"
    assert lines, "no message"
    assert all(line.startswith("deployfw: error:") or USAGE.match(line) for line in lines), stderr
    # One problem, one place: several lines only when one defect hits several modules or backends
    # (a shared template, a defaults section), each naming the same file and line.
    places = {_place(line) for line in ours}
    assert len(places) == 1 or (not ours and any(line.startswith("Error: ") for line in lines)), stderr
    for fragment in case.expect:
        assert fragment in stderr, f"{fragment!r} not in the message:\n{stderr}"
    _tally["_passed"] = _tally.get("_passed", 0) + 1
    figure("malformed inputs", passed=_tally["_passed"], mutating_calls=0)
