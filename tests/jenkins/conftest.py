"""Fixtures for the Jenkins tests: a fast Jenkins double and clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jenkins
import pytest

from deployfw.sandbox.jenkins import JenkinsDouble
from deployfw_jenkins.client import JenkinsClient
from deployfw_jenkins.credentials import JenkinsCredentials
from deployfw_jenkins.retrying import PollPolicy, RetryPolicy

FAST_RETRY = RetryPolicy(initial=0.01, maximum=0.05, budget=5.0)
FAST_POLL = PollPolicy(initial=0.01, maximum=0.05, factor=1.5)


@pytest.fixture
def double() -> Iterator[JenkinsDouble]:
    """A started double with a short quiet period; stopped (builds killed) afterwards."""
    with JenkinsDouble(quiet_period=0.05) as started:
        yield started


@pytest.fixture
def make_double() -> Iterator[Callable[..., JenkinsDouble]]:
    """Start a double with custom settings (quiet period, TTL, password...)."""
    started: list[JenkinsDouble] = []

    def make(**kwargs: Any) -> JenkinsDouble:
        kwargs.setdefault("quiet_period", 0.05)
        d = JenkinsDouble(**kwargs).start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


@pytest.fixture
def server(double: JenkinsDouble) -> jenkins.Jenkins:
    """Unmodified python-jenkins, authenticated with the double's API token."""
    return jenkins.Jenkins(double.url, username=double.user, password=double.token, timeout=5)


@pytest.fixture
def make_client() -> Callable[..., JenkinsClient]:
    """deployfw's client for a double, with fast retry and poll policies."""

    def make(double: JenkinsDouble, token: str | None = None, **kwargs: Any) -> JenkinsClient:
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("poll", FAST_POLL)
        kwargs.setdefault("timeout", 5.0)
        credentials = JenkinsCredentials(double.url, double.user, token or double.token)
        return JenkinsClient(credentials, **kwargs)

    return make


@pytest.fixture
def client(double: JenkinsDouble, make_client: Callable[..., JenkinsClient]) -> JenkinsClient:
    """deployfw's client for the default double."""
    return make_client(double)
