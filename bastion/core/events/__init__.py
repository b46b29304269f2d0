"""Events, never lost: a transactional outbox of record changes (``outbox.py``), its
CloudEvents envelope (``envelope.py``) and the relay that publishes it to a broker
(``relay.py``); ``local.py`` is the in-process broker with Python consumers."""
