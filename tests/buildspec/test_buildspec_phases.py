"""run_buildspec: phase order, shell sessions, failure transitions, variables."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from buildspec_helpers import run

from deployfw.buildspec import load_buildspec, run_buildspec
from deployfw.errors import InputError


def test_phases_run_in_codebuild_order_whatever_the_file_order(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          post_build: {commands: [echo post]}
          build: {commands: [echo build]}
          install: {commands: [echo install]}
          pre_build: {commands: [echo pre]}
        """,
        tmp_path,
    )
    assert done.result.status == "SUCCEEDED"
    assert done.output == ["install", "pre", "build", "post"]
    assert done.entered == ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]
    assert [p.name for p in done.result.phases] == ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]
    assert all(p.status == "SUCCEEDED" and p.ended >= p.started for p in done.result.phases)
    assert done.result.error is None


def test_log_has_codebuild_markers(tmp_path: Path) -> None:
    done = run("version: 0.2\nphases:\n  build:\n    commands: [echo hi]\n", tmp_path)
    markers = [line for line in done.lines if line.startswith("[Container]")]
    stamp = r"\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} "
    assert any(re.match(stamp + "Entering phase BUILD$", m) for m in markers)
    assert any(re.match(stamp + "Running command echo hi$", m) for m in markers)
    assert any(re.match(stamp + "Phase complete: BUILD State: SUCCEEDED$", m) for m in markers)
    # Output follows the command that printed it.
    running = next(i for i, line in enumerate(done.lines) if "Running command echo hi" in line)
    assert done.lines[running + 1] == "hi"


def test_commands_of_a_phase_share_one_shell_session(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands:
              - cd sub
              - pwd
              - export TOKEN_A=one
              - LOCAL_B=two
              - echo "$TOKEN_A $LOCAL_B"
              - echo "$$" > ../pid1
              - echo "$$" > ../pid2
        """,
        tmp_path,
    )
    assert done.result.status == "SUCCEEDED"
    assert done.output == [str(tmp_path / "sub"), "one two"]
    assert (tmp_path / "pid1").read_text() == (tmp_path / "pid2").read_text()


def test_exported_environment_persists_across_phases(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          install:
            commands:
              - export FROM_INSTALL=yes
              - echo "$$" > pid-install
          build:
            commands:
              - echo "carried=$FROM_INSTALL"
              - echo "$$" > pid-build
        """,
        tmp_path,
    )
    assert "carried=yes" in done.output
    # A new shell per phase, as CodeBuild's log shows, with the environment carried over.
    assert (tmp_path / "pid-install").read_text() != (tmp_path / "pid-build").read_text()


