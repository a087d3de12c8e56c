"""``deployfw detect``: which modules the change affects, and why.

Reading the config and asking git about the range do not depend on each other
(the repository is found from the config's folder, which is known before the
config is parsed), so git runs on a background thread while the config loads:
importing gitpython waits for two ``git version`` processes, and the range takes
three more git processes, all of which then overlap with parsing. Errors still
come out in the order of the sequential code: config problems first, then git's.
The cyclic garbage collector is paused for the command (see
:func:`deployfw.config.gc_paused`): importing gitpython and building thousands of
modules otherwise trigger collections that walk every object for nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

import click

from deployfw.ci import detect_ci
from deployfw.cli.app import App
from deployfw.cli.options import global_options, json_flag, selection
from deployfw.config import gc_paused
from deployfw.detect import detect
from deployfw.errors import DeployfwError
from deployfw.gitrepo import GitRepo
from deployfw.revisions import Range, resolve_range


class _GitSide(threading.Thread):
    """Open the repository, resolve the range and (when detect will need them) list changed paths."""

    def __init__(self, root: Path, base: str | None, head: str | None, paths: bool) -> None:
        super().__init__(name="deployfw-git", daemon=True)
        self._args = (root, base, head, paths)
        self._answer: tuple[GitRepo, Range] | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        root, base, head, paths = self._args
        try:
            repo = GitRepo(root)
            rng = resolve_range(repo, detect_ci(os.environ), base, head)
            self._answer = (repo, rng)
        except BaseException as exc:  # handed to the main thread by result()
            self._error = exc
            return
        if paths and rng.merge_base is not None:
            # Remembered by the repo for detect(); on failure detect() asks again and reports
            # the error where the sequential code would.
            with contextlib.suppress(DeployfwError):
                repo.changed_paths(rng.merge_base, rng.head)

    def result(self) -> tuple[GitRepo, Range]:
        self.join()
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer


@click.command("detect")
@selection
@json_flag
@global_options
@click.pass_obj
def command(
    app: App, base: str | None, head: str | None, select_all: bool, modules: tuple[str, ...], as_json: bool
) -> None:
    """List the modules affected by the change base..head (one name per line)."""
    with gc_paused():
        _detect(app, base, head, select_all, modules, as_json)


def _detect(
    app: App, base: str | None, head: str | None, select_all: bool, modules: tuple[str, ...], as_json: bool
) -> None:
    """The command's body: git on its thread, the config here, then the semantics."""
    # The root load_config will use (the folder of modules.yaml); GitRepo searches upwards from it.
    root = app.config_file().resolve().parent
    git_side = _GitSide(root, base, head, paths=not (select_all or modules))
    git_side.start()
    try:
        config = app.load_config(backends=False)
    finally:
        git_side.join()  # never leave git running behind an error
    repo, rng = git_side.result()
    detection = detect(config, repo, rng, select_all=select_all, names=modules)
    if as_json:
        click.echo(json.dumps(detection.to_json(), indent=2))
    else:
        for name in detection.names():
            click.echo(name)
