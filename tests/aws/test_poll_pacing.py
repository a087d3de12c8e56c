"""Deployers poll a sandbox as often, relative to its clock, as they poll AWS.

A sandbox hands its clock's scale to clients with its endpoint; without an endpoint the
commands talk to AWS, so the variable alone changes nothing.
"""

from __future__ import annotations

import pytest

from deployfw.context import endpoint_time_scale
from deployfw.errors import InputError
from deployfw_aws.deploy_common import POLL_CAP_FLOOR, POLL_FLOOR, Backoff

ENDPOINT = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}


def test_the_scale_counts_only_with_an_endpoint() -> None:
    assert endpoint_time_scale({"DEPLOYFW_SANDBOX_TIME_SCALE": "60"}) == 1.0
    assert endpoint_time_scale(ENDPOINT) == 1.0
    assert endpoint_time_scale({**ENDPOINT, "DEPLOYFW_SANDBOX_TIME_SCALE": "60"}) == 60.0
    assert endpoint_time_scale({**ENDPOINT, "DEPLOYFW_SANDBOX_TIME_SCALE": "0"}) == 0.0


@pytest.mark.parametrize("text", ["fast", "-1", "inf", "nan"])
def test_a_bad_scale_names_the_variable(text: str) -> None:
    with pytest.raises(InputError, match=f"DEPLOYFW_SANDBOX_TIME_SCALE='{text}': expected a number"):
        endpoint_time_scale({**ENDPOINT, "DEPLOYFW_SANDBOX_TIME_SCALE": text})


def test_pauses_shrink_with_the_scale_down_to_a_floor() -> None:
    aws = Backoff.at_scale(1)
    assert aws == Backoff()
    twice = Backoff.at_scale(2)
    assert (twice.first, twice.cap) == (aws.first / 2, aws.cap / 2)
    for scale in (0, 60, 3000):
        paced = Backoff.at_scale(scale)
        assert (paced.first, paced.cap) == (POLL_FLOOR, POLL_CAP_FLOOR)
    slower = Backoff.at_scale(0.5)  # a clock slower than AWS's: longer pauses
    assert slower.cap == aws.cap * 2
