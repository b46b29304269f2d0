"""Record hooks: around creates, updates and deletes, and list and view requests.

Each write has three hooks, as in PocketBase:

- ``on_record_create`` (``_update``, ``_delete``): inside the write's transaction. Before
  ``await e.next()`` the handler may change ``e.body`` (the values to write, validated as
  a request's would be) or refuse by raising an API error (``BadRequest``,
  ``ValidationFailed`` with field errors ...): nothing is written. After ``next()``,
  ``e.record`` is the record as the API shows it, not yet committed: raising still undoes
  everything. A chain that does not reach its end (a handler returned without calling
  ``next()``) cancels the write with a 400.
- ``on_record_after_create_success``: once the transaction committed (a batch's
  changes once the batch did), with ``e.record`` as stored (a ``Record``) and, for an
  update, ``e.previous``. A handler that raises is logged; the write stands.
- ``on_record_after_create_error``: once a write failed and rolled back, with ``e.error``.

``on_records_list_request`` and ``on_record_view_request`` wrap the reads of the records
API: ``e.result`` / ``e.record`` are there after ``next()``, to change or replace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.core.hooks.chain import Chain, Event, Handler, decorator
from bastion.core.hooks.cron import CronHandler, CronJob, cron_job
from bastion.core.hooks.jobs import JobHandler, JobKind, job_kind
from bastion.core.hooks.routes import CustomRoute, RouteHandler, custom_route
from bastion.core.records.changes import RecordChange
from bastion.core.records.record import Record
from bastion.core.schema.collections import Collection

if TYPE_CHECKING:
    from bastion.core.access import AuthIdentity, RequestInfo
    from bastion.core.ports import Connection
    from bastion.core.records.query import ListParams

log = logging.getLogger("bastion.hooks")


@dataclass(eq=False)
class RecordEvent(Event):
    """A write: before it (change ``body``), after it (``record``) or after its failure (``error``)."""

    action: str  # create, update or delete
    collection: Collection
    info: RequestInfo
    body: dict[str, Any] = field(default_factory=dict)
    record_id: str = ""
    conn: Connection | None = None  # the write's transaction
    record: dict[str, Any] | None = None
    error: BaseException | None = None

    @property
    def auth(self) -> AuthIdentity | None:
        return self.info.auth


@dataclass(eq=False)
class CommittedEvent(Event):
    """A committed change."""

    action: str
    collection: Collection
    record: Record
    previous: Record | None = None


@dataclass(eq=False)
class ListEvent(Event):
    collection: Collection
    info: RequestInfo
    params: ListParams
    result: dict[str, Any] | None = None  # the page, after next()


@dataclass(eq=False)
class ViewEvent(Event):
    collection: Collection
    info: RequestInfo
    record_id: str
    record: dict[str, Any] | None = None  # after next()


@dataclass(eq=False)
class MailEvent(Event):
    """An email of an auth collection (verification, password reset, email change, OTP,
    sign-in alert): change ``to``, ``subject`` or ``html`` before ``next()`` sends it; a
    chain that does not reach its end cancels it."""

    kind: str  # the template: verificationTemplate, resetPasswordTemplate, otp ...
    collection: Collection
    record: dict[str, Any]
    to: str
    subject: str
    html: str


@dataclass(eq=False)
class AuthEvent(Event):
    """A sign-in about to answer: ``method`` (password, otp, oauth2 ...), the signed-in
    ``record`` (as the API shows it), and after ``next()`` the ``token`` issued."""

    collection: Collection
    method: str
    record: dict[str, Any]
    info: RequestInfo
    token: str = ""
    meta: dict[str, Any] | None = None


ACTIONS = ("create", "update", "delete")


class Hooks:
    """Every hook chain of an App."""

    def __init__(self) -> None:
        self.write = {a: Chain[RecordEvent](f"on_record_{a}") for a in ACTIONS}
        self.success = {a: Chain[CommittedEvent](f"on_record_after_{a}_success") for a in ACTIONS}
        self.error = {a: Chain[RecordEvent](f"on_record_after_{a}_error") for a in ACTIONS}
        self.list = Chain[ListEvent]("on_records_list_request")
        self.view = Chain[ViewEvent]("on_record_view_request")
        self.mail = Chain[MailEvent]("on_mailer_send")
        self.auth = Chain[AuthEvent]("on_record_auth_request")
        self.routes: list[CustomRoute] = []  # the app's own endpoints (``core/hooks/routes.py``)
        self.crons: dict[str, CronJob] = {}  # the app's cron jobs (``core/hooks/cron.py``)
        self.jobs: dict[str, JobKind] = {}  # the kinds of background job (``core/hooks/jobs.py``)

    def chains(self) -> list[Chain[Any]]:
        return [*self.write.values(), *self.success.values(), *self.error.values(), self.list, self.view,
                self.mail, self.auth]

    def clear(self) -> None:
        """Forget every handler (hook files are loaded again)."""
        for chain in self.chains():
            chain.clear()
        self.routes.clear()
        self.crons.clear()
        self.jobs.clear()

    def around_write(self, action: str, col: Collection) -> bool:
        return self.write[action].has(col) or self.error[action].has(col)

    async def committed(self, changes: Sequence[RecordChange]) -> None:
        """The records service's change listener: the after-success hooks."""
        for change in changes:
            chain = self.success[change.action]
            if not chain.has(change.collection):
                continue
            try:
                await chain.run(CommittedEvent(change.action, change.collection, change.record, change.previous),
                                change.collection)
            except Exception:  # noqa: BLE001 - the write committed; a hook's failure is logged
                log.exception("hook %s failed on %s %s", chain.name, change.collection.name, change.record.id)


