"""Push a built image to ECR through its layer-upload API, no Docker daemon involved.

Sequence, per repository: DescribeRepositories (URI, tag mutability) ->
BatchCheckLayerAvailability for every layer and the config (skip what the
registry has) -> for each missing blob InitiateLayerUpload, UploadLayerPart in
``partSize`` chunks with inclusive byte ranges, CompleteLayerUpload with the
digest -> PutImage with the manifest bytes, media type and digest, once per tag.

Retries: every call goes through deployfw's AWS boundary (:class:`deployfw.aws.clients.Aws`)
and its one retry policy. Single calls are retried as they are; PutImage is safe to repeat
because an existing tag on the same digest counts as success. A blob whose upload fails
part-way is uploaded again from InitiateLayerUpload, since a lost UploadLayerPart answer
leaves the session's byte position unknown: the policy wraps the whole upload sequence,
whose calls are then made once each. A completed upload repeated gives LayerAlreadyExists,
which is success too.

The digest is always ``sha256`` of the manifest bytes computed here: it is the
identity ECS pulls by, and it must not depend on what a registry (or a
registry stand-in) answers. A tag that already names this digest is success;
an immutable tag naming a different digest is an :class:`ExternalError` that
says both digests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployfw.errors import ExternalError

from .blobs import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, Blob, sha256_digest
from .oci import Image

if TYPE_CHECKING:
    from deployfw.aws.clients import Aws

DEFAULT_PART_SIZE = 10 * 1024 * 1024
_CHECK_BATCH = 100  # BatchCheckLayerAvailability accepts at most 100 digests
_ACCEPTED = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST]
_TAG_TAKEN = frozenset({"ImageAlreadyExistsException", "ImageTagAlreadyExistsException"})


@dataclass(frozen=True)
class PushResult:
    """What a push did: the image's digest and URI, and how many layers moved."""

    digest: str
    repository_uri: str
    layers_uploaded: int
    layers_skipped: int
    tags: tuple[str, ...] = ()

    @property
    def image_uri(self) -> str:
        """``REPO_URI@sha256:...``: the reference deploys use, immune to tag moves."""
        return f"{self.repository_uri}@{self.digest}"


def push_image(
    image: Image,
    aws: Aws,
    repository: str,
    tags: Sequence[str],
    *,
    registry_id: str | None = None,
) -> PushResult:
    """Upload ``image``'s missing blobs to ``repository`` and tag its manifest with ``tags``.

    ``aws`` is the AWS boundary (region, endpoint, retry policy). A blob whose upload
    fails transiently is uploaded again from its first byte: an upload session holds
    no state worth keeping.
    """
    from deployfw.aws.clients import AwsError

    owner: dict[str, Any] = {"registryId": registry_id} if registry_id else {}
    pusher = _Pusher(aws, repository, owner)
    try:
        described = pusher.call("describe_repositories", repositoryNames=[repository], **owner)
    except AwsError as exc:
        raise ExternalError(f"ECR repository {repository}: {_message(exc)}") from None
    repo = described["repositories"][0]
    uri: str = repo["repositoryUri"]
    pusher.uri = uri
    immutable = str(repo.get("imageTagMutability", "MUTABLE")).startswith("IMMUTABLE")

    digest = sha256_digest(image.manifest)
    try:
        present = pusher.available([b.digest for b in image.blobs])
        uploaded = skipped = 0
        seen: set[str] = set()
        for blob in image.blobs:
            if blob.digest in seen:
                continue
            seen.add(blob.digest)
            is_layer = blob is not image.config
            if blob.digest in present:
                skipped += is_layer
                continue
            pusher.upload(blob)
            uploaded += is_layer
        unique_tags = tuple(dict.fromkeys(t for t in tags if t))
        for tag in unique_tags or (None,):
            pusher.put(image, digest, tag, immutable)
    except AwsError as exc:
        raise ExternalError(f"ECR push to {uri}: {_message(exc)}") from None
    return PushResult(digest, uri, uploaded, skipped, unique_tags)


