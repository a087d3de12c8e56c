"""``deployfw image build`` through click's CliRunner, pushing to moto in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from deployfw.errors import ExternalError, InputError
from deployfw.image import ImageSpec, build_image
from deployfw.image.cli import image
from deployfw.image.refs import parse_repository


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(image, ["build", *args], env=env, catch_exceptions=True)


def test_build_prints_the_digest_and_writes_a_layout(app_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "layout"
    result = run(
        str(app_dir),
        "--cmd",
        '["python", "main.py"]',
        "--env",
        "A=1",
        "--port",
        "8080",
        "--label",
        "team=shop",
        "--workdir",
        "/app",
        "--dest",
        "/app",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    expected = build_image(
        app_dir,
        ImageSpec(
            cmd=("python", "main.py"),
            env={"A": "1"},
            ports=("8080/tcp",),
            labels={"team": "shop"},
            workdir="/app",
            destination="/app",
        ),
    )
    assert result.stdout.splitlines() == [expected.digest]
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == expected.digest


def test_source_date_epoch_is_honoured(app_dir: Path) -> None:
    plain = run(str(app_dir)).stdout
    dated = run(str(app_dir), env={"SOURCE_DATE_EPOCH": "1700000000"}).stdout
    assert plain != dated
    assert run(str(app_dir), env={"SOURCE_DATE_EPOCH": "1700000000"}).stdout == dated


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "context directory not found"),
        (["{app}", "--env", "NOEQUALS"], "expected KEY=VALUE"),
        (["{app}", "--label", "=v"], "expected KEY=VALUE"),
        (["{app}", "--port", "http"], "port"),
        (["{app}", "--cmd", "[1, 2]"], "JSON array of strings"),
        (["{app}", "--base", "{missing}"], "base image not found"),
        (["{app}", "--image-detail", "x.json"], "needs --push"),
        (["{app}", "--push", "quay.io/x/y:1"], "not an ECR registry"),
        (["{app}", "--push", "Bad Name"], "not a valid repository name"),
    ],
)
def test_bad_input_is_input_error(app_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    filled = [a.format(app=app_dir, missing=tmp_path / "missing") for a in args]
    result = run(*filled)
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)


def test_push_with_buildspec_environment(app_dir: Path, tmp_path: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="image-api")
    detail = tmp_path / "out" / "imageDetail.json"
    env = {"IMAGE_REPO_NAME": "image-api", "IMAGE_TAG": "abc123"}
    result = run(str(app_dir), "--tag", "latest", "--image-detail", str(detail), "--push", env=env)
    assert result.exit_code == 0, result.output
    digest, image_uri = result.stdout.splitlines()
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/image-api"
    assert image_uri == f"{uri}@{digest}"
    assert json.loads(detail.read_text()) == {"ImageURI": image_uri}
    tags = ecr.describe_images(repositoryName="image-api")["imageDetails"][0]["imageTags"]
    assert set(tags) == {"abc123", "latest"}


def test_push_to_explicit_uri_and_immutable_refusal(app_dir: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="team/api", imageTagMutability="IMMUTABLE")
    target = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api:v1"
    assert run(str(app_dir), "--push", target).exit_code == 0
    result = run(str(app_dir), "--env", "X=1", "--push", target)
    assert isinstance(result.exception, ExternalError)
    assert "IMMUTABLE" in str(result.exception)


def test_parse_repository() -> None:
    assert parse_repository("image-api").name == "image-api"
    ref = parse_repository("123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/a/b:1.0")
    assert (ref.registry_id, ref.name, ref.tag) == ("123456789012", "a/b", "1.0")
