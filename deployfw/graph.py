"""The module dependency graph: order, cycles and transitive dependents.

Kept apart from config loading because both change detection (who is affected
through a library) and the runner (who waits for whom) need it, and neither
should know how the config was parsed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, ..., a]``, or None when there is none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(edges):
        if state.get(start):
            continue
        path: list[str] = [start]
        stack = [iter(sorted(edges.get(start, ())))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if nxt not in edges:
                continue  # unknown targets are reported elsewhere
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return None


def topological_order(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Dependencies before dependents; ties broken by name so plans are stable."""
    remaining = {name: {d for d in deps if d in edges} for name, deps in edges.items()}
    dependents: dict[str, list[str]] = {name: [] for name in edges}
    for name, deps in remaining.items():
        for dep in deps:
            dependents[dep].append(name)
    ready = [name for name, deps in remaining.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for child in dependents[name]:
            remaining[child].discard(name)
            if not remaining[child]:
                heapq.heappush(ready, child)
    if len(order) != len(edges):
        raise ValueError(f"dependency cycle: {' -> '.join(find_cycle(edges) or [])}")
    return order


def reverse_edges(edges: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Map each module to the modules that declare ``depends_on`` it."""
    reverse: dict[str, list[str]] = {name: [] for name in edges}
    for name, deps in edges.items():
        for dep in deps:
            reverse.setdefault(dep, []).append(name)
    return reverse


def dependents_of(seeds: Iterable[str], reverse: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Every module reachable from ``seeds`` through reverse edges -> the direct dependency it came through."""
    via: dict[str, str] = {}
    queue = list(seeds)
    seen = set(queue)
    while queue:
        current = queue.pop()
        for child in reverse.get(current, ()):
            if child not in seen:
                seen.add(child)
                via[child] = current
                queue.append(child)
    return via
