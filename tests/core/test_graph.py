"""The dependency graph helpers that detection and the runner share."""

from __future__ import annotations

import pytest

from deployfw.graph import dependents_of, find_cycle, reverse_edges, topological_order


def test_find_cycle_returns_the_loop() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["y"], "y": ["z"], "z": ["y"]}) == ["y", "z", "y"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None
    assert find_cycle({"a": ["ghost"]}) is None  # unknown targets are someone else's problem


def test_topological_order_dependencies_first_and_stable() -> None:
    edges = {"web": ["core"], "api": ["web", "core"], "core": [], "b": [], "a": []}
    assert topological_order(edges) == ["a", "b", "core", "web", "api"]
    with pytest.raises(ValueError, match="a -> b -> a"):
        topological_order({"a": ["b"], "b": ["a"]})


def test_dependents_are_transitive_and_name_the_edge() -> None:
    edges = {"core": [], "web": ["core"], "api": ["web"], "batch": ["core"], "lone": []}
    via = dependents_of(["core"], reverse_edges(edges))
    assert via == {"web": "core", "api": "web", "batch": "core"}
    assert dependents_of(["lone"], reverse_edges(edges)) == {}
    # a seed reached again through another seed is not its own dependent
    assert dependents_of(["core", "web"], reverse_edges(edges)) == {"api": "web", "batch": "core"}