Register = Callable[[Handler[Any]], Handler[Any]]


class HookDecorators:
    """The decorators an App offers (``@app.on_record_create("posts")``)."""

    hooks: Hooks

    def on_record_create(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.write["create"], collections, priority)

    def on_record_update(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.write["update"], collections, priority)

    def on_record_delete(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.write["delete"], collections, priority)

    def on_record_after_create_success(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.success["create"], collections, priority)

    def on_record_after_update_success(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.success["update"], collections, priority)

    def on_record_after_delete_success(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.success["delete"], collections, priority)

    def on_record_after_create_error(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.error["create"], collections, priority)

    def on_record_after_update_error(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.error["update"], collections, priority)

    def on_record_after_delete_error(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.error["delete"], collections, priority)

    def on_records_list_request(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.list, collections, priority)

    def on_record_view_request(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.view, collections, priority)

    def on_mailer_send(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.mail, collections, priority)

    def on_record_auth_request(self, *collections: str, priority: int = 0) -> Register:
        return decorator(self.hooks.auth, collections, priority)

    def cron(self, job_id: str, expression: str) -> Callable[[CronHandler], CronHandler]:
        """Run the decorated coroutine function on ``expression``'s schedule (UTC), once per
        due minute across every process of the app."""
        def register(handler: CronHandler) -> CronHandler:
            if job_id in self.hooks.crons:
                raise ValueError(f"cron job {job_id!r} is declared twice")
            self.hooks.crons[job_id] = cron_job(job_id, expression, handler)
            return handler
        return register

    def job(self, name: str, *, retries: int = 3, timeout: float = 60.0,
            backoff: float = 2.0) -> Callable[[JobHandler], JobHandler]:
        """Declare a kind of background job run by the decorated coroutine function
        (queued with ``app.jobs.enqueue(name, payload)``)."""
        def register(handler: JobHandler) -> JobHandler:
            if name in self.hooks.jobs:
                raise ValueError(f"job {name!r} is declared twice")
            self.hooks.jobs[name] = job_kind(name, handler, retries, timeout, backoff)
            return handler
        return register

    def route(self, method: str, path: str, *, auth: str = "anyone", summary: str = "",
              transaction: bool = False) -> Callable[[RouteHandler], RouteHandler]:
        """Serve ``method path`` (under ``/api/``) with the decorated handler."""
        def register(handler: RouteHandler) -> RouteHandler:
            self.hooks.routes.append(custom_route(method, path, handler, auth, summary, transaction))
            for changed in getattr(self, "routes_changed", ()):
                changed()
            return handler
        return register
