"""``deployfw iam policy``: least-privilege IAM policies from what the backends declare."""

from __future__ import annotations

import json

import click

from deployfw.cli.app import App
from deployfw.cli.options import global_options
from deployfw.iam.needs import PRINCIPALS


@click.group("iam")
def command() -> None:
    """IAM policies for deployfw's principals, built from modules.yaml."""


@command.command("policy")
@click.option("--for", "principal", type=click.Choice(PRINCIPALS), default="ci", show_default=True,
              help="ci: runs `deployfw run`; codebuild: the build projects' service role; jenkins: an agent "
                   "running `deployfw build`; pipeline: a CodePipeline service role.")
@click.option("--json", "as_json", is_flag=True, help="Policy, trust policy, exceptions and provenance as one object.")
@click.option("--format", "fmt", type=click.Choice(["policy", "cloudformation", "terraform"]), default="policy",
              show_default=True, help="The policy document, a CloudFormation template, or Terraform JSON (.tf.json).")
@click.option("--account", metavar="ID", help="AWS account of the ARNs (default: ask STS).")
@click.option("--include-setup", is_flag=True,
              help="Also what first-time setup needs (create ECR repositories, `state init`).")
@click.option("--include-optional", is_flag=True,
              help="Also what deployfw works without, less well (e.g. the traffic split of canary deployments).")
@global_options
@click.pass_obj
def policy(
    app: App, principal: str, as_json: bool, fmt: str, account: str | None, include_setup: bool, include_optional: bool
) -> None:
    """Print the identity policy of one principal (every environment, or the one -e names).

    Resources are exact ARNs; a "*" appears only for actions IAM defines without a resource
    type, each listed with its reason (on stderr, or under "exceptions" with --json).
    """
    from deployfw.iam.policies import declarations
    from deployfw.iam.policy import cloudformation, terraform

    found = declarations(app, account=account)
    made = found.policy(principal, setup=include_setup, optional=include_optional)
    if not made.statements:
        click.echo(f"deployfw: no backend of this config needs anything as {principal!r}", err=True)
    if as_json:
        doc = {**made.to_json(), "account": found.account, "region": found.region, "envs": list(found.envs)}
        click.echo(json.dumps(doc, indent=2))
        return
    prefix = f"deployfw-{app.load_config().project or 'deployfw'}"
    if fmt == "cloudformation":
        click.echo(json.dumps(cloudformation([made], prefix), indent=2))
    elif fmt == "terraform":
        click.echo(json.dumps(terraform([made], prefix), indent=2))
    else:
        click.echo(json.dumps(made.document(), indent=2))
    for item in made.exceptions():
        click.echo(f"# Resource \"*\" in {item['sid']} ({', '.join(item['actions'])}): {item['reason']}", err=True)
    trust = made.trust()
    if trust is not None and fmt == "policy":
        click.echo(f"# {principal} is a role; its trust policy: {json.dumps(trust)}", err=True)
