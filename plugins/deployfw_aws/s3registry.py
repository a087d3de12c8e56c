"""The ``s3`` registry backend: revision bundles under content keys, reused exactly like image content tags.

Where ``ecr`` keeps an image under two tags, ``s3`` keeps a bundle under two keys of one
folder, ``s3://BUCKET/PREFIX/MODULE/``:

- ``CONTENT_TAG.zip`` - written by the build (``deployfw bundle build DIR --push`` uploads to
  ``$ARTIFACT_URI``); when it exists, nothing the bundle is made of changed and the build is
  skipped, its ETag reused;
- ``COMMIT.zip`` - a server-side copy the push stage makes (CopyObject, with
  ``CopySourceIfMatch`` the ETag so the copy is the object the run checked), so the bundle of
  any deployed commit can be found by commit.

The ETag plays the image digest's part: deploys pin the revision by bucket, key and ETag, and
CodeDeploy's agent refuses a bundle whose ETag differs. Bundles are zipped reproducibly, so the
same content always has the same ETag. The bucket is not created here: a team creates it once
(versioning and lifecycle rules are theirs to choose); a missing bucket fails the build stage
with that advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deployfw.aws.clients import Aws, AwsError, aws_for
from deployfw.backends import ArtifactRef, ModuleJob
from deployfw.builds.content import commit_tag
from deployfw.config import Config, Module
from deployfw.errors import ExternalError, Problem

if TYPE_CHECKING:
    from deployfw.iam.needs import IamNeed, IamScope

_MISSING = frozenset({"404", "NoSuchBucket", "NotFound"})


def bucket_of(module: Module) -> str:
    return str(module.registry.get("bucket") or "") if module.registry is not None else ""


def folder_of(module: Module) -> str:
    """``PREFIX/MODULE`` (just ``MODULE`` without a prefix): where the module's bundles live."""
    prefix = str(module.registry.get("prefix") or "").strip("/") if module.registry is not None else ""
    return f"{prefix}/{module.name}" if prefix else module.name


def artifact_for(module: Module, head: str, content_tag: str) -> ArtifactRef:
    """Where ``module``'s bundle goes (no AWS call: the names follow from the config)."""
    bucket = bucket_of(module)
    return ArtifactRef(bucket, f"s3://{bucket}/{folder_of(module)}", commit_tag(head), content_tag, "bundle")


def key_of(artifact: ArtifactRef, tag: str) -> str:
    """The object key of ``artifact`` under ``tag``."""
    return artifact.tagged(tag)[len(f"s3://{artifact.repository}/") :]


def etag(answer: dict[str, Any]) -> str:
    """An ETag as S3 sends it (quoted) turned into the bare form deployfw and CodeDeploy compare."""
    return str(answer.get("ETag") or "").strip('"')


def object_etag(aws: Aws, bucket: str, key: str) -> str | None:
    """The ETag of ``s3://bucket/key``, None when there is no such object.

    Asked with ListObjectsV2 (``s3:ListBucket``), not HeadObject: a HEAD answer has no body, so a
    refusal would be a bare 403 - a listing's refusal is an AccessDenied that names the action, which
    the AWS boundary turns into the statement to add.
    """
    answer = aws.call("s3", "list_objects_v2", Bucket=bucket, Prefix=key, MaxKeys=50)
    found = next((o for o in answer.get("Contents") or [] if o.get("Key") == key), None)
    return etag(found) or None if found is not None else None


class S3Registry:
    """S3 as deployfw's registry of revision bundles; made per run by the plugin's factory (no AWS calls here)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    @property
    def aws(self) -> Aws:
        return aws_for(self.ctx)

    # -- plan ---------------------------------------------------------------------------

    def steps(self, module: Module, config: Config) -> Sequence[str]:
        where = f"s3://{bucket_of(module)}/{folder_of(module)}"
        return [
            f"check bucket {bucket_of(module)} exists",
            f"reuse the bundle {where}/CONTENT_TAG.zip when it exists (same content, same ETag)",
            f"copy it to {where}/COMMIT.zip",
        ]

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return []  # the section schema checks bucket and prefix; the bucket itself is checked at run time

    def iam_needs(self, scope: IamScope) -> Sequence[IamNeed]:
        """The run finds and copies the module's bundles; whoever builds uploads them.

        Objects are looked up by listing (``s3:ListBucket``, see :func:`object_etag`); copying needs
        ``s3:GetObject`` on the source as well as ``s3:PutObject`` on the destination.
        """
        from deployfw.iam.needs import BUILDER, IamNeed

        assert scope.module is not None
        bucket, folder = bucket_of(scope.module), folder_of(scope.module)
        objects = f"arn:{scope.partition}:s3:::{bucket}/{folder}/*"
        listing = f"arn:{scope.partition}:s3:::{bucket}"
        # One sid per kind of access, for the run and the builder alike: a module built here (``local``)
        # has the run's principal as its builder, and its two needs then make one statement.
        return [
            IamNeed("S3Bundles", ("s3:GetObject", "s3:PutObject"), (objects,),
                    f"copy {scope.module.name}'s bundle from its content key to its commit key (CopyObject)"),
            IamNeed("S3BundleFind", ("s3:ListBucket",), (listing,),
                    f"find {scope.module.name}'s bundle and its ETag by content key (ListObjectsV2)"),
            IamNeed("S3Bundles", ("s3:GetObject", "s3:PutObject"), (objects,),
                    f"upload {scope.module.name}'s bundle (deployfw bundle build --push)", principal=BUILDER),
            IamNeed("S3BundleFind", ("s3:ListBucket",), (listing,),
                    "leave a bundle already uploaded alone (ListObjectsV2)", principal=BUILDER),
        ]  # fmt: skip

    # -- run ------------------------------------------------------------------------------

    def prepare(self, job: ModuleJob, content_tag: str) -> ArtifactRef:
        artifact = artifact_for(job.module, job.ctx.head, content_tag)
        try:
            object_etag(self.aws, artifact.repository, key_of(artifact, content_tag))
        except AwsError as exc:
            if exc.code in _MISSING:
                raise ExternalError(
                    f"S3 bucket {artifact.repository} does not exist; create it once (it holds every revision "
                    "bundle of this registry), then run again"
                ) from None
            raise
        return artifact

    def find(self, job: ModuleJob, tag: str) -> str | None:
        artifact = job.artifact or artifact_for(job.module, job.ctx.head, tag)
        return object_etag(self.aws, artifact.repository, key_of(artifact, tag))

    def promote(self, job: ModuleJob, digest: str, tags: Sequence[str]) -> None:
        artifact = job.artifact
        if artifact is None:
            raise ExternalError("no bundle to copy: the registry was not prepared")
        source = {"Bucket": artifact.repository, "Key": key_of(artifact, artifact.content_tag)}
        for tag in dict.fromkeys(tags):
            try:
                self.aws.call("s3", "copy_object", Bucket=artifact.repository, Key=key_of(artifact, tag),
                              CopySource=source, CopySourceIfMatch=f'"{digest}"')  # fmt: skip
            except AwsError as exc:
                if exc.code == "PreconditionFailed":
                    raise ExternalError(
                        f"{artifact.tagged(artifact.content_tag)} changed while this run used it (ETag is no longer "
                        f"{digest}); not copying it"
                    ) from None
                raise
        job.log(f"copied {artifact.tagged(artifact.content_tag)} to {', '.join(artifact.tagged(t) for t in tags)}")
