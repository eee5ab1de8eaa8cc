"""The embedded outbox."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """A message "sent" through the embedded outbox transport (demo and tests): kept, not sent."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    from_email = models.CharField(max_length=320)
    to = models.TextField(help_text="Recipients, one per line.")
    subject = models.CharField(max_length=998, blank=True)
    message = models.BinaryField(help_text="The whole RFC 5322 message, as it would be sent.")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Outbox message #{self.pk}"

    def parsed(self):
        from email import policy
        from email.parser import BytesParser

        return BytesParser(policy=policy.default).parsebytes(bytes(self.message))

    def body(self, subtype: str = "plain") -> str:
        part = self.parsed().get_body(preferencelist=(subtype,))
        return part.get_content().replace("\r\n", "\n") if part is not None else ""
