"""The embedded outbox: messages are kept in the database (``OutboxMessage``), not sent.

Two faces: ``EmailBackend`` is a Django email backend (for Django's own mail API), and
``OutboxTransport`` is the delivery engine's transport.  The transport stores each message in the
same database transaction that marks its delivery sent, so through the outbox every message is
stored exactly once, crash or no crash.
"""

from __future__ import annotations

import collections

from django.core.mail.backends.base import BaseEmailBackend

from .base import Email, Transport, TransportConfig


def _wire_bytes(message) -> bytes:
    """The message as it would cross the wire: CRLF line ends."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        from tidings.campaigns.models import OutboxMessage

        from .mailers import stamp_message_ids

        rows = [
            OutboxMessage(
                from_email=m.from_email,
                to="\n".join(m.recipients()),
                subject=str(m.subject),
                message=_wire_bytes(m.message()),
            )
            for m in stamp_message_ids(email_messages)
        ]
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)


class OutboxTransport(Transport):
    wants_bytes = True

    def __init__(self, config: TransportConfig) -> None:
        super().__init__(config)
        # Appended by the event loop, drained by the database thread (deque: thread-safe).
        self._pending: collections.deque = collections.deque()

    async def send(self, email: Email, slot: int) -> str:
        self._pending.append((email.from_header, email.recipient, email.subject, email.data))
        return ""

    def commit(self) -> None:
        from tidings.campaigns.models import OutboxMessage

        rows = []
        while self._pending:
            from_email, to, subject, data = self._pending.popleft()
            rows.append(
                OutboxMessage(from_email=from_email, to=to, subject=subject[:998], message=data)
            )
        if rows:
            try:
                OutboxMessage.objects.bulk_create(rows, batch_size=500)
            except Exception:
                # The transaction failed: keep them for the next flush, which records their rows.
                self._pending.extendleft(
                    reversed([(r.from_email, r.to, r.subject, r.message) for r in rows])
                )
                raise
