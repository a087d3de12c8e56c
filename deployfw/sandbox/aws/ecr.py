"""ECR backend with the digests ECR really computes.

ECR's image digest is the sha256 of the exact manifest bytes that were pushed, and a
layer upload is only accepted when the digest the client names matches the bytes it
sent. moto derives digests from layer lists and trusts the client, which would let a
registry backend pass tests that fail against AWS.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.ecr import urls as moto_urls
from moto.ecr.models import ECRBackend, Image

from deployfw.sandbox.aws.urls import url_module
from deployfw.sandbox.runtime.blobs import blob_store


class EcrError(JsonRESTError):
    code = 400


def manifest_digest(manifest: str) -> str:
    """``sha256:<hex>`` of the manifest as sent (UTF-8), which is what ECR reports."""
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


class SandboxImage(Image):
    """moto's image, with ``imageSizeInBytes`` as ECR reports it: the layers as stored (compressed)."""

    def get_image_size_in_bytes(self) -> int | None:
        try:
            doc = json.loads(self.image_manifest)
        except ValueError:
            return None
        if "layers" not in doc:
            return None
        return sum(int(layer.get("size") or 0) for layer in doc["layers"])


_URI = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<rest>.+)$")


def parse_image_uri(image: str) -> tuple[str, str, str, str] | None:
    """``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]`` -> (account, region, repo, tag-or-digest)."""
    match = _URI.match(image)
    if match is None:
        return None
    rest = match.group("rest")
    if "@" in rest:
        repo, _, ref = rest.partition("@")
    elif ":" in rest.rsplit("/", 1)[-1]:
        repo, _, ref = rest.rpartition(":")
    else:
        repo, ref = rest, "latest"
    return match.group("account"), match.group("region"), repo, ref


class SandboxEcrBackend(ECRBackend):
    @property
    def _url_module(self) -> Any:
        return url_module(moto_urls)

    def put_image(
        self,
        repository_name: str,
        image_manifest: str,
        image_tag: str,
        image_manifest_mediatype: str | None = None,
        digest: str | None = None,
    ) -> Image:
        if repository_name not in self.repositories:
            raise EcrError(
                "RepositoryNotFoundException",
                f"The repository with name '{repository_name}' does not exist in the registry "
                f"with id '{self.account_id}'",
            )
        computed = manifest_digest(image_manifest)
        if digest and digest != computed:
            raise EcrError(
                "ImageDigestDoesNotMatchException",
                f"The specified image digest {digest} does not match the digest of the manifest ({computed})",
            )
        repository = self.repositories[repository_name]
        if image_tag and repository.is_tag_immutable():
            for image in repository.images:
                if image_tag in image.image_tags and image.get_image_digest() != computed:
                    raise EcrError(
                        "ImageTagAlreadyExistsException",
                        f"The image tag '{image_tag}' already exists in the '{repository_name}' "
                        "repository and cannot be overwritten because the repository is "
                        "immutable.",
                    )
        image = super().put_image(repository_name, image_manifest, image_tag, image_manifest_mediatype, computed)
        image.__class__ = SandboxImage
        return image

    def manifest_of(self, repository_name: str, reference: str) -> str | None:
        """The manifest a pull of ``repository:reference`` (tag or digest) gets; None if there is none."""
        repository = self.repositories.get(repository_name)
        if repository is None:
            return None
        for image in repository.images:
            if reference == image.get_image_digest() or reference in image.image_tags:
                return str(image.image_manifest)
        return None

    def complete_layer_upload(
        self,
        repository_name: str,
        upload_id: str,
        layer_digests: list[str],
        registry_id: str | None = None,
    ) -> dict[str, Any]:
        repository = self._get_repository(repository_name, registry_id)
        upload = repository.uploads.get(upload_id)
        if upload is not None:
            actual = "sha256:" + hashlib.sha256(bytes(upload.layer_parts)).hexdigest()
            if not layer_digests or actual in layer_digests:
                blob_store().put(bytes(upload.layer_parts))  # moto keeps only sizes; tasks need the bytes
            if layer_digests and actual not in layer_digests:
                raise EcrError(
                    "InvalidLayerException",
                    f"The layer digest calculation performed by Amazon ECR upon receipt of the "
                    f"image layer ({actual}) does not match the digest specified "
                    f"({', '.join(layer_digests)})",
                )
        return super().complete_layer_upload(repository_name, upload_id, layer_digests, registry_id)
