"""The filter conformance table: Bastion on SQLite, PostgreSQL and MariaDB gives the rows
PocketBase 0.40.6 gives (``fixtures/filters.json``, recorded from the real binary by
``python -m tests.compat.record_filters``).

One scenario per database answers every filter and sort of the table; a mismatch names
each filter with both answers. The fixture itself is checked against the running
PocketBase wherever the binary runs, so it cannot go stale.
"""

from __future__ import annotations

import json
from typing import Any

from tests.compat import filter_table as table
from tests.compat.harness import binary_runs, pocketbase_binary
from tests.compat.record_filters import FIXTURE, record
from tests.services import require_or_skip

# Filters PocketBase refuses and Bastion answers on purpose (docs/compatibility.md,
# "Intended divergences"): none yet.
EXTENSIONS: set[str] = set()
# Known to differ today (listed in docs/compatibility.md): none. A filter put here is
# allowed to differ; the test fails when it is fixed (take it off this list) or a new
# difference appears.
KNOWN: set[str] = set()


def fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


async def seeded(client: Any) -> None:
    for method, path, body in table.seed_requests():
        res = await client.request(method, path, headers=client.su(), json=body)
        assert res.status_code < 300, f"{method} {path}: {res.text}"


async def answers(client: Any, requests: dict[str, dict[str, str]]) -> dict[str, Any]:
    from tests.compat.counts import COUNTS

    COUNTS["recorded"] += len(requests)
    out = {}
    for text, params in requests.items():
        res = await client.get(f"/api/collections/{table.ITEMS}/records", params=params, headers=client.su())
        assert res.status_code in (200, 400), f"{text}: {res.status_code} {res.text}"
        out[text] = table.answer_of(res.status_code, res.json())
    return out


def differences(expected: dict[str, Any], got: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {text: (want, got[text]) for text, want in expected.items()
            if got[text] != want and not (text in EXTENSIONS and want == 400) and text not in KNOWN}


def test_the_table_is_large() -> None:
    data = fixture()
    assert len(data["filters"]) >= 600 and len(data["sorts"]) >= 20
    assert set(data["filters"]) == set(table.all_filters()), (
        "the table changed: run python -m tests.compat.record_filters")
    assert set(data["sorts"]) == set(table.SORTS), "the table changed: run python -m tests.compat.record_filters"


async def test_filters_answer_as_pocketbase(client: Any) -> None:
    await seeded(client)
    expected = fixture()["filters"]
    got = await answers(client, {text: table.list_params(filter_text=text) for text in expected})
    wrong = differences(expected, got)
    fixed = {text for text in KNOWN if got[text] == expected[text]}
    assert not fixed, f"these now answer as PocketBase: take them off KNOWN: {sorted(fixed)}"
    report = "\n".join(f"  {text!r}: PocketBase {pb}, Bastion {ours}" for text, (pb, ours) in wrong.items())
    assert not wrong, f"{len(wrong)} of {len(expected)} filters differ:\n{report}"


async def test_sorts_answer_as_pocketbase(client: Any) -> None:
    await seeded(client)
    expected = fixture()["sorts"]
    got = await answers(client, {text: table.list_params(sort=text) for text in expected})
    assert differences(expected, got) == {}


def test_the_fixture_is_what_pocketbase_answers() -> None:
    problem = binary_runs()
    if problem:
        require_or_skip(problem)
    binary = pocketbase_binary()
    assert binary is not None
    recorded, live = fixture(), record(binary)
    assert live["pocketbase"] == recorded["pocketbase"], "another PocketBase release: rerun the recorder"
    assert live["filters"] == recorded["filters"]
    assert live["sorts"] == recorded["sorts"]
