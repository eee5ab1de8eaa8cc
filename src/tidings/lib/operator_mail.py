"""Mail to operators about their work: a campaign that paused itself, a campaign or a journey
waiting for a second operator.  System mail from ``SERVER_EMAIL``, carrying a name and a link,
never a person's data."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


def mail_operators(recipients: Sequence[str], subject: str, message: str, *, about: str) -> int:
    """Send ``message`` to the operators' ``recipients``; how many were emailed.  A failure is
    logged (``about`` says what it was about) and answers 0: the page says the same either
    way, so the work it is about goes on."""
    if not recipients:
        return 0
    try:
        send_mail(
            subject=subject,
            message=message,
            from_email=settings.SERVER_EMAIL,
            recipient_list=list(recipients),
        )
    except Exception:
        logger.exception("could not email operators about %s", about)
        return 0
    return len(recipients)
