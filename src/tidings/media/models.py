"""The media library: pictures operators upload once and use in emails and on public pages."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify


class MediaImage(models.Model):
    """One picture, re-encoded on upload (no metadata survives), stored in the database so every
    web process serves it and backups include it.

    Not personal data unless an operator says whom it shows (``contact``): then it is in that
    person's access package and goes with them on erasure (``personal_data.py``)."""

    key = models.CharField(
        max_length=32, unique=True, help_text="The first 128 bits of the stored bytes' SHA-256."
    )
    name = models.CharField(max_length=200)
    alt = models.CharField(
        max_length=300, blank=True, help_text="What it shows, for people who cannot see it."
    )
    content_type = models.CharField(max_length=20)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text="Bytes stored.")
    data = models.BinaryField()
    # SET_NULL: a picture does not keep its person on file by itself (the retention sweep
    # erases someone nothing else holds); erasure removes the picture through the "pictures"
    # personal-data source before the contact goes.
    contact = models.ForeignKey(
        "audience.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Set when the picture shows this person: then it is their personal data.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def extension(self) -> str:
        return {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif"}[self.content_type]

    @property
    def file_name(self) -> str:
        return f"{slugify(self.name)[:60] or 'image'}.{self.extension}"

    @property
    def path(self) -> str:
        """The address blocks store: /media/<key>/<name>.<ext> (the key changes with the bytes,
        so the address can be cached for ever)."""
        return reverse("media_public:image", args=[self.key, self.file_name])

    @property
    def personal(self) -> bool:
        return self.contact_id is not None
