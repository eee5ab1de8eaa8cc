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
        self._pending.append(
            (email.from_header, email.recipient, email.subject, email.data, email.claim)
        )
        return ""

    def commit(self) -> None:
        from tidings.campaigns.models import OutboxMessage

        pending = []
        while self._pending:
            pending.append(self._pending.popleft())
        if not pending:
            return
        try:
            rows = [
                OutboxMessage(from_email=from_email, to=to, subject=subject[:998], message=data)
                for from_email, to, subject, data, claim in _not_erased(pending)
            ]
            OutboxMessage.objects.bulk_create(rows, batch_size=500)
        except Exception:
            # The transaction failed: keep them for the next flush, which records their rows.
            self._pending.extendleft(reversed(pending))
            raise


def _not_erased(pending: list[tuple]) -> list[tuple]:
    """The messages whose recipient was not erased since their row was claimed: an erasure
    that ran while the message was rendered and sent has blanked the outbox copies it found,
    and the copy stored now must not bring the person's address and mail back.

    Erasure locks the person's contact row before it looks for anything (``rights.erasure``);
    locking the same rows here (in the flush's transaction, before the queue rows are
    updated) means an erasure either finished before (its anonymised queue row says so: no
    contact any more) or waits for this copy to be committed and then finds and blanks it.
    Messages claimed for no contact (to an operator) are always kept."""
    from tidings.audience.models import Contact
    from tidings.campaigns.models import Delivery, OutgoingMessage

    claims = [item[4] for item in pending if item[4] is not None and item[4][2] is not None]
    if not claims:
        return pending
    list(
        Contact.objects.select_for_update()
        .filter(pk__in=sorted({contact_id for _, _, contact_id in claims}))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    still: set[tuple[str, int]] = set()
    for kind, model in (("d", Delivery), ("o", OutgoingMessage)):
        ids = [row_id for claimed_kind, row_id, _ in claims if claimed_kind == kind]
        if ids:
            held = model.objects.filter(pk__in=ids, contact__isnull=False)
            still.update((kind, pk) for pk in held.values_list("pk", flat=True))
    return [
        item
        for item in pending
        if item[4] is None or item[4][2] is None or (item[4][0], item[4][1]) in still
    ]
