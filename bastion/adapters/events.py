"""Opening the broker the outbox relay publishes to, from ``--events-broker``."""

from __future__ import annotations

from urllib.parse import urlsplit

from bastion.core.events.local import LocalBroker
from bastion.core.ports import EventPublisher


def open_publisher(url: str, stream: str) -> EventPublisher | None:
    """``""``: none (the outbox is off); ``memory``: in this process; ``redis://`` or
    ``rediss://``: Redis Streams; ``nats://`` or ``tls://``: NATS JetStream. ``stream``
    names the Redis stream or the JetStream stream."""
    if not url:
        return None
    if url == "memory":
        return LocalBroker()
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        from bastion.adapters.events_redis import RedisStreamPublisher

        return RedisStreamPublisher(url, stream)
    if scheme in ("nats", "tls"):
        from bastion.adapters.events_nats import JetStreamPublisher

        return JetStreamPublisher(url, stream)
    raise ValueError(f"--events-broker must be memory, redis://... or nats://..., got {url!r}")
