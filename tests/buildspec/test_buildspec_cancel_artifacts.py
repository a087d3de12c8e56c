"""Cancel stops the process group promptly; artifacts follow base-directory and discard-paths."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from buildspec_helpers import run


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting for its reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _wait_for(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def test_cancel_stops_the_build_promptly_and_kills_the_children(tmp_path: Path) -> None:
    cancel = threading.Event()
    pid_file = tmp_path / "child.pid"

    def cancel_when_started() -> None:
        _wait_for(pid_file)
        cancel.set()

    canceller = threading.Thread(target=cancel_when_started)
    canceller.start()
    started = time.monotonic()
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands:
              - sh -c 'echo $$ > child.pid; exec sleep 30'
              - echo never
          post_build:
            commands: [echo never]
        """,
        tmp_path,
        cancel=cancel,
    )
    elapsed = time.monotonic() - started
    canceller.join()
    assert done.result.status == "STOPPED"
    assert elapsed < 5
    assert done.phase_status() == {"INSTALL": "SUCCEEDED", "PRE_BUILD": "SUCCEEDED", "BUILD": "STOPPED"}
    assert "never" not in done.output
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_a_child_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    cancel = threading.Event()
    pid_file = tmp_path / "stubborn.pid"
    threading.Thread(target=lambda: (_wait_for(pid_file), cancel.set())).start()
    started = time.monotonic()
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands:
              - sh -c 'trap "" TERM; echo $$ > stubborn.pid; while :; do sleep 0.1; done'
        """,
        tmp_path,
        cancel=cancel,
    )
    assert done.result.status == "STOPPED"
    assert time.monotonic() - started < 6  # the SIGTERM grace, then SIGKILL
    stubborn = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while _alive(stubborn) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(stubborn)


def test_cancel_before_start_runs_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    done = run("version: 0.2\nphases:\n  build: {commands: [touch ran]}\n", tmp_path, cancel=cancel)
    assert done.result.status == "STOPPED"
    assert done.result.phases == []
    assert not (tmp_path / "ran").exists()


ARTIFACT_BUILD = """
    version: 0.2
    phases:
      build:
        commands:
          - mkdir -p build/out/lib build/out/conf
          - echo app > build/out/app.jar
          - echo lib > build/out/lib/dep.jar
          - echo cfg > build/out/conf/app.yaml
          - echo tmp > build/out/lib/scratch.tmp
          - echo top > README.txt
    artifacts:
%s
    """


def _relative(paths: list[Path], root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in paths)


def test_artifacts_keep_paths_under_base_directory(tmp_path: Path) -> None:
    out = tmp_path / "artifacts-out"
    work = tmp_path / "src"
    work.mkdir()
    done = run(
        ARTIFACT_BUILD
        % """
      files: ['**/*']
      base-directory: build/out
      exclude-paths: ['**/*.tmp']
      name: image-$CODEBUILD_BUILD_NUMBER
    """,
        work,
        artifacts_dir=out,
        env={"CODEBUILD_BUILD_NUMBER": "9"},
    )
    assert done.result.status == "SUCCEEDED"
    assert _relative(done.result.artifacts, out) == ["app.jar", "conf/app.yaml", "lib/dep.jar"]
    assert (out / "lib" / "dep.jar").read_text() == "lib\n"
    assert done.result.artifact_name == "image-9"
    assert "UPLOAD_ARTIFACTS" in done.entered


def test_artifacts_discard_paths_flattens(tmp_path: Path) -> None:
    out = tmp_path / "artifacts-out"
    work = tmp_path / "src"
    work.mkdir()
    done = run(
        ARTIFACT_BUILD
        % """
      files: ['build/out/**/*.jar', 'build/out/conf/*']
      discard-paths: yes
    """,
        work,
        artifacts_dir=out,
    )
    assert _relative(done.result.artifacts, out) == ["app.jar", "app.yaml", "dep.jar"]


def test_artifacts_without_an_output_dir_list_the_matched_sources(tmp_path: Path) -> None:
    done = run(ARTIFACT_BUILD % "      files: ['*.txt']\n", tmp_path)
    assert done.result.artifacts == [tmp_path / "README.txt"]


def test_no_matching_artifacts_fails_the_build(tmp_path: Path) -> None:
    done = run(ARTIFACT_BUILD % "      files: ['dist/*.zip']\n", tmp_path, artifacts_dir=tmp_path / "out")
    assert done.result.status == "FAILED"
    assert done.phase_status()["UPLOAD_ARTIFACTS"] == "FAILED"
    assert "no matching artifact paths" in done.result.error


def test_artifacts_are_uploaded_after_a_failed_build_but_not_after_a_failed_install(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    after_build = run(
        """
        version: 0.2
        phases:
          build: {commands: [echo partial > log.txt, "false"]}
        artifacts: {files: [log.txt]}
        """,
        tmp_path / "a",
        artifacts_dir=tmp_path / "out-a",
    )
    assert after_build.result.status == "FAILED"
    assert _relative(after_build.result.artifacts, tmp_path / "out-a") == ["log.txt"]
    (tmp_path / "b").mkdir()
    after_install = run(
        """
        version: 0.2
        phases:
          install: {commands: [echo partial > log.txt, "false"]}
        artifacts: {files: [log.txt]}
        """,
        tmp_path / "b",
        artifacts_dir=tmp_path / "out-b",
    )
    assert after_install.result.artifacts == []
    assert "UPLOAD_ARTIFACTS" not in after_install.entered
