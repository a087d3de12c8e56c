"""The typed, validated form of a buildspec and the result of running one.

The loader turns YAML into these frozen values once, so the runner never has
to re-check types or guess at defaults; the result types are what every
caller (the ``local`` build backend, the sandbox's CodeBuild, ``deployfw
build``) reads back, so they use CodeBuild's own vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

#: Buildspec phase keys in the order CodeBuild runs them, with the phase type
#: CodeBuild reports for each (``BatchGetBuilds`` ``phases[].phaseType``).
PHASE_TYPES: Mapping[str, str] = {
    "install": "INSTALL",
    "pre_build": "PRE_BUILD",
    "build": "BUILD",
    "post_build": "POST_BUILD",
}
UPLOAD_ARTIFACTS = "UPLOAD_ARTIFACTS"

OnFailure = Literal["ABORT", "CONTINUE"]
Status = Literal["SUCCEEDED", "FAILED", "STOPPED"]


@dataclass(frozen=True)
class Phase:
    """One entry under ``phases``.

    ``on_failure`` is ``None`` when the buildspec does not say: CodeBuild then
    follows its phase-transition table rather than plain ABORT (a failed
    ``build`` still runs ``post_build``), so the difference must be kept.
    """

    name: str
    commands: tuple[str, ...] = ()
    finally_commands: tuple[str, ...] = ()
    on_failure: OnFailure | None = None
    run_as: str | None = None
    runtime_versions: Mapping[str, str] = field(default_factory=dict)
    line: int | None = None

    @property
    def phase_type(self) -> str:
        """CodeBuild's name for this phase (``PRE_BUILD`` for ``pre_build``)."""
        return PHASE_TYPES[self.name]


@dataclass(frozen=True)
class EnvSpec:
    """The ``env`` section: where each build variable comes from."""

    shell: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    parameter_store: Mapping[str, str] = field(default_factory=dict)
    secrets_manager: Mapping[str, str] = field(default_factory=dict)
    exported_variables: tuple[str, ...] = ()
    git_credential_helper: bool = False


@dataclass(frozen=True)
class ArtifactsSpec:
    """The primary ``artifacts`` section (secondary artifacts are not collected)."""

    files: tuple[str, ...]
    name: str | None = None
    base_directory: str | None = None
    discard_paths: bool = False
    exclude_paths: tuple[str, ...] = ()
    enable_symlinks: bool = False


@dataclass(frozen=True)
class Buildspec:
    """A validated buildspec (version 0.2).

    ``ignored`` names sections that are valid CodeBuild syntax but that a
    local run cannot honour (``cache``, ``reports``, ``run-as`` ...); the
    runner says so in the log instead of failing the build over them.
    """

    filename: str
    version: str
    phases: tuple[Phase, ...]
    env: EnvSpec = field(default_factory=EnvSpec)
    artifacts: ArtifactsSpec | None = None
    ignored: tuple[str, ...] = ()

    def phase(self, name: str) -> Phase | None:
        """The phase called ``name`` (``build``), or ``None`` when not declared."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        return None


@dataclass(frozen=True)
class PhaseResult:
    """How one phase ended; ``name`` is CodeBuild's phase type (``BUILD``)."""

    name: str
    status: Status
    started: datetime
    ended: datetime
    exit_code: int | None = None

    @property
    def duration_seconds(self) -> float:
        return (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class BuildspecResult:
    """The outcome of :func:`run_buildspec`.

    ``error`` names the phase and command that failed first (masked), so a
    report can say why without the caller parsing the log. ``artifacts`` are
    the copied files when an ``artifacts_dir`` was given, otherwise the
    matched source files.
    """

    status: Status
    phases: list[PhaseResult]
    exported_variables: dict[str, str]
    artifacts: list[Path]
    error: str | None = None
    artifact_name: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"
