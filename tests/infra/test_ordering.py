"""The critical path of a first ``pulumi up`` stays within 10 % of the floor Azure imposes
(bench/critical_path.py: the program's dependency graph under the mock engine, weighed with
documented creation times)."""

from __future__ import annotations

import pytest

from bench import critical_path as cp


@pytest.fixture(scope="module", params=["dev", "prod"])
def graph(request: pytest.FixtureRequest) -> cp.Graph:
    return cp.record(request.param)


def test_the_critical_path_is_within_10_percent_of_the_floor(graph) -> None:
    path, _ = cp.longest(graph, graph.all)
    floor, _ = cp.longest(graph, graph.floor)
    assert path <= floor * (1 + cp.TOLERANCE), cp.overhead_edges(graph)


def test_nothing_waits_on_an_access_policy_it_does_not_take_as_input(graph) -> None:
    """Before issue 14, prod's online deployments waited for the cache's access policy."""
    policies = {u for u, t in graph.types.items() if t.endswith(":AccessPolicyAssignment")}
    for urn, dep in cp.overhead_edges(graph):
        assert dep not in policies, f"{urn} waits for {dep}"


def test_the_floor_serialises_what_azure_serialises() -> None:
    g = cp.Graph(
        types={"a": "azure-native:machinelearningservices:OnlineDeployment", "b": "x"},
        all={"a": set(), "b": {"a"}},
        floor={"a": set(), "b": set()},
    )
    assert cp.longest(g, g.all)[0] == pytest.approx(cp.minutes(g.types["a"]) + cp.DEFAULT)
    assert cp.overhead_edges(g) == [("b", "a")]
