"""Keep secrets out of every log line, report, JUnit file and exception text.

Secrets reach deployfw from many places (AWS keys in the environment, Jenkins
API tokens, parameter-store and secrets-manager values resolved for a
buildspec). Rather than trusting every writer to remember, each source
registers the values it learns here, and every sink passes its text through
:func:`mask`. The registry is process-wide because secrets are: a token read
by one backend must not leak through another backend's log line.
"""

from __future__ import annotations

import logging
import os
import threading

MASK = "***"
_MIN_LEN = 4  # shorter values would mask ordinary words and digits
_ENV_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "JENKINS_API_TOKEN")

_lock = threading.Lock()
_values: set[str] = set()
_ordered: list[str] = []


def register(value: str | None) -> None:
    """Remember ``value`` as a secret; later :func:`mask` calls hide it."""
    if not value or len(value) < _MIN_LEN:
        return
    global _ordered
    with _lock:
        if value in _values:
            return
        _values.add(value)
        # Longest first, so a secret that contains another is masked whole.
        _ordered = sorted(_values, key=len, reverse=True)


def register_environment(environ: dict[str, str] | None = None) -> None:
    """Register the secrets CI systems hand us through well-known variables."""
    env = os.environ if environ is None else environ
    for name in _ENV_SECRETS:
        register(env.get(name))


def mask(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the rendered message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _ordered:
            record.msg = mask(record.getMessage())
            record.args = None
        return True
