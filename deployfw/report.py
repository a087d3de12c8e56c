"""The outcome of a run: JSON report (DESIGN.md shape), JUnit XML and the summary table.

One :class:`ModuleReport` per selected service module; libraries never appear.
A deployment that rolled back is ``failed`` - the user sees one outcome for
"did not go out", whatever the mechanism.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployfw import redact


@dataclass
class StageReport:
    stage: str
    status: str  # succeeded | failed | skipped
    seconds: float = 0.0
    error: str | None = None


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

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "image": self.image,
            "build": self.build,
            "deploy": self.deploy,
            "error": self.error,
            "stages": [s.__dict__ for s in self.stages],
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
            "modules": [m.to_json() for m in self.modules],
            "state": self.state,
            "pins": list(self.pins),
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact.mask(json.dumps(self.to_json(), indent=2)) + "\n", encoding="utf-8")

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
