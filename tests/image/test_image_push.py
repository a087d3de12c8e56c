"""Pushing through ECR's layer-upload API, against moto in-process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployfw.aws.clients import Aws
from deployfw.errors import ExternalError
from deployfw.image import ImageSpec, PushResult, build_image, push_image, write_oci_layout


def aws_with(client: Any, sleep: Any = None) -> Aws:
    """deployfw's AWS boundary (its one retry policy) around ``client``."""
    return Aws("us-east-1", clients={"ecr": client}, **({"sleep": sleep} if sleep else {}))


class Recording:
    """Delegates to a real client, records calls, and can shrink ECR's partSize."""

    def __init__(self, client: Any, part_size: int | None = None) -> None:
        self.client = client
        self.part_size = part_size
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            answer = method(**kwargs)
            if name == "initiate_layer_upload" and self.part_size:
                answer = {**answer, "partSize": self.part_size}
            return answer

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def test_push_uploads_layers_and_tags(app_dir: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="image-api")
    image = build_image(app_dir, ImageSpec(cmd=("python", "main.py")))
    client = Recording(ecr)

    result = push_image(image, aws_with(client), "image-api", ["abc123", "content-1", "abc123"])

    assert isinstance(result, PushResult)
    assert result.digest == "sha256:" + hashlib.sha256(image.manifest).hexdigest()
    put = [kw for name, kw in client.calls if name == "put_image"]
    assert [kw["imageTag"] for kw in put] == ["abc123", "content-1"]
    for kw in put:  # the digest is of exactly the bytes we sent
        sent = kw["imageManifest"].encode()
        assert "sha256:" + hashlib.sha256(sent).hexdigest() == result.digest == kw["imageDigest"]
        assert kw["imageManifestMediaType"] == image.media_type
    assert result.repository_uri == "123456789012.dkr.ecr.us-east-1.amazonaws.com/image-api"
    assert result.image_uri == f"{result.repository_uri}@{result.digest}"
    assert (result.layers_uploaded, result.layers_skipped) == (1, 0)
    assert result.tags == ("abc123", "content-1")

    check = ecr.batch_check_layer_availability(repositoryName="image-api", layerDigests=[b.digest for b in image.blobs])
    assert {layer["layerDigest"] for layer in check["layers"]} == {b.digest for b in image.blobs}
    assert check["failures"] == []
    for tag in ("abc123", "content-1"):
        (detail,) = ecr.describe_images(repositoryName="image-api", imageIds=[{"imageTag": tag}])["imageDetails"]
        assert set(detail["imageTags"]) == {"abc123", "content-1"}
        got = ecr.batch_get_image(repositoryName="image-api", imageIds=[{"imageTag": tag}])
        assert got["images"][0]["imageManifest"].encode() == image.manifest


def test_second_push_skips_existing_layers(app_dir: Path, ecr: Any, tmp_path: Path) -> None:
    ecr.create_repository(repositoryName="svc")
    image = build_image(app_dir, ImageSpec())
    push_image(image, aws_with(ecr), "svc", ["one"])
    client = Recording(ecr)
    again = push_image(image, aws_with(client), "svc", ["one", "two"])
    assert (again.layers_uploaded, again.layers_skipped) == (0, 1)
    assert "initiate_layer_upload" not in client.names()

    # a new image on the same base re-uses the base layers, uploads only its own layer
    (tmp_path / "ctx2").mkdir()
    (tmp_path / "ctx2" / "x").write_text("x")
    base = write_oci_layout(image, tmp_path / "base")
    child = build_image(tmp_path / "ctx2", ImageSpec(base=base))
    client = Recording(ecr)
    result = push_image(child, aws_with(client), "svc", ["child"])
    assert (result.layers_uploaded, result.layers_skipped) == (1, 1)
    assert client.names().count("complete_layer_upload") == 2  # own layer + config


