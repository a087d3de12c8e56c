"""Rollback pins in the selection: which pinned modules a run holds back, and which it deploys over.

A rollback pins its module to the revision it put back (:class:`~deployfw.state.Pin`), because in a
monorepo the next ``run`` is triggered by *any* commit: without the pin, a teammate's change to
another service would redeploy the very revision that was just rolled back, mid-incident.

The rule, for a module the run would otherwise deploy:

- the pin is **void** when the rollback that set it did not take effect (its deploy failed, rolled
  back or was abandoned, or never started): the module is deployed as if unpinned, and the pin is
  removed when that deploy succeeds;
- ``-m MODULE`` names it: deployed only with ``--unpin`` (the pin is released when head is deployed);
  without it the command stops with exit 2 before anything changes - the user asked for this very
  module, so skipping it quietly would answer a different question;
- otherwise the module is deployed only when **its own inputs changed since the pin**: the same
  detection that decides a module is affected (its files, files its config references, its
  modules.yaml entry, shared paths, its dependencies through ``depends_on``), over the range from
  the pin's ``since`` commit to head. Then head is deployed and the pin released when that deploy
  succeeds; else the module is held, with the pin's reason.

A pin whose ``since`` commit is not in this clone cannot be measured: the module is held (the safe
answer in an incident), and the plan says why. A pinned module that nothing affects (a rollback
killed before its deploy was recorded leaves the last success at head) is listed as pinned too,
rather than "up to date", except in a ``-m`` run, which is about the named modules only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from deployfw.config import Config
from deployfw.detect import Affected, Detection, detect
from deployfw.errors import Problem
from deployfw.gitrepo import GitRepo
from deployfw.revisions import range_from, resolve_commit
from deployfw.state import Pin


@dataclass
class PinSelection:
    """What the pins change in a detection: modules held back, modules deployed over their pin."""

    detection: Detection
    held: dict[str, Pin] = field(default_factory=dict)  # skipped, with Pin.reason()
    releasing: dict[str, Pin] = field(default_factory=dict)  # deployed; the pin goes when the deploy succeeds
    notes: list[str] = field(default_factory=list)
    findings: list[Problem] = field(default_factory=list)


def apply_pins(
    config: Config,
    repo: GitRepo,
    detection: Detection,
    pins: Mapping[str, Pin],
    void_reason: Callable[[Pin], str | None],
    *,
    explicit: Sequence[str] = (),
    unpin: bool = False,
) -> PinSelection:
    """Apply ``pins`` to ``detection`` (see the module docstring for the rule).

    ``void_reason(pin)`` says why a pin does not hold (its rollback did not take effect), or None.
    """
    affected = {m.name: m for m in detection.modules}
    out = PinSelection(detection)
    measured: list[tuple[str, Pin]] = []
    for name, pin in sorted(pins.items()):
        if name not in config.modules or not config.modules[name].is_service:
            continue
        if name not in affected:
            # Not affected (up to date, e.g. a rollback killed before it was recorded as done): still
            # said as pinned by a run that looks at every module, so the plan names the pin.
            if not explicit and void_reason(pin) is None:
                out.held[name] = pin
            continue
        void = void_reason(pin)
        if void is not None:
            out.releasing[name] = pin
            out.notes.append(f"{name}: the pin of rollback {pin.run_id} does not hold ({void}); deployed as usual")
        elif name in explicit and unpin:
            out.releasing[name] = pin
            reasons = (*affected[name].reasons, f"--unpin: deploys head over the pin of rollback {pin.run_id}")
            affected[name] = Affected(name, affected[name].kind, reasons)
        elif name in explicit:
            out.findings.append(
                Problem(None, None, None, f"{name} is {pin.reason()}, or `run -m {name} --unpin` to deploy head")
            )
        else:
            measured.append((name, pin))
    for since, group in _by_since(measured).items():
        changed = _changed_since(config, repo, since, detection.head)
        for name, pin in group:
            if changed is None:
                out.held[name] = pin
                out.notes.append(f"{name}: cannot tell what changed since its pin: {since[:12]} is not in this clone")
            elif name in changed:
                out.releasing[name] = pin
                reasons = tuple(f"changed since the rollback pin ({since[:12]}): {r}" for r in changed[name].reasons)
                affected[name] = Affected(name, affected[name].kind, reasons)
            else:
                out.held[name] = pin
    for name in out.held:
        affected.pop(name, None)
    out.detection = Detection(
        detection.base,
        detection.head,
        detection.merge_base,
        tuple(sorted(affected.values(), key=lambda m: m.name)),
        detection.unowned,
        detection.changed,
    )
    return out


def _by_since(pins: Iterable[tuple[str, Pin]]) -> dict[str, list[tuple[str, Pin]]]:
    groups: dict[str, list[tuple[str, Pin]]] = {}
    for name, pin in pins:
        groups.setdefault(pin.since, []).append((name, pin))
    return groups


def _changed_since(config: Config, repo: GitRepo, since: str, head: str) -> dict[str, Affected] | None:
    """Modules affected from ``since`` to ``head`` (None when this clone lacks ``since``)."""
    sha = resolve_commit(repo, since)
    if sha is None:
        return None
    rng = range_from(repo, sha, head)
    if rng.merge_base is None:
        return None
    return {m.name: m for m in detect(config, repo, rng).modules}


def pin_since(repo: GitRepo | None, candidates: Sequence[str | None]) -> str:
    """The commit a new pin is measured from: of ``candidates``, the newest one that contains the others.

    ``candidates`` (at least the first must be given) are the rolled-back deploy's commit, the newest
    commit a deploy was attempted with and the checkout's HEAD. A later candidate replaces the
    current answer only when it descends from it, so a stale checkout (HEAD behind what was deployed)
    or a commit on another branch never moves the measure backwards or sideways; when the first is
    not in this clone, nothing can be compared with it and it stays the answer.
    """
    given = [c for c in candidates if c]
    if not given:
        raise ValueError("a pin needs at least one commit to be measured from")
    since = given[0]
    if repo is None:
        return since
    current = repo.resolve(since)
    for candidate in given[1:]:
        sha = repo.resolve(candidate)
        if sha is None:
            continue
        if current is not None and repo.merge_base(current, sha) == current:
            since, current = sha, sha
    return current or since
