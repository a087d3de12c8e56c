"""Run one phase's commands in one shell session, as CodeBuild 0.2 does.

Each command is written to its own file and *sourced* by a generated driver
script, so ``cd``, ``export`` and shell variables carry from one command to
the next while no user text is ever spliced into a command line. The driver
prints in-band markers (tagged with a per-run nonce) before and after each
command; they arrive in the same pipe as the output, so "Running command"
lines are always in the right place, and the exit status of every command is
known without guessing from the output.

When the phase ends (or a command calls ``exit``), an EXIT trap saves the
exported environment and working directory, which is how exported variables
reach the next phase. If the shell dies in the middle of the phase, the
remaining work (the rest of the commands, or the ``finally`` block) resumes
in a fresh shell from that saved state.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deployfw.buildspec.environment import parse_env_dump

KILL_GRACE_SECONDS = 2.0
_POLL_SECONDS = 0.05
_DRAIN_SECONDS = 1.0


@dataclass
class ShellState:
    """What carries from one shell session to the next: exported variables and cwd."""

    env: dict[str, str]
    cwd: Path


@dataclass
class Step:
    """One command of a phase; ``block`` is ``commands`` or ``finally``."""

    block: str
    text: str
    exit_code: int | None = None


@dataclass
class PhaseRun:
    """The outcome of a phase's session: the steps with their exit codes."""

    steps: list[Step]
    stopped: bool = False
    state: ShellState | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failed_step(self) -> Step | None:
        return next((s for s in self.steps if s.exit_code not in (None, 0)), None)

    @property
    def exit_code(self) -> int | None:
        step = self.failed_step
        if step is not None:
            return step.exit_code
        return 0 if any(s.exit_code is not None for s in self.steps) else None


