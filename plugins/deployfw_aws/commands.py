"""``deployfw render``: fill a module's templates for an image, as CodePipeline and reviewers want them.

A command of the AWS plugin (registered through ``deployfw_register_commands``): it renders the
ECS task definition and CodeDeploy appspec this plugin's deploy backends register.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from deployfw.errors import InputError
from deployfw.session import Session

_ACCOUNT = re.compile(r"^\d{12}$")
_ECR_URI = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/")


@click.command("render")
@click.argument("module_name", metavar="MODULE")
@click.option("--image", required=True, metavar="URI", help="Image URI, ideally REPO@sha256:DIGEST.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for taskdef.json, appspec.yaml, imagedefinitions.json, imageDetail.json "
    "(default .deployfw/render/MODULE).",
)
@click.option(
    "--account-id",
    metavar="ID",
    help="The AWS account id for ${ACCOUNT_ID} (default: the account an ECR image URI names).",
)
@click.pass_obj
def render(app: Session, module_name: str, image: str, out: Path | None, account_id: str | None) -> None:
    """Render MODULE's task definition and appspec for IMAGE, checked before anything reaches AWS."""
    from deployfw_aws.render import render_module, write_artifacts

    config = app.load_config()
    module = config.modules.get(module_name)
    if module is None:
        raise InputError(f"unknown module {module_name!r}; modules: {', '.join(sorted(config.modules))}")
    if not module.is_service:
        raise InputError(f"{module_name!r} is a library: it has no task definition to render")
    if account_id is not None and not _ACCOUNT.match(account_id):
        raise InputError(f"--account-id {account_id!r}: an AWS account id is 12 digits")
    match = _ECR_URI.match(image)
    account = account_id or (match["account"] if match else None)
    region = match["region"] if match else config.region
    rendered = render_module(config, module, image, account_id=account, region=region)
    folder = out or config.root / ".deployfw" / "render" / module_name
    for path in write_artifacts(rendered, folder):
        click.echo(str(path))
