"""Filters generated with hypothesis, answered by the running PocketBase and by Bastion.

The scenario is the conformance table's (tests/compat/filter_table.py). Each example is
a comparison or a combination of two or three, over every operand kind of the table
(fields of each type, JSON paths, relation paths, back-relations, ``@collection``,
modifiers), every operator, literals, macros and functions; the rows must be the same
(or both servers must refuse it). The examples are derived, not random, so a run is
reproducible; ``BASTION_COMPAT_RANDOM=1`` draws new ones (with ``--hypothesis-seed`` to
repeat a run) and ``BASTION_COMPAT_EXAMPLES`` sets how many.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compat import filter_table as table
from tests.compat.harness import Pair

EXAMPLES = int(os.environ.get("BASTION_COMPAT_EXAMPLES", "150"))
FRESH = os.environ.get("BASTION_COMPAT_RANDOM") == "1"  # new examples each run, instead of the derived ones
FUNCTIONS = ['strftime("%Y", when)', 'strftime("%m-%d", when, "+1 day")', "geoDistance(lon, lat, 0, 0)",
             'strftime("%Y", "2024-05-01 00:00:00.000Z")']
MACROS = ["@now", "@year", "@todayStart", "@yesterday"]
operands = st.sampled_from(table.OPERANDS + FUNCTIONS)
values = st.sampled_from(table.VALUES + MACROS) | st.integers(-5, 200).map(str) | st.sampled_from(
    ['"a%"', '"%b"', r'"\\"', '"x y"', "1.5", "-0.5", '"1e3"', '" 10 "'])
comparison = st.builds(lambda left, op, right: f"{left} {op} {right}", operands, st.sampled_from(table.OPERATORS),
                       values | operands)
filters = st.recursive(comparison, lambda inner: st.builds(
    lambda a, join, b: f"({a} {join} {b})", inner, st.sampled_from(["&&", "||"]), inner), max_leaves=3)


@pytest.fixture(scope="module")
def scenario(pair: Pair) -> Pair:
    for method, path, body in table.seed_requests():
        pair.setup(method, path, json=body)
    return pair


def test_generated_filters_answer_as_pocketbase(scenario: Pair) -> None:
    differ: dict[str, tuple[object, object]] = {}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not FRESH, database=None,
              suppress_health_check=list(HealthCheck))
    @given(filters)
    def check(text: str) -> None:
        pb, bastion = scenario.both("GET", f"/api/collections/{table.ITEMS}/records", "su",
                                    params=table.list_params(filter_text=text))
        got = (table.answer_of(pb.status, pb.body), table.answer_of(bastion.status, bastion.body))
        if got[0] != got[1] and text not in KNOWN:
            differ[text] = got

    check()
    assert differ == {}, "\n".join(f"{t!r}: PocketBase {a}, Bastion {b}" for t, (a, b) in differ.items())


KNOWN: set[str] = set()  # none today; see docs/compatibility.md for the one known difference
