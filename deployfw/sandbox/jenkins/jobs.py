"""Jobs and folders: the item tree a Jenkins controller serves under ``job/a/job/b/``.

A job here is a parameterised pipeline job whose "pipeline" is one real command
(argv, cwd, environment), so a build's console and result are produced by real work
rather than scripted text. Like the shell step's ``unstableReturn``, one exit code may
be declared to mark the build UNSTABLE instead of FAILURE. Parameters follow Jenkins's rules: only parameters the job
defines are read from a trigger, and their defaults fill the gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deployfw.errors import InputError

JOB_CLASS = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
FOLDER_CLASS = "com.cloudbees.hudson.plugins.folder.Folder"


@dataclass
class Job:
    """One buildable job: what it runs and which parameters it accepts."""

    full_name: str
    command: tuple[str, ...]
    parameters: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    module: str | None = None
    disabled: bool = False
    unstable_return: int | None = None
    next_build_number: int = 1

    @property
    def name(self) -> str:
        """The short name (last path component), as Jenkins's ``name`` field."""
        return self.full_name.rsplit("/", 1)[-1]

    @property
    def parameterized(self) -> bool:
        """True if the job defines parameters (``buildWithParameters`` is allowed)."""
        return bool(self.parameters)

    def resolve_parameters(self, given: Mapping[str, str]) -> dict[str, str]:
        """The values a build runs with: defined names only, defaults fill the gaps."""
        return {name: given.get(name, default) for name, default in self.parameters.items()}


@dataclass
class Folder:
    """A folder item: it only holds other items."""

    full_name: str
    children: dict[str, Folder | Job] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The short name; the root folder's is empty."""
        return self.full_name.rsplit("/", 1)[-1]


def add_job(
    root: Folder,
    full_name: str,
    *,
    command: Sequence[str],
    parameters: Mapping[str, str],
    cwd: str | None,
    env: Mapping[str, str] | None,
    module: str | None,
    disabled: bool,
    unstable_return: int | None = None,
) -> Job:
    """Create (or replace) the job ``a/b/c``, creating folders ``a`` and ``a/b`` on the way."""
    parts = [p for p in full_name.split("/")]
    if not parts or any(not p for p in parts):
        raise InputError(f"bad Jenkins job name {full_name!r}: empty path component")
    if not command:
        raise InputError(f"Jenkins job {full_name!r}: command must not be empty")
    folder = root
    for depth, part in enumerate(parts[:-1]):
        child = folder.children.get(part)
        if child is None:
            child = Folder("/".join(parts[: depth + 1]))
            folder.children[part] = child
        if not isinstance(child, Folder):
            raise InputError(f"Jenkins job {full_name!r}: {child.full_name!r} is a job, not a folder")
        folder = child
    existing = folder.children.get(parts[-1])
    if isinstance(existing, Folder):
        raise InputError(f"Jenkins job {full_name!r}: a folder of that name exists")
    job = Job(
        full_name="/".join(parts),
        command=tuple(command),
        parameters=dict(parameters),
        cwd=cwd,
        env=dict(env or {}),
        module=module,
        disabled=disabled,
        unstable_return=unstable_return,
        next_build_number=existing.next_build_number if existing else 1,
    )
    folder.children[parts[-1]] = job
    return job


def find_item(root: Folder, names: Sequence[str]) -> Folder | Job | None:
    """The item at folder path ``names`` (``[]`` is the root), or ``None``."""
    item: Folder | Job = root
    for name in names:
        if not isinstance(item, Folder) or name not in item.children:
            return None
        item = item.children[name]
    return item


def walk_jobs(folder: Folder) -> list[Job]:
    """Every job below ``folder``, depth first."""
    jobs: list[Job] = []
    for child in folder.children.values():
        if isinstance(child, Job):
            jobs.append(child)
        else:
            jobs.extend(walk_jobs(child))
    return jobs
