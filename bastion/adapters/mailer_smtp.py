"""Email over SMTP with aiosmtplib, configured at run time by ``settings.smtp``.

When SMTP is switched off the message is dropped with a warning (without its body, which
may hold a token), so flows keep answering as PocketBase's do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

import aiosmtplib

from bastion.core.errors import Unavailable

log = logging.getLogger("bastion.mail")
TIMEOUT = 15.0


class SmtpMailer:
    def __init__(self, settings: Callable[[], dict[str, Any]]):
        self._settings = settings  # the current settings JSON, read on every send

    async def send(self, to: str, subject: str, html: str) -> None:
        conf = self._settings()
        smtp, meta = conf["smtp"], conf["meta"]
        if not smtp["enabled"]:
            log.warning("email to %s not sent: SMTP is switched off in the settings", to)
            return
        message = EmailMessage()
        message["From"] = formataddr((meta["senderName"], meta["senderAddress"]))
        message["To"] = to
        message["Subject"] = subject
        message.set_content("This message needs an HTML-capable mail client.")
        message.add_alternative(html, subtype="html")
        port = int(smtp["port"])
        try:
            await aiosmtplib.send(
                message, hostname=smtp["host"], port=port, timeout=TIMEOUT,
                username=smtp["username"] or None, password=smtp.get("password") or None,
                use_tls=bool(smtp["tls"]) and port == 465, start_tls=bool(smtp["tls"]) and port != 465 or None,
                local_hostname=smtp["localName"] or None,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.error("email to %s failed: %s", to, exc.__class__.__name__)
            raise Unavailable("The mail server could not be reached; please try again later.") from exc
