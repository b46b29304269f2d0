"""Test Bastion apps, and your hooks on them, without a server.

Everything here runs Bastion in your test's own process and event loop:

- :func:`temporary_app` - a started App on a throwaway database (SQLite, PostgreSQL or
  MariaDB) with a superuser; :class:`Templates` makes many of them quickly by copying one
  bootstrapped database per engine.
- :func:`test_client` / :class:`TestClient` - an httpx client sending requests straight to
  that App, holding the superuser's token (``client.su()``).
- :func:`create_user`, :func:`sign_in`, :func:`token_for` - accounts and tokens through the API.
- :func:`catch_mail` / :class:`Inbox` - a real SMTP server on 127.0.0.1 receiving the
  App's mail (needs ``aiosmtpd``, in the ``test`` extra).
- :class:`Server`, :func:`run_cli` - ``bastion serve`` and other commands as real processes.
- :func:`load_hooks` - your hook files (``bastion_hooks/``) registered on an App.

See docs/testing.md for examples with pytest.
"""

from bastion.adapters.hook_files import HookFileError, load_hooks
from bastion.testing.apps import Template, Templates, app_on, started, temporary_app
from bastion.testing.client import (
    SUPERUSER_EMAIL,
    SUPERUSER_PASSWORD,
    USER_PASSWORD,
    TestClient,
    asgi_for,
    create_user,
    sign_in,
    test_client,
    token_for,
)
from bastion.testing.databases import (
    DatabaseMaker,
    MariadbMaker,
    PostgresMaker,
    SqliteMaker,
    TemporaryDatabase,
    engines,
    unique_name,
)
from bastion.testing.mail import Inbox, catch_mail, token_in
from bastion.testing.servers import Server, free_port, run_cli, wait_until_healthy

__all__ = [
    "SUPERUSER_EMAIL", "SUPERUSER_PASSWORD", "USER_PASSWORD", "DatabaseMaker", "HookFileError", "Inbox",
    "MariadbMaker", "load_hooks",
    "PostgresMaker", "Server", "SqliteMaker", "Template", "Templates", "TemporaryDatabase", "TestClient",
    "app_on", "asgi_for", "catch_mail", "create_user", "engines", "free_port", "run_cli", "sign_in", "started",
    "temporary_app", "test_client", "token_for", "token_in", "unique_name", "wait_until_healthy",
]
