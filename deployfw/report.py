"""The outcome of a run: JSON report (DESIGN.md shape), JUnit XML and the summary table.

One :class:`ModuleReport` per selected service module; libraries never appear.
A deployment that rolled back is ``failed`` - the user sees one outcome for
"did not go out", whatever the mechanism.

Timing is absolute (ISO-8601 UTC, see :func:`utc_stamp`) as well as relative
(``seconds``): a page that draws the run as parallel timelines must place every
stage and every moment inside a stage (``timeline``: traffic steps, rollout
states, rollbacks) on one clock. A failed stage carries the last lines its
module logged in that stage (``log_tail``), bounded and already masked, because
the reason a deploy failed is usually in the log, not in the one-line error.
docs/report.md documents every field.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployfw import redact
from deployfw.errors import InputError, Problem

# A failed stage's log tail: the last lines it logged, each cut to a readable width.
LOG_TAIL_LINES = 40
LOG_TAIL_WIDTH = 400


def utc_stamp(epoch: float) -> str:
    """``epoch`` as the report writes times: ISO-8601 UTC with milliseconds, e.g. ``2026-12-01T09:30:00.125Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON run report written by ``run --report``; InputError (file, line) for anything else."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(Problem(name, None, None, "file not found")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(name, None, None, f"cannot read: {exc}")) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(name, exc.lineno, None, f"not JSON: {exc.msg} (column {exc.colno})")) from None
    if not isinstance(data, dict) or not isinstance(data.get("modules"), list):
        raise InputError(Problem(name, 1, None, "not a deployfw run report: expected an object with a modules list"))
    for index, module in enumerate(data["modules"]):
        if not isinstance(module, dict) or not isinstance(module.get("name"), str):
            message = "not a deployfw run report: each module must be an object with a name"
            raise InputError(Problem(name, None, f"modules.{index}", message))
    return data


def masked(value: Any) -> Any:
    """``value`` (JSON data) with :func:`deployfw.redact.mask` applied to every string, keys included.

    Masking each string rather than the serialised text keeps the result valid JSON
    whatever a secret looks like.
    """
    if isinstance(value, str):
        return redact.mask(value)
    if isinstance(value, dict):
        return {redact.mask(str(k)): masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


@dataclass
class StageReport:
    stage: str
    status: str  # succeeded | failed | skipped
    seconds: float = 0.0
    error: str | None = None
    started_at: str | None = None  # utc_stamp; None when the stage never ran
    ended_at: str | None = None
    log_tail: list[str] | None = None  # failed stages only


@dataclass
class ModuleReport:
    name: str
    status: str = "skipped"  # succeeded | failed | skipped
    reason: str = ""
    image: str | None = None
    build: dict[str, Any] = field(default_factory=dict)
    deploy: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    stages: list[StageReport] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # modules it waited for (the plan's dependencies)
    started_at: str | None = None  # when the module left the queue; None when it never did
    ended_at: str | None = None
    # Moments inside stages, in order: {"at": utc_stamp, "stage", "kind", ...fields} (ModuleJob.mark).
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "image": self.image,
            "build": self.build,
            "deploy": self.deploy,
            "error": self.error,
            "stages": [dict(s.__dict__) for s in self.stages],
            "after": list(self.after),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "timeline": list(self.timeline),
        }


@dataclass
class RunReport:
    env: str | None
    base: str | None
    head: str
    run_id: str
    modules: list[ModuleReport]
    ci_url: str | None = None
    seconds: float = 0.0
    started_at: str | None = None
    ended_at: str | None = None
    region: str | None = None
    aws_endpoint: str | None = None  # a custom endpoint (the sandbox): AWS console links would lead nowhere
    repository_url: str | None = None  # the repository's web address when CI names it, for commit links
    # Where the deploy history lives (backend, location, shared, CI, the warning when CI agents
    # lose it) and the rollback pins this run held to, released or kept.
    state: dict[str, Any] | None = None
    pins: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(m.status == "failed" for m in self.modules) or any(
            m.status == "skipped" and m.error for m in self.modules
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "failed" if self.failed else "succeeded",
            "env": self.env,
            "base": self.base,
            "head": self.head,
            "run_id": self.run_id,
            "ci_url": self.ci_url,
            "seconds": round(self.seconds, 3),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "region": self.region,
            "aws_endpoint": self.aws_endpoint,
            "repository_url": self.repository_url,
            "modules": [m.to_json() for m in self.modules],
            "state": self.state,
            "pins": list(self.pins),
        }

    def masked_json(self) -> dict[str, Any]:
        """:meth:`to_json` with every registered secret masked: what any file or page may show."""
        return masked(self.to_json())

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.masked_json(), indent=2) + "\n", encoding="utf-8")

    def write_junit(self, path: Path) -> None:
        """One test case per module and stage, as Jenkins ``junit`` and CodeBuild report groups read it."""
        cases = [(m, s) for m in self.modules for s in m.stages]
        suite = ET.Element(
            "testsuite",
            name=f"deployfw{'.' + self.env if self.env else ''}",
            tests=str(len(cases)),
            failures=str(sum(1 for _, s in cases if s.status == "failed")),
            skipped=str(sum(1 for _, s in cases if s.status == "skipped")),
            time=f"{self.seconds:.3f}",
        )
        # Jenkins and CodeBuild show suite properties next to the results: the way back to the run.
        properties = ET.SubElement(suite, "properties")
        for name, value in (("run_id", self.run_id), ("head", self.head), ("base", self.base), ("ci_url", self.ci_url)):
            if value:
                ET.SubElement(properties, "property", name=name, value=value)
        for module, stage in cases:
            case = ET.SubElement(
                suite, "testcase", classname=f"deployfw.{module.name}", name=stage.stage, time=f"{stage.seconds:.3f}"
            )
            if stage.status == "failed":
                failure = ET.SubElement(case, "failure", message=redact.mask(stage.error or "failed"))
                failure.text = redact.mask(stage.error or "failed")
            elif stage.status == "skipped":
                ET.SubElement(case, "skipped", message=redact.mask(stage.error or module.reason or "skipped"))
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)

    def summary(self) -> str:
        """A fixed-width table for the end of the log."""
        rows = [("MODULE", "STATUS", "IMAGE", "DEPLOYMENT", "NOTE")]
        for m in self.modules:
            image = (m.image or "-").rsplit("@", 1)[-1][:19]
            note = m.error or m.reason
            if m.build.get("reused"):
                note = f"build reused; {note}"
            rows.append((m.name, m.status, image, str(m.deploy.get("id") or "-"), redact.mask(note or "")))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
        verdict = "FAILED" if self.failed else "SUCCEEDED"
        return "\n".join([*lines, f"run {self.run_id} {verdict} in {self.seconds:.1f}s"])
