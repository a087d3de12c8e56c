"""``deployfw image build``: pack a directory into an image, optionally write it and push it.

A thin shell over :func:`deployfw.image.build_image` and
:func:`deployfw.image.push_image`. All input is checked before any AWS call,
and problems raise :class:`deployfw.errors.InputError` (exit 2 in the main CLI).
Defaults follow a CodeBuild buildspec's environment: ``IMAGE_REPO_NAME`` and
``IMAGE_TAG`` for the repository and tag, ``AWS_REGION``/``AWS_DEFAULT_REGION``
for the region; boto3 itself honours ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from deployfw.errors import InputError

from .oci import build_image, write_oci_layout
from .push import push_image
from .refs import RepositoryRef, check_tag, parse_repository
from .spec import ImageSpec, epoch_from_env, normalize_port, parse_command, parse_pairs


@click.group(name="image")
def image() -> None:
    """Build and push container images without a Docker daemon."""


@image.command("build")
@click.argument("context", metavar="DIR", type=click.Path(path_type=str))
@click.option("--entrypoint", help="Entrypoint: JSON array or shell words.")
@click.option("--cmd", help="Default command: JSON array or shell words.")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Environment variable.")
@click.option("--port", "ports", multiple=True, metavar="N[/PROTO]", help="Exposed port.")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Image label.")
@click.option("--workdir", help="Working directory (absolute).")
@click.option("--user", help="User (name or uid[:gid]) the container runs as.")
@click.option("--dest", default="/", show_default=True, help="Where DIR's contents go.")
@click.option("--base", type=click.Path(path_type=Path), help="Base image: OCI layout or tarball.")
@click.option(
    "--format",
    "manifest_format",
    type=click.Choice(["oci", "docker"]),
    default="oci",
    show_default=True,
    help="Manifest format.",
)
@click.option("--output", type=click.Path(path_type=Path), help="Also write an OCI layout here.")
@click.option(
    "--push",
    "push",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="REPO[:TAG]",
    help="Push to this ECR repository (default: $IMAGE_REPO_NAME:$IMAGE_TAG);"
    " without a value, put it last or write --push=.",
)
@click.option("--tag", "tags", multiple=True, help="Additional tag to push.")
@click.option(
    "--image-detail",
    type=click.Path(path_type=Path),
    help="With --push: write imageDetail.json (CodePipeline ECS blue/green) here.",
)
def build(
    context: str,
    entrypoint: str | None,
    cmd: str | None,
    env: tuple[str, ...],
    ports: tuple[str, ...],
    labels: tuple[str, ...],
    workdir: str | None,
    user: str | None,
    dest: str,
    base: Path | None,
    manifest_format: str,
    output: Path | None,
    push: str | None,
    tags: tuple[str, ...],
    image_detail: Path | None,
) -> None:
    """Pack DIR into a reproducible image; print its digest (and REPO_URI@DIGEST when pushed)."""
    if not context.strip():
        # An unset shell variable (`"$CONTEXT"`) must not silently pack the current folder.
        raise InputError("DIR is empty: name the folder to pack (is a shell variable unset?)")
    context_dir = Path(context)
    if not context_dir.is_dir():
        raise InputError(f"{context}: context directory not found")
    spec = ImageSpec(
        entrypoint=parse_command(entrypoint, "--entrypoint"),
        cmd=parse_command(cmd, "--cmd"),
        env=parse_pairs(env, "--env"),
        ports=tuple(normalize_port(p) for p in ports),
        labels=parse_pairs(labels, "--label"),
        workdir=workdir,
        user=user,
        base=base,
        destination=dest,
        epoch=epoch_from_env(),
        manifest_format="docker" if manifest_format == "docker" else "oci",
    )
    target = _push_target(push, tags) if push is not None else None
    if image_detail is not None and target is None:
        raise InputError("--image-detail needs --push")

    built = build_image(context_dir, spec)
    if output is not None:
        write_oci_layout(built, output, ref_name=target[0].tag if target else None)
        click.echo(f"wrote OCI layout {output}", err=True)
    click.echo(built.digest)
    if target is None:
        return
    ref, all_tags = target
    result = push_image(built, _aws(), ref.name, all_tags, registry_id=ref.registry_id)
    click.echo(
        f"pushed {len(all_tags)} tag(s), {result.layers_uploaded} layer(s) uploaded,"
        f" {result.layers_skipped} already present",
        err=True,
    )
    click.echo(result.image_uri)
    if image_detail is not None:
        image_detail.parent.mkdir(parents=True, exist_ok=True)
        image_detail.write_text(json.dumps({"ImageURI": result.image_uri}) + "\n")


def _push_target(push: str, tags: tuple[str, ...]) -> tuple[RepositoryRef, list[str]]:
    """The repository and the ordered, de-duplicated tags a push goes to."""
    ref_text = push or os.environ.get("IMAGE_REPO_NAME", "")
    if not ref_text:
        raise InputError("--push needs REPO[:TAG] or IMAGE_REPO_NAME in the environment")
    ref = parse_repository(ref_text)
    first = ref.tag or os.environ.get("IMAGE_TAG") or None
    all_tags = [check_tag(t) for t in ([first] if first else []) + list(tags)]
    return ref, list(dict.fromkeys(all_tags))


def _aws() -> Any:
    """deployfw's AWS boundary for the push; region from AWS_REGION or AWS_DEFAULT_REGION.

    The endpoint is boto3's own resolution (``AWS_ENDPOINT_URL``), as for any AWS client.
    """
    from deployfw.aws.clients import Aws

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise InputError("--push needs a region: set AWS_DEFAULT_REGION or AWS_REGION")
    return Aws(region)