class PhaseSession:
    """Runs a phase's ``commands`` then its ``finally`` block with CodeBuild's rules.

    A failing command skips the remaining ``commands``; ``finally`` runs
    regardless and stops at its own first failure. ``on_output`` receives each
    output line; ``on_command`` is called as each command starts and
    ``on_result`` with its exit code; ``cancel`` stops the process group.
    """

    def __init__(
        self,
        *,
        shell: str,
        on_output: Callable[[str], None],
        on_command: Callable[[Step], None],
        on_result: Callable[[Step], None],
        cancel: threading.Event,
        kill_grace: float = KILL_GRACE_SECONDS,
    ) -> None:
        self.shell = shell
        self.on_output = on_output
        self.on_command = on_command
        self.on_result = on_result
        self.cancel = cancel
        self.kill_grace = kill_grace
        self.tag = f"@@deployfw-{secrets.token_hex(8)}@@"

    def run(self, commands: tuple[str, ...], finally_: tuple[str, ...], state: ShellState
            ) -> PhaseRun:
        steps = [Step("commands", c) for c in commands] + [Step("finally", c) for c in finally_]
        result = PhaseRun(steps, state=state)
        with tempfile.TemporaryDirectory(prefix="deployfw-phase-") as tmp:
            workspace = Path(tmp)
            for index, step in enumerate(steps):
                (workspace / f"{index}.sh").write_text(step.text + "\n", encoding="utf-8")
            start = 0
            while start < len(steps) and not result.stopped:
                start = self._session(steps, start, workspace, result)
        return result

    # -- one shell process ---------------------------------------------------------------

    def _session(self, steps: list[Step], start: int, workspace: Path, result: PhaseRun) -> int:
        """Run steps from ``start`` in one shell; return where to resume (len = done)."""
        assert result.state is not None
        env_file, cwd_file = workspace / "env.out", workspace / "cwd.out"
        for leftover in (env_file, cwd_file):
            leftover.unlink(missing_ok=True)
        driver = workspace / "driver.sh"
        driver.write_text(self._driver(steps, start, workspace, env_file, cwd_file))
        cwd = result.state.cwd if result.state.cwd.is_dir() else Path.cwd()
        proc = subprocess.Popen(
            [self.shell, str(driver)],
            cwd=cwd,
            env=result.state.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lines: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc, lines), daemon=True)
        reader.start()
        current: int | None = None
        exited_at: float | None = None
        while True:
            if self.cancel.is_set():
                self._terminate(proc)
                result.stopped = True
                return len(steps)
            try:
                raw = lines.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if proc.poll() is not None:
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > _DRAIN_SECONDS:
                        break  # a background child holds the pipe open; stop reading
                continue
            if raw is None:
                break
            marker = self._handle_line(raw.decode("utf-8", "replace"), steps)
            if marker is None:
                continue
            verb, index, code = marker
            if verb == "C":
                current = index
                self.on_command(steps[index])
            elif verb == "R":
                steps[index].exit_code = code
                current = None
                self.on_result(steps[index])
            elif verb == "X":
                break
        returncode = proc.wait()
        self._load_state(env_file, cwd_file, result)
        if current is None:
            return len(steps)
        # The shell ended inside a command (``exit``, ``set -e``, a fatal syntax error).
        steps[current].exit_code = returncode
        self.on_result(steps[current])
        result.notes.append(f"shell exited with status {returncode} during the command")
        return _resume_point(steps, current)

    def _handle_line(self, text: str, steps: list[Step]) -> tuple[str, int, int] | None:
        text = text.rstrip("\n").removesuffix("\r")
        pos = text.find(self.tag)
        if pos < 0:
            self.on_output(text)
            return None
        if pos > 0:
            self.on_output(text[:pos])  # output without a trailing newline
        fields = text[pos + len(self.tag):].split()
        try:
            verb = fields[0]
            index = int(fields[1]) if verb != "X" else -1
            code = int(fields[2]) if verb == "R" else 0
        except (IndexError, ValueError):
            self.on_output(text)
            return None
        return verb, index, code

    def _driver(self, steps: list[Step], start: int, workspace: Path, env_file: Path,
                cwd_file: Path) -> str:
        """The generated script: only our own paths and numbers appear in it."""
        failed = any(s.exit_code not in (None, 0) for s in steps[:start] if s.block == "commands")
        f_failed = any(s.exit_code not in (None, 0) for s in steps[:start] if s.block == "finally")
        q = shlex.quote
        lines = [
            "# generated by deployfw: one buildspec phase in one shell session",
            f"__dfw_tag={q(self.tag)}",
            f"__dfw_fail={int(failed)}",
            f"__dfw_ffail={int(f_failed)}",
            "__dfw_exit() {",
            f"  printf '%s' \"$PWD\" > {q(str(cwd_file))}",
            f"  env -0 > {q(str(env_file))}",
            "  printf '%s X\\n' \"$__dfw_tag\"",
            "}",
            "trap __dfw_exit EXIT",
        ]
        for index in range(start, len(steps)):
            flag = "__dfw_fail" if steps[index].block == "commands" else "__dfw_ffail"
            script = q(str(workspace / f"{index}.sh"))
            lines += [
                f'if [ "${flag}" = 0 ]; then',
                f"  printf '%s C {index}\\n' \"$__dfw_tag\"",
                f"  . {script} </dev/null",
                "  __dfw_rc=$?",
                f"  printf '%s R {index} %s\\n' \"$__dfw_tag\" \"$__dfw_rc\"",
                f'  [ "$__dfw_rc" = 0 ] || {flag}=1',
                "fi",
            ]
        lines.append("exit 0")
        return "\n".join(lines) + "\n"

    def _load_state(self, env_file: Path, cwd_file: Path, result: PhaseRun) -> None:
        assert result.state is not None
        try:
            env = parse_env_dump(env_file.read_bytes())
        except OSError:
            return  # killed before the trap ran: keep the state the phase started with
        cwd = result.state.cwd
        with contextlib.suppress(OSError):
            cwd = Path(cwd_file.read_text(encoding="utf-8", errors="surrogateescape"))
        result.state = ShellState(env, cwd)

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the whole process group; SIGKILL whatever is left after the grace.

        The grace covers the group, not only the shell: a ``docker build`` or
        ``gradle`` child that handles SIGTERM gets its chance to clean up.
        """
        _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace
        while time.monotonic() < deadline:
            proc.poll()
            if proc.returncode is not None and not _group_alive(proc.pid):
                return
            time.sleep(_POLL_SECONDS)
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _resume_point(steps: list[Step], current: int) -> int:
    """After the shell died in ``steps[current]``, the next step that should still run."""
    step = steps[current]
    first_finally = next((i for i, s in enumerate(steps) if s.block == "finally"), len(steps))
    if step.block == "commands":
        return current + 1 if step.exit_code == 0 else first_finally
    return current + 1 if step.exit_code == 0 else len(steps)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _pump(proc: subprocess.Popen[bytes], lines: queue.Queue[bytes | None]) -> None:
    """Move output lines from the pipe to the queue; None marks end of output."""
    assert proc.stdout is not None
    try:
        for raw in iter(proc.stdout.readline, b""):
            lines.put(raw)
    finally:
        lines.put(None)