def test_variables_precedence_caller_over_buildspec_over_host(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FROM_HOST", "host")
    monkeypatch.setenv("OVERRIDDEN", "host")
    done = run(
        """
        version: 0.2
        env:
          variables:
            OVERRIDDEN: buildspec
            BOTH: buildspec
        phases:
          build:
            commands:
              - echo "$FROM_HOST $OVERRIDDEN $BOTH"
        """,
        tmp_path,
        env={"BOTH": "caller"},
    )
    assert done.output == ["host buildspec caller"]


def test_codebuild_variables_are_set(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands:
              - echo "src=$CODEBUILD_SRC_DIR"
              - echo "id=$CODEBUILD_BUILD_ID number=$CODEBUILD_BUILD_NUMBER"
              - echo "sha=$CODEBUILD_RESOLVED_SOURCE_VERSION ok=$CODEBUILD_BUILD_SUCCEEDING"
              - echo "start=$CODEBUILD_START_TIME initiator=$CODEBUILD_INITIATOR"
        """,
        tmp_path,
        env={
            "CODEBUILD_BUILD_NUMBER": "42",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": "abc123",
            "CODEBUILD_BUILD_ID": "user-api-build:7f",
        },
    )
    src, ids, sha, start = done.output
    assert src == f"src={tmp_path}"
    assert ids == "id=user-api-build:7f number=42"
    assert sha == "sha=abc123 ok=1"
    assert re.fullmatch(r"start=\d{13} initiator=deployfw/\S+", start)


def test_a_failing_command_skips_the_rest_but_finally_runs(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands:
              - echo first
              - sh -c 'exit 3'
              - echo skipped
            finally:
              - echo cleanup
        """,
        tmp_path,
    )
    assert done.output == ["first", "cleanup"]
    assert done.result.status == "FAILED"
    build = done.result.phases[2]
    assert (build.name, build.status, build.exit_code) == ("BUILD", "FAILED", 3)
    assert done.result.error == ("BUILD: Error while executing command: sh -c 'exit 3'. Reason: exit status 3")
    assert any("Command did not exit successfully sh -c 'exit 3' exit status 3" in line for line in done.lines)
    assert any("Phase complete: BUILD State: FAILED" in line for line in done.lines)


def test_a_failing_finally_command_fails_the_phase(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands: [echo ok]
            finally: ["false", echo after]
        """,
        tmp_path,
    )
    assert done.output == ["ok"]
    assert done.phase_status()["BUILD"] == "FAILED"


def test_failed_build_still_runs_post_build_with_succeeding_zero(tmp_path: Path) -> None:
    # CodeBuild's transition table: BUILD failure goes on to POST_BUILD.
    done = run(
        """
        version: 0.2
        phases:
          build: {commands: ["false"]}
          post_build:
            commands:
              - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"
        """,
        tmp_path,
    )
    assert done.output == ["succeeding=0"]
    assert done.phase_status() == {
        "INSTALL": "SUCCEEDED",
        "PRE_BUILD": "SUCCEEDED",
        "BUILD": "FAILED",
        "POST_BUILD": "SUCCEEDED",
    }
    assert done.result.status == "FAILED"


def test_failed_install_or_pre_build_ends_the_build_by_default(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          pre_build: {commands: ["false"]}
          build: {commands: [echo build]}
          post_build: {commands: [echo post]}
        """,
        tmp_path,
    )
    assert done.output == []
    assert done.phase_status() == {"INSTALL": "SUCCEEDED", "PRE_BUILD": "FAILED"}
    assert done.result.status == "FAILED"


def test_on_failure_abort_stops_the_build_even_after_build(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          build:
            on-failure: ABORT
            commands: ["false"]
          post_build: {commands: [echo post]}
        """,
        tmp_path,
    )
    assert done.output == []
    assert list(done.phase_status()) == ["INSTALL", "PRE_BUILD", "BUILD"]
    assert done.result.status == "FAILED"


def test_on_failure_continue_goes_on_but_the_build_fails(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          install:
            on-failure: CONTINUE
            commands: ["false"]
          build: {commands: [echo build]}
        """,
        tmp_path,
    )
    assert done.output == ["build"]
    assert done.phase_status()["INSTALL"] == "FAILED"
    assert done.phase_status()["BUILD"] == "SUCCEEDED"
    assert done.result.status == "FAILED"
    assert done.result.error.startswith("INSTALL: ")


def test_exit_inside_a_command_fails_it_and_finally_still_runs(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands:
              - cd /
              - export KEPT=yes
              - exit 4
              - echo skipped
            finally:
              - echo "cleanup in $PWD with $KEPT"
        """,
        tmp_path,
    )
    assert done.output == ["cleanup in / with yes"]
    assert done.result.phases[2].exit_code == 4


def test_exported_variables_are_collected_at_the_end(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        env:
          exported-variables: [IMAGE_URI, NEVER_SET]
        phases:
          build:
            commands: [export IMAGE_URI=repo@sha256:1]
          post_build:
            commands: ['export IMAGE_URI="$IMAGE_URI-final"']
        """,
        tmp_path,
    )
    assert done.result.exported_variables == {"IMAGE_URI": "repo@sha256:1-final"}
    assert any("NEVER_SET is not set" in line for line in done.lines)


def test_env_shell_is_honoured(tmp_path: Path) -> None:
    text = 'version: 0.2\nphases:\n  build:\n    commands:\n      - echo "${BASH_VERSION:-none}"\n'
    bash_run = run(text, tmp_path)
    assert bash_run.output[0] != "none"
    sh_run = run("version: 0.2\nenv:\n  shell: /bin/sh\n" + text.split("\n", 1)[1], tmp_path)
    assert sh_run.output == ["none"]


def test_stderr_and_unterminated_lines_are_streamed(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands:
              - echo to-stderr >&2
              - printf 'no newline'
              - echo next
        """,
        tmp_path,
    )
    assert done.output == ["to-stderr", "no newline", "next"]


def test_commands_are_not_spliced_into_a_command_line(tmp_path: Path) -> None:
    # Quotes, here-documents and multi-line blocks reach the shell exactly as written.
    done = run(
        """
        version: 0.2
        phases:
          build:
            commands:
              - "echo \\"it's $((1 + 1))\\""
              - |
                cat <<'EOF'
                line one
                EOF
              - echo '$(not run)'
        """,
        tmp_path,
    )
    assert done.output == ["it's 2", "line one", "$(not run)"]


def test_same_spec_object_can_run_twice(tmp_path: Path) -> None:
    spec = load_buildspec("version: 0.2\nphases:\n  build:\n    commands: [echo x]\n", "b.yml")
    for _ in range(2):
        lines: list[str] = []
        result = run_buildspec(spec, workdir=tmp_path, env={}, emit=lines.append)
        assert result.status == "SUCCEEDED" and "x" in lines


def test_a_background_process_holding_the_output_does_not_block_the_build(
    tmp_path: Path,
) -> None:
    # Buildspecs start daemons in install (``nohup dockerd &``); the phase must still end.
    started = time.monotonic()
    done = run(
        """
        version: 0.2
        phases:
          install:
            commands:
              - sleep 3 &
              - echo "$!" > daemon.pid
          build:
            commands: [cat, echo built]
        """,
        tmp_path,
    )
    assert done.result.status == "SUCCEEDED"
    assert done.output == ["built"]  # cat reads /dev/null, not the phase script
    assert time.monotonic() - started < 2
    os.kill(int((tmp_path / "daemon.pid").read_text()), signal.SIGTERM)


def test_missing_workdir_or_shell_is_bad_input(tmp_path: Path) -> None:
    spec = load_buildspec("version: 0.2\nphases:\n  build:\n    commands: [echo x]\n", "b.yml")
    with pytest.raises(InputError, match="does not exist"):
        run_buildspec(spec, workdir=tmp_path / "nope", env={}, emit=print)
    with pytest.raises(InputError, match="not installed"):
        run_buildspec(spec, workdir=tmp_path, env={}, emit=print, shell="no-such-shell-xyz")
