"""ECR backend with the digests ECR really computes.

ECR's image digest is the sha256 of the exact manifest bytes that were pushed, and a
layer upload is only accepted when the digest the client names matches the bytes it
sent. moto derives digests from layer lists and trusts the client, which would let a
registry backend pass tests that fail against AWS.
"""

from __future__ import annotations

import hashlib
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.ecr import urls as moto_urls
from moto.ecr.models import ECRBackend, Image


class EcrError(JsonRESTError):
    code = 400


def manifest_digest(manifest: str) -> str:
    """``sha256:<hex>`` of the manifest as sent (UTF-8), which is what ECR reports."""
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


class SandboxEcrBackend(ECRBackend):
    @property
    def _url_module(self) -> Any:  # type: ignore[override]
        from deployfw.sandbox.aws.urls import url_module

        return url_module(moto_urls)

    def put_image(  # type: ignore[override]
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
        return super().put_image(
            repository_name, image_manifest, image_tag, image_manifest_mediatype, computed
        )

    def complete_layer_upload(  # type: ignore[override]
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
            if layer_digests and actual not in layer_digests:
                raise EcrError(
                    "InvalidLayerException",
                    f"The layer digest calculation performed by Amazon ECR upon receipt of the "
                    f"image layer ({actual}) does not match the digest specified "
                    f"({', '.join(layer_digests)})",
                )
        return super().complete_layer_upload(repository_name, upload_id, layer_digests, registry_id)
