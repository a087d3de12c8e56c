"""The ``DEPLOYFW_SANDBOX_FAULTS`` syntax (DESIGN.md), parsed in one place for both stand-ins.

One string - ``"deploy:user-api,build:order-api,throttle:20,error:10"`` - configures
the AWS sandbox and the Jenkins double alike, so both must read it identically: the
same kinds, the same percent rules, the same message for a bad item. Each stand-in
then uses the parts that concern it (the AWS sandbox all four; the Jenkins double
``build:`` and ``error:``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deployfw.errors import InputError

KINDS = ("deploy", "build", "throttle", "error")
_EXPECTED = "expected one of deploy:<module>, build:<module>, throttle:<percent>, error:<percent>"


@dataclass(frozen=True)
class FaultSpec:
    """A parsed fault string: one-shot module failures and standing percentages."""

    deploy: frozenset[str] = field(default_factory=frozenset)
    build: frozenset[str] = field(default_factory=frozenset)
    throttle: int = 0
    error: int = 0


def parse_faults(text: str | None) -> FaultSpec:
    """Parse ``"deploy:a,build:b,throttle:20,error:10"``; empty means none.

    Every bad item is reported at once (InputError, exit 2); a later percent of the
    same kind replaces an earlier one.
    """
    modules: dict[str, set[str]] = {"deploy": set(), "build": set()}
    percents = {"throttle": 0, "error": 0}
    problems: list[str] = []
    for raw in (text or "").split(","):
        item = raw.strip()
        if not item:
            continue
        kind, sep, value = item.partition(":")
        kind, value = kind.strip(), value.strip()
        if not sep or kind not in KINDS or not value:
            problems.append(f"bad fault {item!r}: {_EXPECTED}")
            continue
        if kind in modules:
            modules[kind].add(value)
            continue
        try:
            percent = int(value)
        except ValueError:
            percent = -1
        if not 0 <= percent <= 100:
            problems.append(f"bad fault {item!r}: percent must be an integer 0..100")
            continue
        percents[kind] = percent
    if problems:
        raise InputError("; ".join(problems))
    return FaultSpec(frozenset(modules["deploy"]), frozenset(modules["build"]), percents["throttle"], percents["error"])
