"""Where the Jenkins URL, user and API token come from, checked before any call.

CI systems hand secrets over as environment variables or as files; a token file that
other users can read is a leaked token, so it is refused (like ssh refuses a
world-readable key) rather than used. The token is registered with
:mod:`deployfw.redact` the moment it is read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from deployfw import redact
from deployfw.errors import InputError, Problem

URL_VAR = "JENKINS_URL"
USER_VAR = "JENKINS_USER"
TOKEN_VAR = "JENKINS_API_TOKEN"
TOKEN_FILE_VAR = "JENKINS_API_TOKEN_FILE"


@dataclass(frozen=True)
class JenkinsCredentials:
    """A controller URL (always with a trailing slash), a user and their API token."""

    url: str
    user: str
    token: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.url.endswith("/"):
            object.__setattr__(self, "url", self.url + "/")
        redact.register(self.token)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, token_file: str | os.PathLike[str] | None = None
    ) -> JenkinsCredentials:
        """Read ``JENKINS_URL``, ``JENKINS_USER`` and the token.

        The token comes from ``JENKINS_API_TOKEN``, else from ``token_file`` or the file
        named by ``JENKINS_API_TOKEN_FILE`` (which must not be readable by group or
        others). Every missing piece is reported at once, as bad input (exit 2).
        """
        env = os.environ if environ is None else environ
        problems: list[Problem] = []
        url = env.get(URL_VAR, "").strip()
        user = env.get(USER_VAR, "").strip()
        if not url:
            problems.append(Problem(None, None, URL_VAR, "not set: the Jenkins controller URL"))
        elif not url.startswith(("http://", "https://")):
            problems.append(Problem(None, None, URL_VAR, f"{url!r} is not an http(s) URL"))
        elif "@" in urlsplit(url).netloc:
            redact.register(urlsplit(url).password)
            problems.append(
                Problem(None, None, URL_VAR, "must not embed credentials; use JENKINS_USER and JENKINS_API_TOKEN")
            )
        if not user:
            problems.append(Problem(None, None, USER_VAR, "not set: the Jenkins user to authenticate as"))
        token = env.get(TOKEN_VAR, "").strip()
        redact.register(token)
        path = token_file or env.get(TOKEN_FILE_VAR)
        if not token and path:
            try:
                token = read_token_file(Path(path))
            except InputError as exc:
                problems.extend(exc.problems)
        elif not token:
            problems.append(
                Problem(None, None, TOKEN_VAR, f"not set (nor {TOKEN_FILE_VAR}): a Jenkins API token is needed")
            )
        if problems:
            raise InputError(problems)
        return cls(url, user, token)


def read_token_file(path: Path) -> str:
    """Read an API token from ``path``, refusing files others may read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise InputError(
            Problem(str(path), None, None, f"cannot read the Jenkins token file: {exc.strerror}")
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(info.st_mode)
        raise InputError(
            Problem(
                str(path),
                None,
                None,
                f"Jenkins token file has mode {mode:04o}; it must be readable by its owner only (chmod 600 {path})",
            )
        )
    token = path.read_text(encoding="utf-8").strip()
    redact.register(token)
    if not token:
        raise InputError(Problem(str(path), None, None, "Jenkins token file is empty"))
    return token
