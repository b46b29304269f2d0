"""One process of ``bastion serve --workers N``, started by the supervisor (``cli/workers.py``).

``python -m bastion.cli.worker INDEX`` serves on the listening socket it inherited;
``python -m bastion.cli.worker --prepare`` applies pending migrations and creates the
system collections once, before any worker starts, and prints the banner. Both read the
JSON the supervisor put in ``BASTION_WORKER_PAYLOAD``: the configuration, the socket's
file descriptor and the supervisor's shared folder.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from bastion.cli.runner import WorkerPlace, run
from bastion.cli.server import print_banner, print_superuser_hint, serve_forever
from bastion.cli.workers import PAYLOAD_VARIABLE, config_from
from bastion.core.app import App


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor passes Ctrl-C on as SIGTERM
    raw = os.environ.pop(PAYLOAD_VARIABLE, "")
    if not raw or not argv:
        print("bastion.cli.worker is started by `bastion serve --workers N`, not by hand.", file=sys.stderr)
        return 2
    payload = json.loads(raw)
    config = config_from(payload["config"])
    host, port = config.host_port()
    if argv == ["--prepare"]:
        async def prepare(app: App) -> None:
            print_banner(config, host, port, app.db.url_for_display)
            await print_superuser_hint(app, config)

        return _exit_code(lambda: run(config, prepare))
    index = int(argv[0])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s[w{index}]: %(message)s")
    place = WorkerPlace(index, socket.socket(fileno=int(payload["fd"])), Path(payload["shared"]))
    return _exit_code(lambda: run(
        config, lambda app: serve_forever(app, config, host, port, place), apply_migrations=False, place=place))


def _exit_code(work: Callable[[], object]) -> int:
    try:
        work()
    except typer.Exit as exc:
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
