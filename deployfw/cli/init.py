"""``deployfw init``: write modules.yaml and per-service templates from the Gradle or Maven build."""

from __future__ import annotations

from pathlib import Path

import click

from deployfw.cli.app import App
from deployfw.configmodel import CONFIG_NAME


@click.command("init")
@click.option("--force", is_flag=True, help="Overwrite modules.yaml and templates that already exist.")
@click.pass_obj
def command(app: App, force: bool) -> None:
    """Infer modules.yaml (services, libraries, graph, shared paths) and per-service templates from the build."""
    from deployfw import scaffold

    root = Path(app.config_path).resolve().parent if app.config_path else Path.cwd()
    planned = scaffold.plan(root)
    echo = click.echo
    echo(f"{planned.tool.capitalize()} build in {root}: {len(planned.modules)} modules")
    for module in planned.modules:
        deps = f"; depends on {', '.join(module.dependencies)}" if module.dependencies else ""
        echo(f"  {module.kind:<8} {module.name:<24} {module.path}  ({module.why}{deps})")
    echo(f"  shared paths: {', '.join(planned.shared_paths) or 'none'}")
    for note in planned.notes:
        echo(f"  not followed (computed in the build): {note}")
    if planned.existing_config and not force:
        if planned.proposed:
            echo(f"\n{CONFIG_NAME} exists and is kept; add these modules to it (or rerun with --force):")
            echo(scaffold.proposal(planned.proposed), nl=False)
        else:
            echo(f"\n{CONFIG_NAME} exists and is kept; it already has every module of the build.")
    written, kept = scaffold.write(planned, force=force)
    if written:
        echo("\nwrote " + ", ".join(written))
    kept_templates = [k for k in kept if k != CONFIG_NAME]
    if kept_templates:
        echo("kept (exist; --force overwrites): " + ", ".join(kept_templates))
    if planned.todo:
        echo("\nfill in before the first run:")
        for item in planned.todo:
            echo(f"  - {item}")
