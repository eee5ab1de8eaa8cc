"""DMARC aggregate reports (RFC 7489 §7.2): what receivers saw of mail sent as our domains.

They hold no personal data: the addresses in them are those of sending *servers* (ours, our
providers', or someone spoofing the domain), with domains, counts and authentication results.
No recipient appears in them, so they are not in the privacy notice, the access package or
erasure.  (Failure reports, "ruf", can quote messages and addresses: they are never kept.)
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DmarcReport(models.Model):
    """One report as it arrived; kept with the reason when it could not be read."""

    class Status(models.TextChoices):
        UNPROCESSED = "unprocessed", "Unprocessed"
        PROCESSED = "processed", "Processed"

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=40, help_text="pipe, imap, pop3, file or upload.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UNPROCESSED)
    reason = models.CharField(max_length=300, blank=True)
    org_name = models.CharField(max_length=200, blank=True, help_text="Who reported it.")
    report_id = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=253, blank=True, help_text="The domain it is about.")
    policy = models.CharField(max_length=20, blank=True, help_text="The p= it saw published.")
    begin = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    messages = models.PositiveBigIntegerField(default=0)
    raw = models.BinaryField(blank=True, default=b"", help_text="Kept while unprocessed only.")

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["org_name", "report_id"])]

    def __str__(self) -> str:
        return f"DMARC report #{self.pk} ({self.status})"


class DmarcRecord(models.Model):
    """Messages from one sending address on one day, with one outcome."""

    report = models.ForeignKey(DmarcReport, on_delete=models.CASCADE, related_name="records")
    day = models.DateField()
    source_ip = models.GenericIPAddressField()
    header_from = models.CharField(max_length=253)
    count = models.PositiveBigIntegerField()
    dmarc_pass = models.BooleanField()
    spf_aligned = models.BooleanField()
    dkim_aligned = models.BooleanField()
    disposition = models.CharField(max_length=20, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["day"]),
            models.Index(fields=["source_ip", "day"]),
        ]

    def __str__(self) -> str:
        return f"{self.source_ip} {self.day}: {self.count}"
