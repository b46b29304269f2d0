"""``app.events``: the outbox, its relay and the in-process consumers, as one."""

from __future__ import annotations

from bastion.core.events.envelope import Shape
from bastion.core.events.local import Consumer, LocalBroker
from bastion.core.events.outbox import Outbox
from bastion.core.events.relay import Relay, RelayPolicy
from bastion.core.ports import Database, EventPublisher


class Events:
    """Off (``enabled`` false, nothing written) unless the App was given a publisher."""

    def __init__(self, db: Database, publisher: EventPublisher | None, shape: Shape,
                 policy: RelayPolicy | None = None):
        self.publisher = publisher
        self.outbox = Outbox(db, shape)
        self.relay = Relay(self.outbox, publisher, policy) if publisher is not None else None

    @property
    def enabled(self) -> bool:
        return self.relay is not None

    def consumer(self, fn: Consumer) -> Consumer:
        """Register an in-process consumer of every event (a decorator); needs the
        in-process broker (``--events-broker memory``)."""
        if not isinstance(self.publisher, LocalBroker):
            raise RuntimeError("in-process event consumers need the in-process broker (--events-broker memory)")
        return self.publisher.consumer(fn)

    def start(self) -> None:
        if self.relay is not None:
            self.relay.start()

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
