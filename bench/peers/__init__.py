"""The systems ``bench/compare.py`` runs side by side, and what they share.

Each system is a server started on 127.0.0.1, seeded with the same ``posts``, and a list of
:class:`Scenario` s: the exact request wrk sends (method, path, headers, and where the
request varies, a file of ids, tokens or emails to pick from at random) plus a check of
one response before the load. Bastion and the raw ceiling live in ``bastion.py``; the
peers, installed from npm by ``install.py``, in ``directus.py`` and ``parse.py``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from list import FILLER, post_body

USERS = 50
PER_PAGE = 20
JSON_HEADERS = {"Content-Type": "application/json"}
PASSWORD = "bench-user-password-1"  # bench/list.py and bench/auth.py create users with it


def post(n: int) -> dict[str, Any]:
    """Post ``n`` as every system stores it (title, body, views, published): the same
    values as ``bench/list.py`` (published in alternate blocks of 50, so half are)."""
    body = post_body(n, [""] * USERS)
    del body["owner"]
    return body


def published_count(records: int) -> int:
    return sum(1 for n in range(records) if (n // USERS) % 2 == 0)


def create_body(n: int) -> dict[str, Any]:
    """The body wrk's ``create`` sends (its Lua builds the same shape)."""
    return {"title": f"bench 0-{n}", "body": FILLER, "views": n % 1000, "published": n % 2 == 0}


@dataclass
class Scenario:
    """One load: ``kind`` says how wrk varies the request.

    * ``fixed``: the same request every time;
    * ``id``: ``path + "/" + a random line`` (a record id);
    * ``auth``: ``Authorization: <a random line>``;
    * ``create``: ``POST path`` with a JSON body numbered per request (:func:`create_body`);
    * ``password``: ``POST path`` ``{"identity": <a random line>, "password": PASSWORD}``;
    * ``refresh``: ``POST path`` with ``Authorization: <a random line>`` and no body.
    """

    name: str
    method: str
    path: str
    kind: str = "fixed"
    lines: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[Any], str | None] | None = None  # response -> what is wrong, or None
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None
    note: str = ""  # what the varying part is, when not the default wording below

    def describe(self) -> str:
        """The request as documented in the output."""
        heads = "".join(f" -H '{k}: {v}'" for k, v in self.headers.items())
        varying = {"id": "/<random id>", "auth": " (Authorization: a random one of the users' tokens)",
                   "create": " {title, body, views, published}",
                   "password": ' {"identity": <random user email>, "password": ...}',
                   "refresh": " (Authorization: a random one of the users' tokens)"}.get(self.kind, "")
        varying = f" {self.note}" if self.note else varying
        return f"{self.method} {self.path}{varying}{heads}"

    def first_response(self, base: str) -> Any:
        """The request of the correctness check: the first line, or create number 0."""
        import httpx

        headers = dict(self.headers)
        body: Any = None
        path = self.path
        if self.kind == "id":
            path = f"{path}/{self.lines[0]}"
        elif self.kind in ("auth", "refresh"):
            headers["Authorization"] = self.lines[0]
        elif self.kind == "password":
            body = {"identity": self.lines[0], "password": PASSWORD}
        elif self.kind == "create":
            body = create_body(0)
        return httpx.request(self.method, base + path, headers=headers, json=body, timeout=60)


class System:
    """A server under test. Subclasses set the names and implement start / seed / scenarios."""

    key = ""  # e.g. "bastion-sqlite": what --systems selects
    label = ""  # e.g. "Bastion"
    backend = ""  # "sqlite" or "postgres"

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.root = Path()
        self.dbname = ""  # PostgreSQL database, for its backends' CPU
        self.workers = 1  # server processes, where the system can run several (compare.py --workers)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def settings(self) -> str:
        raise NotImplementedError

    def start(self, ctx: Any) -> None:
        raise NotImplementedError

    def seed(self, ctx: Any) -> str:
        """Load the posts (and users); return how, for the output."""
        raise NotImplementedError

    def scenarios(self, ctx: Any) -> list[Scenario]:
        raise NotImplementedError


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    """Until ``url`` answers 200, the process exits (an error with its log) or ``timeout``."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


# --------------------------------------------------------------------------- checks
def _json(r: Any) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def check_page(items_of: Callable[[Any], Any], created: str, total_of: Callable[[Any], Any] | None = None,
               total: int = 0, each: Callable[[dict[str, Any]], bool] | None = None) -> Callable[[Any], str | None]:
    """200, 20 published items newest first (by ``created``), the total if asked, ``each`` holds."""

    def check(r: Any) -> str | None:
        body = _json(r)
        items = items_of(body) if r.status_code == 200 and body is not None else None
        if not isinstance(items, list) or len(items) != PER_PAGE:
            return f"status {r.status_code}, wanted {PER_PAGE} items: {r.text[:300]}"
        if not all(i.get("published") in (True, 1) for i in items):
            return "an unpublished item in the page"
        stamps = [str(i.get(created)) for i in items]
        if stamps != sorted(stamps, reverse=True):
            return f"not newest first by {created}: {stamps[:3]}..."
        if total_of is not None and total_of(body) != total:
            return f"total {total_of(body)!r}, wanted {total}"
        if each is not None and not all(each(i) for i in items):
            return f"an item fails the scenario's own check: {items[0]}"
        return None

    return check


def check_one(status: tuple[int, ...], ok: Callable[[Any], bool]) -> Callable[[Any], str | None]:
    def check(r: Any) -> str | None:
        body = _json(r)
        if r.status_code not in status or body is None or not ok(body):
            return f"status {r.status_code}: {r.text[:300]}"
        return None

    return check
