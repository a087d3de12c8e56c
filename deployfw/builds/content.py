"""Content tags: one image tag that names exactly the inputs a module's image is built from.

The runner asks the registry for the content tag before building; when an image
already carries it, nothing that could change the image has changed, so the build
is skipped and the existing digest is reused. That only works if the tag covers
*every* input and nothing else, so it hashes, at the head commit:

* the git blob SHAs of every file under the module's folder and under the folders
  of its transitive ``depends_on`` (a shared library's change must rebuild);
* the files matching ``shared_paths`` (root build files such as ``build.gradle``);
* the files the module's config references (``module.files``: taskdef, appspec,
  buildspec given outside the module folder);
* the module's effective ``build`` and ``registry`` config as sorted JSON (a new
  build variable or backend gives a new image).

Blob SHAs come from ``git ls-tree`` (one call per head, no file reads), so the tag
describes the commit, not the working tree: uncommitted edits do not change it.
No boto3 here: every registry backend (and a Jenkins job) can use it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from deployfw.config import Config, Module
from deployfw.detect import glob_regex
from deployfw.gitrepo import GitRepo

TAG_PREFIX = "content-"
DIGEST_HEX = 24  # 96 bits: collisions are not a practical concern, the tag stays readable
_SCHEME = "deployfw-content-v1"  # bump when what the tag covers changes, so old tags never match


def commit_tag(head: str) -> str:
    """The tag naming the commit an image was built from: the full SHA (unambiguous, <= 128 chars)."""
    return head


def module_inputs(config: Config, module: Module) -> tuple[list[str], list[str], list[str]]:
    """(folders, shared globs, referenced files) whose content goes into ``module``'s image.

    Folders are the module's own and those of its transitive dependencies, all
    relative to the config root.
    """
    folders: list[str] = []
    seen: set[str] = set()
    pending = [module.name]
    while pending:
        name = pending.pop()
        if name in seen or name not in config.modules:
            continue
        seen.add(name)
        folders.append(config.modules[name].path)
        pending.extend(config.modules[name].depends_on)
    return sorted(folders), list(config.shared_paths), sorted(module.files)


def select_files(
    tree: Iterable[tuple[str, str]], folders: Sequence[str], shared: Sequence[str], files: Sequence[str]
) -> list[tuple[str, str]]:
    """The ``(path, blob sha)`` rows of ``tree`` that belong to the inputs, sorted by path."""
    shared_re = glob_regex(shared)
    wanted_files = set(files)
    prefixes = tuple(f"{folder}/" for folder in folders if folder)
    picked = {
        path: sha
        for sha, path in tree
        if path.startswith(prefixes) or path in wanted_files or (shared_re is not None and shared_re.match(path))
    }
    return sorted(picked.items())


def content_digest(
    files: Sequence[tuple[str, str]], build: Mapping[str, Any] | None, registry: Mapping[str, Any] | None
) -> str:
    """Hex digest of the inputs; stable across runs, machines and dict orderings."""
    document = {"scheme": _SCHEME, "files": [list(row) for row in files], "build": build, "registry": registry}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ContentTagger:
    """Computes content tags for many modules of one head with a single ``git ls-tree``.

    Thread-safe: the runner builds modules in parallel and each asks for its tag.
    """

    def __init__(self, config: Config, head: str, repo: GitRepo | None = None) -> None:
        self.config = config
        self.head = head
        self._repo = repo
        self._tree: list[tuple[str, str]] | None = None
        self._lock = threading.Lock()

    def tree(self) -> list[tuple[str, str]]:
        """Every ``(blob sha, path)`` at head, paths relative to the config root."""
        with self._lock:
            if self._tree is None:
                repo = self._repo or GitRepo(self.config.root)
                prefix = _prefix(repo.root, self.config.root)
                rows = repo.list_files(self.head, [prefix or "."])
                lead = f"{prefix}/" if prefix else ""
                self._tree = [(sha, path[len(lead) :]) for sha, path in rows if path.startswith(lead)]
            return self._tree

    def files(self, module: Module) -> list[tuple[str, str]]:
        """The ``(path, blob sha)`` inputs of ``module`` (what the tag hashes, for reports and tests)."""
        return select_files(self.tree(), *module_inputs(self.config, module))

    def tag(self, module: Module) -> str:
        """``content-<24 hex>`` for ``module`` at head."""
        build = module.effective.get("build")
        registry = module.effective.get("registry")
        return TAG_PREFIX + content_digest(self.files(module), build, registry)[:DIGEST_HEX]


def content_tag(config: Config, module: Module, head: str, repo: GitRepo | None = None) -> str:
    """One module's content tag at ``head``; use :class:`ContentTagger` for many modules."""
    return ContentTagger(config, head, repo).tag(module)


def _prefix(git_root: Path, config_root: Path) -> str:
    """Where the config root sits inside the git work tree ('' when they are the same)."""
    relative = config_root.resolve().relative_to(git_root.resolve()).as_posix()
    return "" if relative == "." else relative
