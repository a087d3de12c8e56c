"""ECR: content digests as ECR computes them, layer uploads verified, IMMUTABLE tags."""

from __future__ import annotations

import hashlib
import json

import pytest
from botocore.exceptions import ClientError

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 5,
                "digest": "sha256:" + hashlib.sha256(b"layer").hexdigest(),
            }
        ],
    },
    indent=3,
)


def test_image_digest_is_sha256_of_manifest(aws_client):
    ecr = aws_client("ecr")
    ecr.create_repository(repositoryName="digest-repo")
    pushed = ecr.put_image(repositoryName="digest-repo", imageManifest=MANIFEST, imageTag="v1")
    expected = "sha256:" + hashlib.sha256(MANIFEST.encode()).hexdigest()
    assert pushed["image"]["imageId"]["imageDigest"] == expected
    described = ecr.describe_images(repositoryName="digest-repo", imageIds=[{"imageTag": "v1"}])
    assert described["imageDetails"][0]["imageDigest"] == expected
    fetched = ecr.batch_get_image(repositoryName="digest-repo", imageIds=[{"imageDigest": expected}])
    assert fetched["images"][0]["imageManifest"] == MANIFEST
    with pytest.raises(ClientError) as mismatch:
        ecr.put_image(
            repositoryName="digest-repo", imageManifest=MANIFEST, imageTag="v2", imageDigest="sha256:" + "0" * 64
        )
    assert mismatch.value.response["Error"]["Code"] == "ImageDigestDoesNotMatchException"


def test_immutable_tag_refuses_overwrite(aws_client):
    ecr = aws_client("ecr")
    ecr.create_repository(repositoryName="immutable-repo", imageTagMutability="IMMUTABLE")
    ecr.put_image(repositoryName="immutable-repo", imageManifest=MANIFEST, imageTag="v1")
    other = MANIFEST.replace('"size": 2', '"size": 3')
    with pytest.raises(ClientError) as refused:
        ecr.put_image(repositoryName="immutable-repo", imageManifest=other, imageTag="v1")
    assert refused.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"


def test_layer_upload_verifies_digest(aws_client):
    ecr = aws_client("ecr")
    ecr.create_repository(repositoryName="layer-repo")
    blob = b"layer-bytes" * 10
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    def upload(claimed: str) -> dict:
        upload_id = ecr.initiate_layer_upload(repositoryName="layer-repo")["uploadId"]
        ecr.upload_layer_part(
            repositoryName="layer-repo",
            uploadId=upload_id,
            partFirstByte=0,
            partLastByte=len(blob) - 1,
            layerPartBlob=blob,
        )
        return ecr.complete_layer_upload(repositoryName="layer-repo", uploadId=upload_id, layerDigests=[claimed])

    with pytest.raises(ClientError) as wrong:
        upload("sha256:" + "f" * 64)
    assert wrong.value.response["Error"]["Code"] == "InvalidLayerException"
    assert upload(digest)["layerDigest"] == digest
    found = ecr.batch_check_layer_availability(repositoryName="layer-repo", layerDigests=[digest])
    assert found["layers"][0]["layerAvailability"] == "AVAILABLE"
