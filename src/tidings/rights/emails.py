"""The emails of data-subject requests: verification link, extension notice, receipt, refusal,
and the near-due reminder to privacy officers.

They are rendered by ``campaigns.mail.render_system_email`` (the same subject/text/html triples
as every system email, editable by operators) but sent straight through the installation's mailer
rather than queued for the delivery engine: the engine sends to *contacts*, and these go to an
address that may belong to nobody we hold (a request from a stranger must get the same email as
one from a subscriber), or to nobody any more (the erasure receipt).  Callers send them only from
``transaction.on_commit``; a failure is logged by request id (never the address) and the request
page still shows what the email would have said.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.mail import EmailMultiAlternatives

from tidings.campaigns.mail import from_address, render_system_email

logger = logging.getLogger(__name__)


def send_rights_email(
    to: Iterable[str], key: str, context: Mapping[str, Any], *, request_id: int | None = None
) -> bool:
    """Render system email ``key`` and send it now to ``to``; False (logged) if sending failed."""
    recipients = [address for address in to if address]
    if not recipients:
        return False
    subject, text, html = render_system_email(key, {"name": "", **context})
    message = EmailMultiAlternatives(subject, text, from_address(), recipients)
    message.extra_headers["Auto-Submitted"] = "auto-generated"
    if html:
        message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception as exc:
        # The class name only: an SMTP error's text may quote the recipient's address.
        logger.error(
            "rights email %s for request %s could not be sent: %s",
            key,
            request_id,
            type(exc).__name__,
        )
        return False
    return True
