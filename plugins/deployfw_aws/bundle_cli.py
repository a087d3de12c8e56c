"""``deployfw bundle build DIR [--appspec F] [--out FILE] [--push [s3://BUCKET/KEY]]``.

A command of the AWS plugin, which owns the ``s3`` registry (registered through
``deployfw_register_commands``). A module's buildspec runs it the way an image module's runs
``deployfw image build``: the build contract names the destination in ``ARTIFACT_URI``
(``s3://BUCKET/PREFIX/MODULE/CONTENT_TAG.zip``), so ``--push`` alone is enough there. The
AppSpec is checked against the packed entries before any AWS call (exit 2 with file, line and
key); an object already at the destination with the bundle's ETag is left alone.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import click

from deployfw.errors import InputError


@click.group(name="bundle")
def bundle() -> None:
    """Pack and push CodeDeploy revision bundles for EC2 and on-premises servers."""


@bundle.command("build")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=str))
@click.option("--appspec", type=click.Path(path_type=Path), help="AppSpec for the root (default DIR/appspec.yml).")
@click.option("--out", type=click.Path(path_type=Path), help="Also write the zip here.")
@click.option(
    "--push",
    "push",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="s3://BUCKET/KEY",
    help="Upload the bundle (default destination: $ARTIFACT_URI, which deployfw builds set);"
    " without a value, put it last or write --push=.",
)
def build(folder: str, appspec: Path | None, out: Path | None, push: str | None) -> None:
    """Pack DIR into a reproducible revision bundle; print its ETag (and s3://BUCKET/KEY@ETAG when pushed)."""
    from deployfw_aws.bundle import pack

    if not folder.strip():
        raise InputError("DIR is empty: name the folder to pack (is a shell variable unset?)")
    destination = _destination(push) if push is not None else None
    packed = pack(Path(folder), appspec)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(packed.data)
        click.echo(f"wrote {out}", err=True)
    click.echo(f"{len(packed.entries)} file(s), {len(packed.data)} bytes, sha256 {packed.sha256}", err=True)
    click.echo(packed.md5)
    if destination is None:
        return
    bucket, key = destination
    click.echo(_upload(bucket, key, packed.data, packed.md5))


def _destination(push: str) -> tuple[str, str]:
    """``(bucket, key)`` from ``--push`` or the build contract's ``ARTIFACT_URI``."""
    uri = push or (os.environ.get("ARTIFACT_URI", "") if os.environ.get("ARTIFACT_KIND") == "bundle" else "")
    if not uri:
        raise InputError("--push needs s3://BUCKET/KEY, or ARTIFACT_KIND=bundle and ARTIFACT_URI in the environment "
                         "(deployfw sets both for modules whose registry is s3)")  # fmt: skip
    if not uri.startswith("s3://"):
        raise InputError(f"--push {uri!r}: expected s3://BUCKET/KEY")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise InputError(f"--push {uri!r}: expected s3://BUCKET/KEY")
    return bucket, key


def _upload(bucket: str, key: str, data: bytes, md5: str) -> str:
    """PutObject unless the object is already these bytes; ``s3://BUCKET/KEY@ETAG``."""
    from deployfw.aws.clients import Aws
    from deployfw_aws.s3registry import object_etag

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise InputError("--push needs a region: set AWS_DEFAULT_REGION or AWS_REGION")
    aws = Aws(region)
    location = f"s3://{bucket}/{key}"
    if object_etag(aws, bucket, key) == md5:
        click.echo(f"{location} already holds this bundle; not uploaded again", err=True)
        return f"{location}@{md5}"
    digest = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    answer = aws.call("s3", "put_object", Bucket=bucket, Key=key, Body=data, ContentMD5=digest,
                      ContentType="application/zip")  # fmt: skip
    etag = str(answer.get("ETag") or "").strip('"')
    note = "" if etag == md5 else f" (ETag {etag} is not the MD5: a KMS-encrypted bucket; deploys pin the ETag)"
    click.echo(f"uploaded {location}{note}", err=True)
    return f"{location}@{etag}"
