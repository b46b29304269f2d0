"""Chains of hook handlers, as PocketBase's: each handler receives the event, does its
part and calls ``await e.next()`` to run the rest of the chain (and, at its end,
Bastion's own work); code after ``next()`` runs once the rest is done. A handler that
raises stops everything; one that returns without calling ``next()`` stops the chain
there (for a write: the write does not happen, see ``core/hooks/records.py``).

A handler is registered for some collections (by name or id) or for all, with a
priority: lower runs first (outer), registration order within one priority.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bastion.core.schema.collections import Collection

E = TypeVar("E", bound="Event")
Handler = Callable[[E], Awaitable[None]]


class Event:
    """What every hook event has: ``next()``."""

    _rest: Callable[[], Awaitable[None]] | None = None

    async def next(self) -> None:
        """Run the rest of the chain (then Bastion's own work)."""
        rest, self._rest = self._rest, None
        if rest is None:
            raise RuntimeError("e.next() was called twice in one handler chain")
        await rest()


@dataclass(frozen=True)
class _Handled(Generic[E]):
    handler: Handler[E]
    collections: frozenset[str]
    priority: int
    order: int

    def applies(self, col: Collection | None) -> bool:
        return not self.collections or (col is not None and bool({col.name, col.id} & self.collections))


@dataclass
class Chain(Generic[E]):
    """The handlers of one hook, e.g. ``on_record_create``."""

    name: str
    _entries: list[_Handled[E]] = field(default_factory=list)
    _count: int = 0

    def add(self, handler: Handler[E], collections: Iterable[str] = (), priority: int = 0) -> Handler[E]:
        self._count += 1
        self._entries.append(_Handled(handler, frozenset(collections), priority, self._count))
        self._entries.sort(key=lambda e: (e.priority, e.order))
        return handler

    def clear(self) -> None:
        self._entries.clear()

    def has(self, col: Collection | None = None) -> bool:
        return any(e.applies(col) for e in self._entries)

    async def run(self, event: E, col: Collection | None, last: Callable[[], Awaitable[None]] | None = None) -> bool:
        """Run the handlers for ``col`` on ``event``, then ``last``. Whether the chain
        reached its end (every handler called ``next()``)."""
        handlers = [e.handler for e in self._entries if e.applies(col)]
        reached = [False]

        def step(i: int) -> Callable[[], Awaitable[None]]:
            async def run_from() -> None:
                if i == len(handlers):
                    reached[0] = True
                    if last is not None:
                        await last()
                    return
                saved = event._rest
                event._rest = step(i + 1)
                try:
                    await handlers[i](event)
                finally:
                    event._rest = saved
            return run_from

        await step(0)()
        return reached[0]


def decorator(chain: Chain[Any], collections: tuple[str, ...], priority: int) -> Callable[[Handler[Any]], Handler[Any]]:
    def register(handler: Handler[Any]) -> Handler[Any]:
        return chain.add(handler, collections, priority)
    return register
