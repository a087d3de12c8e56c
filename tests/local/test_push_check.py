"""Preflight refuses a buildspec that can never push the content tag, and only such a buildspec."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deployfw.builds.pushcheck import content_tag_problem
from deployfw.buildspec import load_buildspec
from deployfw.config import Config
from deployfw.testing import GitRepoBuilder
from deployfw_local.backend import LocalBuild

REPOSITORY = Path(__file__).resolve().parents[2]


def yaml_string(command: str) -> str:
    return "'" + command.replace("'", "''") + "'"


def build_spec(*commands: str, env: str = "") -> object:
    lines = "".join(f"      - {yaml_string(c)}\n" for c in commands)
    text = (f"version: 0.2\n{env}phases:\n  install:\n    commands:\n      - echo setting up\n"
            f"  build:\n    commands:\n{lines}")  # fmt: skip
    return load_buildspec(text, "svc/buildspec.yml")


@pytest.mark.parametrize(
    "commands",
    [
        ['deployfw image build ctx --push "$REPOSITORY_URI:$IMAGE_TAG"'],  # the classic: --tag left out
        ['"$DEPLOYFW" image build ctx --push'],  # --push alone pushes $IMAGE_TAG only
        ['"${DEPLOYFW:-deployfw}" image build ctx --push "$REPOSITORY_URI:$IMAGE_TAG"'],
        ["docker build -t app . && docker tag app $REPOSITORY_URI:$IMAGE_TAG",
         "docker push $REPOSITORY_URI:$IMAGE_TAG"],
        ["mkdir -p out; cp -R app out/ && X=1 docker push repo:latest"],
    ],
)
def test_refused_when_nothing_can_push_the_content_tag(commands: list[str]) -> None:
    problem = content_tag_problem(build_spec(*commands))  # type: ignore[arg-type]
    assert problem is not None
    assert (problem.file, problem.key, problem.line) == ("svc/buildspec.yml", "phases.build", 6)
    assert '--tag "$IMAGE_CONTENT_TAG"' in problem.message


@pytest.mark.parametrize(
    ("commands", "env"),
    [
        (['deployfw image build ctx --push "$REPOSITORY_URI:$IMAGE_TAG" --tag "$IMAGE_CONTENT_TAG"'], ""),
        (["docker push $REPOSITORY_URI:${IMAGE_CONTENT_TAG}"], ""),
        (["./build.sh"], ""),  # a script may read IMAGE_CONTENT_TAG from its environment
        (["./gradlew jib"], ""),  # Jib reads tags from the build, which may read the variable
        (["make push"], ""),
        (["deployfw bundle build out --push"], ""),  # not `deployfw image`: may take the tag from the environment
        (['echo "$(./push.sh)"'], ""),  # a command substitution runs a program of its own
        (["for t in a b; do docker push repo:$t; done"], ""),
        (['docker push "repo:$TAGS"'], "env:\n  variables:\n    TAGS: $IMAGE_CONTENT_TAG\n"),
    ],
)
def test_not_refused_when_the_tag_may_be_pushed(commands: list[str], env: str) -> None:
    assert content_tag_problem(build_spec(*commands, env=env)) is None  # type: ignore[arg-type]


def test_the_shipped_buildspecs_pass() -> None:
    shipped = [*sorted((REPOSITORY / "examples").glob("*/services/*/buildspec.yml")), REPOSITORY / "buildspec.yml"]
    assert len(shipped) >= 5
    for path in shipped:
        assert content_tag_problem(load_buildspec(path.read_text(), str(path))) is None, path


def test_preflight_reports_it_before_anything_runs(
    shop: GitRepoBuilder, loader: Callable[..., Config], make_job: Callable[..., object]
) -> None:
    no_tag = ("version: 0.2\nphases:\n  build:\n    commands:\n"
              '      - deployfw image build app --push "$REPOSITORY_URI"\n')
    shop.commit({"services/other/buildspec.yml": no_tag})
    config = loader(shop.path)
    job, _ = make_job(config, "other", shop.head)
    [problem] = LocalBuild(job.ctx).preflight(config.modules["other"], config)  # type: ignore[attr-defined]
    assert (problem.file, problem.line, problem.key) == ("services/other/buildspec.yml", 3, "phases.build")
    assert LocalBuild(job.ctx).preflight(config.modules["api"], config) == []  # type: ignore[attr-defined]


def test_a_run_that_stops_after_the_build_may_push_nothing(shop: GitRepoBuilder) -> None:
    from deployfw.testing import run_cli, terminal_env

    build_only = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out && cp -R services out/\n"
    shop.commit({"services/other/buildspec.yml": build_only})

    pushing = run_cli(terminal_env(), shop.path, "plan", "-m", "other", "--stop-after", "push")
    building = run_cli(terminal_env(), shop.path, "plan", "-m", "other", "--stop-after", "build")

    assert pushing.code == 2 and 'no command pushes the image under "$IMAGE_CONTENT_TAG"' in pushing.stderr
    assert building.code == 0, building.output
