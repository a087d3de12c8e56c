"""Server AppSpec checks: every kind of mistake is reported with file, line and key before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployfw.errors import InputError
from deployfw_aws import server_appspec
from deployfw_aws.bundle import FolderView

GOOD = """\
version: 0.0
os: linux
files:
  - source: app
    destination: /opt/shop
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
      timeout: 60
  ApplicationStart:
    - location: scripts/start.sh
      timeout: 60
      runas: shop
  ValidateService:
    - location: scripts/check.sh
"""


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app/server.py").write_text("print('hi')\n")
    (tmp_path / "scripts").mkdir()
    for name in ("stop.sh", "start.sh", "check.sh"):
        (tmp_path / "scripts" / name).write_text("#!/bin/sh\n")
        (tmp_path / "scripts" / name).chmod(0o755)
    (tmp_path / "scripts/notexec.sh").write_text("#!/bin/sh\n")
    (tmp_path / "scripts/notexec.sh").chmod(0o644)
    return tmp_path


def check(text: str, bundle: Path) -> list[str]:
    _, problems = server_appspec.check(server_appspec.load(text, "appspec.yml"), FolderView(bundle))
    return [str(p) for p in problems]


def test_a_good_appspec_has_no_problem(bundle: Path) -> None:
    spec = server_appspec.checked(GOOD, "appspec.yml", FolderView(bundle))
    assert [s.location for s in spec.scripts()] == ["scripts/stop.sh", "scripts/start.sh", "scripts/check.sh"]
    assert spec.hooks["ApplicationStart"][0].runas == "shop"
    assert spec.files[0].source == "app" and spec.files[0].destination == "/opt/shop"


BAD = [
    ("version as a string", GOOD.replace("version: 0.0", 'version: "0.0"'),
     "appspec.yml:1: version: must be the number 0.0"),
    ("version missing", GOOD.replace("version: 0.0\n", ""), "appspec.yml: missing `version: 0.0`"),
    ("unknown os", GOOD.replace("os: linux", "os: ubuntu"), "appspec.yml:2: os: must be linux or windows"),
    ("files source not in the bundle", GOOD.replace("source: app", "source: build/libs"),
     "appspec.yml:4: files[0].source: 'build/libs' is not in the bundle"),
    ("relative destination", GOOD.replace("destination: /opt/shop", "destination: opt/shop"),
     "appspec.yml:5: files[0].destination: must be an absolute path"),
    ("files entry without source", GOOD.replace("  - source: app\n    destination", "  - destination"),
     "appspec.yml:4: files[0]: has no source"),
    ("hook name misspelt", GOOD.replace("ValidateService:", "ValidateServce:"),
     "appspec.yml:14: hooks.ValidateServce: not an EC2/on-premises lifecycle event"),
    ("ECS hook name", GOOD.replace("ValidateService:", "AfterAllowTestTraffic:"),
     "appspec.yml:14: hooks.AfterAllowTestTraffic: not an EC2/on-premises lifecycle event (an ECS/Lambda"),
    ("reserved event", GOOD.replace("ApplicationStop:", "DownloadBundle:"),
     "appspec.yml:7: hooks.DownloadBundle: DownloadBundle is performed by the CodeDeploy agent itself"),
    ("hooks out of order", GOOD.replace("ApplicationStop:", "BeforeAllowTraffic:"),
     "appspec.yml:10: hooks.ApplicationStart: listed after BeforeAllowTraffic but runs before it"),
    ("script missing", GOOD.replace("scripts/check.sh", "scripts/verify.sh"),
     "appspec.yml:15: hooks.ValidateService[0].location: 'scripts/verify.sh' is not in the bundle"),
    ("script not executable", GOOD.replace("scripts/check.sh", "scripts/notexec.sh"),
     "appspec.yml:15: hooks.ValidateService[0].location: 'scripts/notexec.sh' is not executable"),
    ("script without location", GOOD.replace("    - location: scripts/check.sh", "    - timeout: 30"),
     "appspec.yml:15: hooks.ValidateService[0]: a script needs a location"),
    ("timeout over the limit", GOOD.replace("timeout: 60\n      runas", "timeout: 7200\n      runas"),
     "appspec.yml:12: hooks.ApplicationStart[0].timeout: 7200 s is more than CodeDeploy allows (3600 s per event)"),
    ("timeout not a number", GOOD.replace("timeout: 60\n      runas", "timeout: soon\n      runas"),
     "appspec.yml:12: hooks.ApplicationStart[0].timeout: must be a whole number of seconds above 0"),
    ("runas names no user", GOOD.replace("runas: shop", "runas: ''"),
     "appspec.yml:13: hooks.ApplicationStart[0].runas: must name a user"),
    ("bad file_exists_behavior", GOOD + "file_exists_behavior: REPLACE\n",
     "appspec.yml:16: file_exists_behavior: must be one of DISALLOW, OVERWRITE, RETAIN"),
    ("unknown top-level key", GOOD + "hook:\n  x: 1\n", "appspec.yml:16: hook: unknown key"),
    ("an ECS appspec", "version: 0.0\nResources:\n  - TargetService: {}\n",
     "appspec.yml:2: Resources: this is an ECS or Lambda AppSpec"),
    ("duplicate hook", GOOD + "  ValidateService:\n    - location: scripts/check.sh\n",
     "appspec.yml:16: hooks.ValidateService: duplicate key"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD], ids=[i for i, _, _ in BAD])
def test_each_kind_of_mistake_is_located(bundle: Path, text: str, expected: str) -> None:
    problems = check(text, bundle)
    assert any(p.startswith(expected) for p in problems), problems


def test_event_timeouts_add_up_to_the_limit(bundle: Path) -> None:
    text = GOOD.replace("    - location: scripts/check.sh\n",
                        "    - location: scripts/check.sh\n      timeout: 2000\n"
                        "    - location: scripts/start.sh\n      timeout: 2000\n")  # fmt: skip
    assert any("add up to 4000 s" in p and p.startswith("appspec.yml:14: hooks.ValidateService") for p in
               check(text, bundle))  # fmt: skip


def test_syntax_error_names_the_line(bundle: Path) -> None:
    with pytest.raises(InputError) as caught:
        server_appspec.checked("version: 0.0\nos: [linux\n", "appspec.yml", FolderView(bundle))
    assert str(caught.value).startswith("appspec.yml:")