def test_parts_follow_part_size_with_inclusive_ranges(tmp_path: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="big")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "blob.bin").write_bytes(hashlib.sha512(b"seed").digest() * 4000)  # ~256 KB, not compressible much
    (ctx / "noise.bin").write_bytes(b"".join(hashlib.sha256(bytes([i % 256, i // 256])).digest() for i in range(5000)))
    image = build_image(ctx, ImageSpec())
    layer = image.layers[0]
    client = Recording(ecr, part_size=50_000)
    push_image(image, aws_with(client), "big", ["t"])
    parts = [kw for name, kw in client.calls if name == "upload_layer_part"]
    layer_parts = [p for p in parts if p["uploadId"] == parts[0]["uploadId"]]
    assert len(layer_parts) == -(-layer.size // 50_000) > 1
    expected_first = 0
    for part in layer_parts:
        assert part["partFirstByte"] == expected_first
        assert part["partLastByte"] - part["partFirstByte"] + 1 == len(part["layerPartBlob"])
        assert len(part["layerPartBlob"]) <= 50_000
        expected_first = part["partLastByte"] + 1
    assert expected_first == layer.size
    completes = [kw for name, kw in client.calls if name == "complete_layer_upload"]
    assert completes[0]["layerDigests"] == [layer.digest]
    check = ecr.batch_check_layer_availability(repositoryName="big", layerDigests=[layer.digest])
    assert check["layers"][0]["layerSize"] == layer.size


def test_immutable_repository(app_dir: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="locked", imageTagMutability="IMMUTABLE")
    first = build_image(app_dir, ImageSpec())
    push_image(first, aws_with(ecr), "locked", ["v1"])
    # the same image and tag again is fine (a retried CI job)
    assert push_image(first, aws_with(ecr), "locked", ["v1"]).digest == first.digest

    other = build_image(app_dir, ImageSpec(env={"CHANGED": "1"}))
    with pytest.raises(ExternalError) as caught:
        push_image(other, aws_with(ecr), "locked", ["v1"])
    message = str(caught.value)
    assert "IMMUTABLE" in message and first.digest in message and other.digest in message
    got = ecr.batch_get_image(repositoryName="locked", imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageManifest"].encode() == first.manifest


def test_untagged_push_and_missing_repository(app_dir: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="plain")
    image = build_image(app_dir, ImageSpec())
    result = push_image(image, aws_with(ecr), "plain", [])
    assert result.tags == ()
    got = ecr.batch_get_image(repositoryName="plain", imageIds=[{"imageDigest": result.digest}])
    assert json.loads(got["images"][0]["imageManifest"])["config"]["digest"] == image.config.digest
    with pytest.raises(ExternalError, match="RepositoryNotFoundException"):
        push_image(image, aws_with(ecr), "nope", ["x"])


class Flaky(Recording):
    """Fails the first call of each named operation with a transient error."""

    def __init__(self, client: Any, failing: dict[str, str]) -> None:
        super().__init__(client)
        self.failing = dict(failing)

    def __getattr__(self, name: str) -> Any:
        real = super().__getattr__(name)

        def call(**kwargs: Any) -> Any:
            code = self.failing.pop(name, None)
            if code is not None:
                self.calls.append((name, kwargs))
                status = 500 if code == "InternalFailure" else 400
                raise ClientError(
                    {"Error": {"Code": code, "Message": "try again"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                    name,
                )
            return real(**kwargs)

        return call


def test_transient_faults_are_retried(app_dir: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="flaky")
    image = build_image(app_dir, ImageSpec())
    client = Flaky(ecr, {"upload_layer_part": "ThrottlingException", "put_image": "InternalFailure"})
    slept: list[float] = []
    result = push_image(image, aws_with(client, slept.append), "flaky", ["v1"])
    assert len(slept) == 2
    # the failed blob was uploaded again from a fresh session
    assert client.names().count("initiate_layer_upload") == 3  # layer twice, config once
    assert result.digest == "sha256:" + hashlib.sha256(image.manifest).hexdigest()
    check = ecr.batch_check_layer_availability(repositoryName="flaky", layerDigests=[b.digest for b in image.blobs])
    assert check["failures"] == []


def test_permanent_errors_fail_at_once(app_dir: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="denied")
    image = build_image(app_dir, ImageSpec())
    client = Flaky(ecr, {"initiate_layer_upload": "AccessDeniedException"})
    with pytest.raises(ExternalError, match="AccessDeniedException"):
        push_image(image, aws_with(client, lambda _: None), "denied", ["v1"])
    assert client.names().count("initiate_layer_upload") == 1
