"""The embedded outbox: a Django email backend that keeps each message in the database."""

from __future__ import annotations

from django.core.mail.backends.base import BaseEmailBackend


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        from tidings.campaigns.models import OutboxMessage

        rows = [
            OutboxMessage(
                from_email=m.from_email,
                to="\n".join(m.recipients()),
                subject=str(m.subject),
                message=m.message().as_bytes(linesep="\r\n"),
            )
            for m in email_messages
        ]
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)
