"""What every mail built with Django's ``EmailMessage`` gets before it leaves through
``MAILERS``: a Message-ID at the From address's domain.

Django gives a message without one ``<…@DNS_NAME>``, the host's name, which on most servers
is ``localhost`` (or a name no receiver knows); the mail tidings queues itself carries a
Message-ID at the From domain (``messages.message_id_for``).  Spam filters score a Message-ID
whose domain is not the sender's, so the rights verification mail, operator notifications,
password resets and the rest get the same domain as the rest of tidings' mail.  Done in the
backends (``SmtpEmailBackend`` here, the outbox's), not at each call site, so mail Django
itself builds (password reset) is covered too.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import make_msgid

from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend

from ..messages import domain_of


def stamp_message_ids(messages: Sequence[EmailMessage]) -> Sequence[EmailMessage]:
    """Give each message without a Message-ID one at its From address's domain."""
    for message in messages:
        if any(name.lower() == "message-id" for name in message.extra_headers):
            continue
        # The From domain's ASCII form (a header is ASCII): "localhost" when it has none.
        domain = domain_of(str(message.extra_headers.get("From", message.from_email)))
        if domain != "localhost":
            message.extra_headers["Message-ID"] = make_msgid(domain=domain)
    return messages


class SmtpEmailBackend(EmailBackend):
    """Django's SMTP backend (``TIDINGS_SMTP_URL``), with Message-IDs at the From domain."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        return super().send_messages(stamp_message_ids(email_messages))
