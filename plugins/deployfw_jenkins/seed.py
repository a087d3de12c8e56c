"""What the ``jenkins`` build backend needs in the sandbox: one job per module that builds it.

The job runs ``deployfw build MODULE`` - what the per-module job example of the shipped
Jenkinsfile runs - and defines every parameter the backend sends, so none is dropped.
"""

from __future__ import annotations

import sys

from deployfw.config import Config, Module
from deployfw.seeding import JenkinsJob, Seed
from deployfw_jenkins.client import RUN_ID_PARAMETER
from deployfw_jenkins.jobspec import job_name, parameter_names


def seeds(config: Config, module: Module) -> list[Seed]:
    if module.build is None or module.build.backend != "jenkins":
        return []
    # -P: the job's working directory (the repository) must not shadow the installed deployfw.
    command = [sys.executable, "-P", "-m", "deployfw", "-c", str(config.file)]
    if config.env:
        command += ["-e", config.env]
    defaults = dict.fromkeys([*parameter_names(module), RUN_ID_PARAMETER], "")
    defaults["DEPLOYFW_MODULE"] = module.name
    return [JenkinsJob(module.name, job_name(module), [*command, "build", module.name], defaults)]
