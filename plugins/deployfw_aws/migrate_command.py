"""``deployfw migrate MODULE --to ecs-native``: the in-place controller switch, planned then applied.

A command of the AWS plugin (``deployfw_register_commands``). Without ``--yes`` it prints the
plan (:mod:`deployfw_aws.migrate`) and changes nothing; with ``--yes`` it makes the listener
changes, switches the controller and follows the service deployment the switch starts.
modules.yaml is never rewritten: the plan shows the deploy section to put there.
"""

from __future__ import annotations

import json

import click

from deployfw.errors import DeployfwError, InputError
from deployfw.session import Session

STRATEGIES = ("ROLLING", "BLUE_GREEN", "LINEAR", "CANARY")


@click.command("migrate")
@click.argument("module_name", metavar="MODULE")
@click.option("--to", "to", type=click.Choice(["ecs-native"]), required=True, help="The deploy backend to move to.")
@click.option(
    "--role",
    metavar="ROLE",
    help="IAM role (name or ARN) ECS assumes to move the listener rules - the ECS infrastructure role for load "
    "balancers. The principal that migrates and later deploys needs iam:PassRole on it.",
)
@click.option("--strategy", type=click.Choice(STRATEGIES), help="Default: what the CodeDeploy config did.")
@click.option("--yes", is_flag=True, help="Apply the plan; without it nothing changes.")
@click.option("--json", "as_json", is_flag=True, help="The plan (and outcome) as JSON.")
@click.pass_obj
def migrate(
    app: Session, module_name: str, to: str, role: str | None, strategy: str | None, yes: bool, as_json: bool
) -> None:
    """Switch MODULE's CODE_DEPLOY service to the ECS deployment controller in place (plan, then --yes)."""
    from deployfw.aws.clients import aws_for
    from deployfw.backends import ModuleJob
    from deployfw.context import make_context
    from deployfw_aws.deploy_common import target_of
    from deployfw_aws.migrate import NothingToMigrate, apply_listener_changes, plan_migration, switch
    from deployfw_aws.native import NativeDeploy

    config = app.load_config()
    module = config.modules.get(module_name)
    if module is None:
        raise InputError(f"unknown module {module_name!r}; modules: {', '.join(sorted(config.modules))}")
    if not module.is_service:
        raise InputError(f"{module_name!r} is a library: it has no service to migrate")
    app.connect(config)
    ctx = make_context(config)
    aws = aws_for(ctx)
    try:
        plan = plan_migration(aws, config, module, role=role or "", strategy=strategy)
    except NothingToMigrate as exc:
        click.echo(str(exc))
        return
    if as_json and not yes:
        click.echo(json.dumps(plan.to_json(), indent=2))
    elif not as_json:
        click.echo(plan.text())
    if not yes:
        if not as_json:
            click.echo("nothing changed; run again with --yes to apply")
        return
    apply_listener_changes(aws, plan)
    deployment = switch(aws, plan)
    job = ModuleJob(ctx=ctx, module=module, log=lambda line: click.echo(f"{module.name}: {line}", err=True))
    deployer = NativeDeploy(ctx)
    seconds = deployer.deadline(target_of(config, module), plan.strategy, plan.network)
    click.echo(
        f"{module.name}: switched to the ECS controller; following service deployment {deployment.rsplit('/', 1)[-1]}",
        err=True,
    )
    followed = deployer.follower(job, aws).follow(deployment, seconds)
    if as_json:
        click.echo(
            json.dumps(
                {
                    **plan.to_json(),
                    "service_deployment": deployment,
                    "status": followed.status,
                    "error": followed.error,
                },
                indent=2,
            )
        )
    if not followed.ok:
        raise DeployfwError(f"{module.name}: the switch's service deployment ended {followed.status}: {followed.error}")
    click.echo(
        f"{module.name}: service {plan.cluster}/{plan.service} now uses the ECS controller "
        f"({plan.strategy.describe()}); put the deploy section above into modules.yaml"
    )
