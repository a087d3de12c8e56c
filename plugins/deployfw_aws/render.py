"""Render a module's task definition and AppSpec, and check them before any AWS call.

One function serves three callers, so they can never disagree: ``deployfw render``
and ``run --stop-after push --artifacts-dir`` (CodePipeline artifacts), the
deployers (what they register and deploy), and ``plan``'s preflight (the same
checks with a stand-in image). Every mistake the hand-built pipeline only met at
deploy time is an :class:`~deployfw.errors.InputError` here, one located problem
each, all reported together:

- a template file that does not exist, invalid JSON/YAML, an unknown placeholder;
- the task definition against botocore's RegisterTaskDefinition input shape;
- AppSpec ContainerName/ContainerPort against the task definition's containers;
- ``health_check_path`` against the path the container's healthCheck requests;
- ``ecs-nlb`` with a deployment config other than all-at-once (ecs-native is the backend for canary
  and linear behind an NLB);
- a zipped CodePipeline artifact over CodePipeline's 3 MB limit.

The image goes into the ``container`` option's container, else the first one, by
digest, whatever image the template names.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployfw.errors import InputError, Problem
from deployfw_aws import appspec as appspecs
from deployfw_aws import taskdef as taskdefs
from deployfw_aws.deploy_common import ECS_ALL_AT_ONCE, Target, target_of
from deployfw_aws.located import load_json, load_yaml, problem
from deployfw_aws.option_lines import option_problem
from deployfw_aws.placeholders import TASK_DEFINITION_PLACEHOLDER, fill, used

if TYPE_CHECKING:
    from deployfw.backends import ModuleJob
    from deployfw.config import Config, Module

ARTIFACT_LIMIT = 3 * 1024 * 1024  # CodePipeline reads at most 3 MB of a deploy action's input artifact
PREFLIGHT_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/preflight@sha256:" + "0" * 64
PREFLIGHT_ACCOUNT = "000000000000"
_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")


@dataclass(frozen=True)
class Rendered:
    """A module's filled, checked templates: what gets registered, deployed and written out."""

    target: Target
    image_uri: str
    container: str
    container_port: int | None
    taskdef: dict[str, Any]
    appspec: appspecs.AppSpec | None

    @property
    def module(self) -> str:
        return self.target.module

    @property
    def family(self) -> str:
        return str(self.taskdef.get("family", ""))

    def taskdef_json(self) -> str:
        return json.dumps(self.taskdef, indent=2) + "\n"

    def appspec_text(self, task_definition: str = TASK_DEFINITION_PLACEHOLDER) -> str | None:
        """The AppSpec with TaskDefinition set (CodePipeline's placeholder unless an ARN is given)."""
        return self.appspec.render(task_definition) if self.appspec else None

    def artifacts(self) -> dict[str, str]:
        """File name -> content of the CodePipeline artifact (appspec.yaml only for CodeDeploy)."""
        files = {"taskdef.json": self.taskdef_json()}
        text = self.appspec_text()
        if text is not None:
            files["appspec.yaml"] = text
        files["imagedefinitions.json"] = json.dumps([{"name": self.container, "imageUri": self.image_uri}]) + "\n"
        files["imageDetail.json"] = json.dumps({"ImageURI": self.image_uri}) + "\n"
        return files


def needs_account_id(config: Config, module: Module) -> bool:
    """Whether the templates mention ``${ACCOUNT_ID}`` (deployers skip the STS call otherwise)."""
    target = target_of(config, module)
    for name in (target.taskdef, target.appspec):
        if name and "ACCOUNT_ID" in used(_read_text(config.root / name) or ""):
            return True
    return False


