"""Parse and run CodeBuild buildspec files (syntax version 0.2).

One runner serves the ``local`` build backend, the sandbox's CodeBuild
stand-in and ``deployfw build MODULE`` on a Jenkins agent, so a module's
``buildspec.yml`` behaves the same wherever it runs. Imports stay light:
boto3 is only loaded if a buildspec needs AWS to resolve its secrets.

    spec = load_buildspec(path.read_text(), str(path))
    result = run_buildspec(spec, workdir=module_dir, env={...}, emit=print)
"""

from __future__ import annotations

from deployfw.buildspec.loader import load_buildspec
from deployfw.buildspec.model import (
    PHASE_TYPES,
    ArtifactsSpec,
    Buildspec,
    BuildspecResult,
    EnvSpec,
    Phase,
    PhaseResult,
)
from deployfw.buildspec.runner import run_buildspec
from deployfw.buildspec.secrets import SecretReference, SecretResolver, parse_secret_reference

__all__ = [
    "PHASE_TYPES",
    "ArtifactsSpec",
    "Buildspec",
    "BuildspecResult",
    "EnvSpec",
    "Phase",
    "PhaseResult",
    "SecretReference",
    "SecretResolver",
    "load_buildspec",
    "parse_secret_reference",
    "run_buildspec",
]
