"""The ``ecr`` registry backend: repositories, content-tag reuse and re-tagging by digest.

The runner drives it in this order for each module:

1. :meth:`EcrRegistry.prepare` ensures the repository exists (created with
   IMMUTABLE tags when ``immutable_tags`` is set) and returns where the image
   goes, with the commit tag and the content tag a build must push;
2. :meth:`EcrRegistry.find` asks for the digest behind the content tag; when
   there is one the build is skipped and that digest reused;
3. :meth:`EcrRegistry.promote` then adds the commit tag to the reused image
   by putting the *same manifest bytes* again (BatchGetImage + PutImage), so
   the digest deploys reference never changes.

Every call goes through :class:`deployfw.aws.clients.Aws` (one retry policy).
PutImage is safe to retry: a retry after a lost answer meets
``ImageAlreadyExistsException`` for the same digest, which is success.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deployfw.aws.clients import Aws, AwsError, aws_for
from deployfw.backends import ImageRef, LiveCheck, ModuleJob
from deployfw.builds.content import commit_tag
from deployfw.config import Config, Module
from deployfw.errors import ExternalError, Problem

if TYPE_CHECKING:
    from deployfw.iam.needs import IamNeed, IamScope

# Manifest types we can re-put unchanged; without this list ECR may convert the manifest (new digest).
MANIFEST_MEDIA_TYPES = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
]
_NOT_FOUND = frozenset({"ImageNotFoundException", "RepositoryNotFoundException"})


def repository_name(module: Module) -> str:
    """The module's repository (option ``repository``, default the module name)."""
    configured = module.registry.get("repository") if module.registry is not None else None
    return str(configured or module.name)


def manifest_digest(manifest: str) -> str:
    """``sha256:<hex>`` of the manifest bytes, which is how ECR names an image."""
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