def render_module(
    config: Config, module: Module, image_uri: str, *, account_id: str | None, region: str | None
) -> Rendered:
    """Fill and check ``module``'s templates for ``image_uri``; raise InputError with every problem.

    ``account_id``/``region`` may be None: an ECR image URI supplies both when a template needs them.
    """
    target = target_of(config, module)
    problems: list[Problem] = []
    ecr = _ECR_HOST.match(image_uri)  # an ECR image names its account and region: `render` needs no AWS call
    values: dict[str, str | None] = {
        "IMAGE": image_uri,
        "IMAGE1_NAME": image_uri,
        "ACCOUNT_ID": account_id or (ecr.group(1) if ecr else None),
        "REGION": region or config.region or (ecr.group(2) if ecr else None),
        "ENV": config.env,
        "MODULE": module.name,
        "SERVICE": target.service,
        "CLUSTER": target.cluster,
        "CONTAINER": target.container or module.name,
        "CONTAINER_PORT": str(target.container_port) if target.container_port is not None else None,
        "FAMILY": target.family,
    }

    def missing(name: str) -> str:
        return {
            "ENV": "needs an environment (--env)",
            "ACCOUNT_ID": "needs the AWS account id (deployfw render: --account-id, or an ECR image URI)",
            "REGION": "needs a region (modules.yaml region)",
            "CONTAINER_PORT": f"needs {target.option_key('container_port')}",
        }.get(name, "has no value here")

    # -- task definition ---------------------------------------------------------------
    text = _template(config, target, "taskdef", problems)
    if text is None:
        raise InputError(problems)
    filled = fill(text, target.taskdef, values, json_strings=True, missing=missing)
    problems.extend(filled.problems)
    doc = load_json(filled.text, target.taskdef)  # raises on a syntax error: nothing else is checkable
    params = taskdefs.strip_output_only(doc.data) if isinstance(doc.data, dict) else doc.data
    problems.extend(taskdefs.check_shape(doc, params))
    if isinstance(params, dict):
        problems.extend(taskdefs.check_rules(doc, params, problems))
    if not isinstance(params, dict):
        raise InputError(problems)
    chosen = taskdefs.find_container(params, target.container)
    container_name, container_port = target.container or module.name, target.container_port
    ports: dict[str, list[int]] = {
        str(c.get("name")): taskdefs.container_ports(c) for c in taskdefs.containers(params)
    }
    if chosen is None:
        have = ", ".join(repr(n) for n in taskdefs.names(params)) or "none"
        where = problem(doc, ("containerDefinitions",), "")
        message = (
            f"{target.option_key('container')} is {target.container!r}, but {target.taskdef} has containers {have}"
            if target.container
            else "the task definition has no containers"
        )
        problems.append(Problem(where.file, where.line, where.key, message))
    else:
        index, container = chosen
        container_name = str(container.get("name"))
        container["image"] = image_uri
        mapped = taskdefs.container_ports(container)
        if container_port is not None and mapped and container_port not in mapped:
            problems.append(
                problem(doc, ("containerDefinitions", index, "portMappings"),
                        f"{target.option_key('container_port')} is {container_port}, but container "
                        f"{container_name!r} maps {', '.join(map(str, mapped))}")
            )
        if container_port is None and mapped:
            container_port = mapped[0]
        problems.extend(_health_check(doc, target, index, container))

    # -- appspec -----------------------------------------------------------------------
    spec: appspecs.AppSpec | None = None
    if target.uses_codedeploy:
        spec = _appspec(config, target, values | {"CONTAINER": container_name}, missing, problems)
        if spec is not None:
            problems.extend(appspecs.check_against(spec, ports, target.taskdef))
            if (
                target.container_port is not None
                and spec.container_port is not None
                and spec.container_port != target.container_port
            ):
                problems.append(
                    problem(spec.doc, spec.lb_key("ContainerPort"),
                            f"appspec says ContainerPort {spec.container_port}, but "
                            f"{target.option_key('container_port')} is {target.container_port}")
                )
            if spec.container_port is not None and spec.container_name == container_name:
                container_port = spec.container_port
    problems.extend(_nlb_config(config, target))
    if problems:
        raise InputError(problems)

    rendered = Rendered(target, image_uri, container_name, container_port, params, spec)
    size = artifact_size(rendered)
    if size > ARTIFACT_LIMIT:
        raise InputError(
            Problem(target.taskdef, None, "artifact",
                    f"the zipped CodePipeline artifact (taskdef.json, appspec.yaml, imagedefinitions.json, "
                    f"imageDetail.json) is {size / 1024 / 1024:.1f} MB; CodePipeline's ECS deploy actions "
                    f"read at most {ARTIFACT_LIMIT // 1024 // 1024} MB")
        )
    return rendered


