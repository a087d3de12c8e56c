"""The first thing a task's process runs: join the task's network, tie its life to the sandbox, exec.

Started as ``python -S launcher.py PARENT_PID NETNS_PATH CWD PROGRAM ARGS...`` (an empty
NETNS_PATH means "stay in this namespace"). It replaces itself with the program, so
the task's process *is* the app. ``PR_SET_PDEATHSIG`` makes the kernel kill it when
the sandbox's spawning thread (which lives as long as the sandbox) goes away, even
when the sandbox is killed with SIGKILL and no clean-up code runs.

Kept free of deployfw imports (it runs with ``-S``, before any site-packages).
"""

import ctypes
import os
import signal
import sys

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    parent, netns, cwd, program, *args = argv
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != int(parent):
        sys.exit(137)  # the sandbox is already gone
    if netns:
        fd = os.open(netns, os.O_RDONLY)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            sys.stderr.write(f"setns {netns}: {os.strerror(err)}\n")
            sys.exit(126)
        os.close(fd)
    os.chdir(cwd)
    try:
        os.execve(program, [program, *args], dict(os.environ))
    except OSError as exc:
        sys.stderr.write(f"exec {program}: {exc}\n")
        sys.exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