class EcrRegistry:
    """ECR as deployfw's registry; created per run by the plugin's factory (no AWS calls here)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def live_checks(self, job: ModuleJob) -> list[LiveCheck]:
        """The module's repository exists (a first run creates it only when allowed ecr:CreateRepository)."""
        from deployfw_aws.live_checks import checking

        name = repository_name(job.module)

        def probe() -> LiveCheck:
            found = self._describe(name)
            if found is None:
                return LiveCheck("ecr-repository", False, f"ECR repository {name} does not exist",
                                 f"create it (`aws ecr create-repository --repository-name {name}`), or let the "
                                 "first run create it: `deployfw iam policy --include-setup`")  # fmt: skip
            return LiveCheck("ecr-repository", True, f"ECR repository {name} ({found.get('imageTagMutability')} tags)")

        return [checking("ecr-repository", probe)]

    def iam_needs(self, scope: IamScope) -> Sequence[IamNeed]:
        """The run reads and re-tags the module's repository; whoever builds pushes into it.

        Pushing is :mod:`deployfw.image.push`'s upload (the layer API, no Docker login, so no
        ``ecr:GetAuthorizationToken``); creating the repository is first-time setup.
        """
        from deployfw.iam.needs import BUILDER, IamNeed

        assert scope.module is not None
        name = repository_name(scope.module)
        repo = scope.arn("ecr", f"repository/{name}")
        return [
            IamNeed("EcrImages", ("ecr:BatchGetImage", "ecr:DescribeImages", "ecr:DescribeRepositories",
                                  "ecr:PutImage"),
                    (repo,), f"find {name}'s image by content tag, re-tag a reused one"),
            IamNeed("EcrPush", ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
                                "ecr:DescribeRepositories", "ecr:InitiateLayerUpload", "ecr:PutImage",
                                "ecr:UploadLayerPart"),
                    (repo,), f"push the built image to {name}", principal=BUILDER),
            IamNeed("EcrCreateRepository", ("ecr:CreateRepository",), (repo,),
                    f"create {name} when it does not exist yet", when="setup"),
        ]

    @property
    def aws(self) -> Aws:
        return aws_for(self.ctx)

    # -- plan ---------------------------------------------------------------------------

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        name = repository_name(module)
        mutability = "IMMUTABLE" if self._immutable(module) else "MUTABLE"
        return [
            f"ensure ECR repository {name} ({mutability} tags)",
            "reuse the image already tagged with the content tag, if any",
            "tag the image with the commit and the content tag",
        ]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return []

    # -- run ------------------------------------------------------------------------------

    def prepare(self, job: ModuleJob, content_tag: str) -> ImageRef:
        name = repository_name(job.module)
        repository = self._describe(name) or self._create(job, name)
        return ImageRef(
            repository=name,
            repository_uri=repository["repositoryUri"],
            commit_tag=commit_tag(job.ctx.head),
            content_tag=content_tag,
        )

    def find(self, job: ModuleJob, tag: str) -> str | None:
        name = job.image.repository if job.image else repository_name(job.module)
        try:
            answer = self.aws.call("ecr", "describe_images", repositoryName=name, imageIds=[{"imageTag": tag}])
        except AwsError as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise
        details = answer.get("imageDetails") or []
        return details[0]["imageDigest"] if details else None

    def promote(self, job: ModuleJob, digest: str, tags: Sequence[str]) -> None:
        name = job.image.repository if job.image else repository_name(job.module)
        answer = self.aws.call(
            "ecr",
            "batch_get_image",
            repositoryName=name,
            imageIds=[{"imageDigest": digest}],
            acceptedMediaTypes=MANIFEST_MEDIA_TYPES,
        )
        images = [i for i in answer.get("images") or [] if i.get("imageId", {}).get("imageDigest") == digest]
        if not images:
            reasons = "; ".join(f.get("failureReason", "") for f in answer.get("failures") or []) or "not found"
            raise ExternalError(f"ECR image {name}@{digest}: {reasons}")
        manifest = images[0]["imageManifest"]
        media_type = images[0].get("imageManifestMediaType")
        if manifest_digest(manifest) != digest:
            raise ExternalError(f"ECR returned a different manifest for {name}@{digest}; not re-tagging")
        for tag in dict.fromkeys(tags):
            self._put_tag(name, manifest, media_type, digest, tag)
        job.log(f"tagged {name}@{digest} as {', '.join(dict.fromkeys(tags))}")

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _immutable(module: Module) -> bool:
        return bool(module.registry.get("immutable_tags", False)) if module.registry is not None else False

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            answer = self.aws.call("ecr", "describe_repositories", repositoryNames=[name])
        except AwsError as exc:
            if exc.code == "RepositoryNotFoundException":
                return None
            raise
        repositories = answer.get("repositories") or []
        return repositories[0] if repositories else None

    def _create(self, job: ModuleJob, name: str) -> dict[str, Any]:
        mutability = "IMMUTABLE" if self._immutable(job.module) else "MUTABLE"
        try:
            answer = self.aws.call(
                "ecr",
                "create_repository",
                repositoryName=name,
                imageTagMutability=mutability,
                imageScanningConfiguration={"scanOnPush": False},
            )
        except AwsError as exc:
            # Another module (or a retried call) created it a moment ago: use that one.
            if exc.code == "RepositoryAlreadyExistsException" and (found := self._describe(name)):
                return found
            raise
        job.log(f"created ECR repository {name} ({mutability} tags)")
        return answer["repository"]

    def _put_tag(self, name: str, manifest: str, media_type: str | None, digest: str, tag: str) -> None:
        params: dict[str, Any] = {
            "repositoryName": name,
            "imageManifest": manifest,
            "imageTag": tag,
            "imageDigest": digest,
        }
        if media_type:
            params["imageManifestMediaType"] = media_type
        try:
            self.aws.call("ecr", "put_image", **params)
        except AwsError as exc:
            if exc.code == "ImageAlreadyExistsException":
                return  # this tag already names this very manifest
            if exc.code == "ImageTagAlreadyExistsException":
                raise ExternalError(
                    f"tag {tag!r} of immutable repository {name} already names another image; not moving it"
                ) from None
            raise