def render_job(job: ModuleJob, account_id: Callable[[], str]) -> Rendered:
    """What a deployer registers: ``job``'s image by digest; the account is looked up only if a template needs it."""
    config, module = job.ctx.config, job.module
    if job.image_uri is None:
        raise InputError(Problem(None, None, f"modules.{module.name}", "no image digest to deploy"))
    account = account_id() if needs_account_id(config, module) else None
    return render_module(config, module, job.image_uri, account_id=account, region=config.region or job.ctx.region)


def preflight_problems(config: Config, module: Module) -> list[Problem]:
    """Every render check that needs no AWS: a stand-in image and account, the config's region."""
    try:
        region = config.region or "us-east-1"
        render_module(config, module, PREFLIGHT_IMAGE, account_id=PREFLIGHT_ACCOUNT, region=region)
    except InputError as exc:
        return list(exc.problems)
    return []


def artifact_size(rendered: Rendered) -> int:
    """Bytes of the artifact zipped the way CodeBuild zips it (deflate)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in rendered.artifacts().items():
            archive.writestr(name, content)
    return buffer.tell()


def write_artifacts(rendered: Rendered, out_dir: Path | str) -> list[Path]:
    """Write taskdef.json, appspec.yaml (CodeDeploy backends), imagedefinitions.json and imageDetail.json."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered.artifacts().items():
        path = folder / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _template(config: Config, target: Target, option: str, problems: list[Problem]) -> str | None:
    name = getattr(target, option)
    path = config.root / name
    if not path.is_file():
        module = config.modules[target.module]
        if f"deploy.{option}" in module.origins:  # named in modules.yaml: at the line that names it
            message = f"{option} template {name} not found (looked in {module.path}/ first, then the repository root)"
            problems.append(config.problem(module.origin("deploy", option), message))
        else:  # the default, which no key names: at the module's deploy section (or the module)
            problems.append(
                config.problem(("modules", target.module, "deploy", option),
                               f"no {option} template: neither {name} nor {name.rsplit('/', 1)[-1]} at the "
                               f"repository root exists; add one or set deploy.{option}")
            )
        return None
    text = _read_text(path)
    if text is None:
        problems.append(Problem(name, None, None, "cannot read (not UTF-8 text?)"))
    return text


def _appspec(
    config: Config, target: Target, values: dict[str, str | None], missing: Any, problems: list[Problem]
) -> appspecs.AppSpec | None:
    text = _template(config, target, "appspec", problems)
    if text is None or target.appspec is None:
        return None
    filled = fill(text, target.appspec, values, keep=frozenset({TASK_DEFINITION_PLACEHOLDER}), missing=missing)
    problems.extend(filled.problems)
    try:
        doc = load_yaml(filled.text, target.appspec)
    except InputError as exc:
        problems.extend(exc.problems)
        return None
    spec, found = appspecs.read(doc)
    problems.extend(found)
    return spec


def _health_check(doc: Any, target: Target, index: int, container: dict[str, Any]) -> list[Problem]:
    """The container's own health check must probe the path the load balancer is told to probe."""
    wanted = target.health_check_path
    paths = taskdefs.health_check_paths(container)
    if not wanted or not paths or wanted in paths:
        return []
    return [
        problem(doc, ("containerDefinitions", index, "healthCheck", "command"),
                f"healthCheck requests {', '.join(paths)}, but {target.option_key('health_check_path')} "
                f"is {wanted}; one of them checks the wrong endpoint")
    ]


def _nlb_config(config: Config, target: Target) -> list[Problem]:
    if target.backend != "ecs-nlb" or target.deployment_config in (None, ECS_ALL_AT_ONCE):
        return []
    return [
        option_problem(config, target.module, "deploy", "deployment_config",
                       f"{target.deployment_config} is not possible behind a Network Load Balancer: CodeDeploy "
                       f"accepts only {ECS_ALL_AT_ONCE} there. For canary or linear behind an NLB use the ecs-native "
                       "backend (strategy CANARY or LINEAR); ecs-bluegreen does them behind an ALB")
    ]
