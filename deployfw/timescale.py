"""``DEPLOYFW_SANDBOX_TIME_SCALE``: how many sandbox seconds pass per real second.

One parser for both readers: the sandbox sets its clock by it (:mod:`deployfw.sandbox.clock`),
and a client talking to a sandbox's endpoint paces its polls by it (:mod:`deployfw.context`).
Here in the core, which imports no sandbox, so both can use it.
"""

from __future__ import annotations

from deployfw.errors import InputError

TIME_SCALE_ENV = "DEPLOYFW_SANDBOX_TIME_SCALE"
DEFAULT_SCALE = 60.0
"""The sandbox's scale when the variable is not set: one sandbox minute per real second."""


def parse_time_scale(text: str) -> float:
    """``"60"`` -> 60.0; anything but a finite number >= 0 is bad input (exit 2), named by the variable."""
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not 0 <= scale < float("inf"):  # NaN fails both comparisons
        raise InputError(
            f"{TIME_SCALE_ENV}={text!r}: expected a number of sandbox seconds per real second >= 0"
            f" (0: every timed wait is due at once; default {DEFAULT_SCALE:g})"
        )
    return scale
