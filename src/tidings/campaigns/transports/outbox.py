"""The embedded outbox: a Django email backend that keeps each message in the database."""

from __future__ import annotations

from django.core.mail.backends.base import BaseEmailBackend


def _wire_bytes(message) -> bytes:
    """The message as it would cross the wire: CRLF line ends."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        from tidings.campaigns.models import OutboxMessage

        rows = [
            OutboxMessage(
                from_email=m.from_email,
                to="\n".join(m.recipients()),
                subject=str(m.subject),
                message=_wire_bytes(m.message()),
            )
            for m in email_messages
        ]
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)