class _Pusher:
    """The ECR calls of one push, bound to one repository."""

    def __init__(self, aws: Aws, repository: str, owner: dict[str, str]) -> None:
        self.aws = aws
        self.repo: dict[str, Any] = {"repositoryName": repository, **owner}
        self.uri = repository

    def call(self, operation: str, *, retry: bool = True, **params: Any) -> Any:
        """One ECR call, repeated on transient faults unless ``retry`` is False (a caller retries more)."""
        return self.aws.call("ecr", operation, retry=retry, **params)

    def available(self, digests: list[str]) -> set[str]:
        """The digests the repository already holds."""
        found: set[str] = set()
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), _CHECK_BATCH):
            answer = self.call(
                "batch_check_layer_availability", layerDigests=unique[start : start + _CHECK_BATCH], **self.repo
            )
            found.update(
                layer["layerDigest"]
                for layer in answer.get("layers", [])
                if layer.get("layerAvailability") == "AVAILABLE"
            )
        return found

    def upload(self, blob: Blob) -> None:
        """Upload one blob, starting over on transient failures."""
        for attempt in self.aws.retrying():
            with attempt:
                self._upload_once(blob)

    def _upload_once(self, blob: Blob) -> None:
        from deployfw.aws.clients import AwsError

        started = self.call("initiate_layer_upload", retry=False, **self.repo)
        upload_id = started["uploadId"]
        part_size = int(started.get("partSize") or DEFAULT_PART_SIZE)
        sent = 0
        for piece in blob.chunks(part_size):
            self.call(
                "upload_layer_part",
                retry=False,
                uploadId=upload_id,
                partFirstByte=sent,
                partLastByte=sent + len(piece) - 1,
                layerPartBlob=piece,
                **self.repo,
            )
            sent += len(piece)
        if sent != blob.size:
            raise ExternalError(f"{blob.digest}: read {sent} bytes, expected {blob.size}")
        try:
            done = self.call("complete_layer_upload", retry=False, uploadId=upload_id, layerDigests=[blob.digest],
                             **self.repo)  # fmt: skip
        except AwsError as exc:
            if exc.code == "LayerAlreadyExistsException":
                return  # a concurrent push got there first; same content by definition
            raise
        if done.get("layerDigest") not in (None, blob.digest):
            raise ExternalError(f"{self.uri}: uploaded {blob.digest} but the registry computed {done['layerDigest']}")

    def put(self, image: Image, digest: str, tag: str | None, immutable: bool) -> None:
        """PutImage for one tag; an existing tag on the same digest is fine."""
        from deployfw.aws.clients import AwsError

        extra: dict[str, Any] = {"imageTag": tag} if tag else {}
        try:
            self.call(
                "put_image",
                imageManifest=image.manifest.decode(),
                imageManifestMediaType=image.media_type,
                imageDigest=digest,
                **extra,
                **self.repo,
            )
        except AwsError as exc:
            if exc.code not in _TAG_TAKEN:
                raise
            if tag is None:
                return  # the untagged manifest is already there
            current = self._digest_at(tag)
            if current in (digest, None):
                return
            mode = "IMMUTABLE" if immutable else "refusing to move"
            raise ExternalError(
                f"{self.uri}:{tag} already names {current} and the repository is {mode};"
                f" cannot point it at {digest} (use a new tag, e.g. the content tag)"
            ) from None

    def _digest_at(self, tag: str) -> str | None:
        """The digest the tag names now, from the stored manifest bytes (never trusted blindly)."""
        answer = self.call("batch_get_image", imageIds=[{"imageTag": tag}], acceptedMediaTypes=_ACCEPTED, **self.repo)
        for found in answer.get("images", []):
            manifest = found.get("imageManifest")
            if manifest is not None:
                return sha256_digest(manifest.encode())
            digest: str | None = found.get("imageId", {}).get("imageDigest")
            return digest
        return None


def _message(exc: Any) -> str:
    """``Code: message`` of an AWS refusal, the way the ECR console shows it."""
    return f"{exc.code or 'Error'}: {exc.detail}"
