"""Changes to the media library: every one through a named action with its audit entry (file
names and ids, never pictures)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tidings.lib.audit import audit

from .images import process
from .models import MediaImage
from .usage import uses_of


class ImageInUse(Exception):
    """The picture is still used; ``uses`` say where, in words."""

    def __init__(self, uses: list[str]) -> None:
        self.uses = uses
        shown = ", ".join(uses[:5]) + (f" and {len(uses) - 5} more" if len(uses) > 5 else "")
        super().__init__(f"still used by {shown}")


@transaction.atomic
def do_upload_image(raw: bytes, *, name: str, alt: str = "", actor: Any) -> tuple[MediaImage, bool]:
    """Re-encode and store a picture; (image, created).  The same picture uploaded again
    (byte for byte, after re-encoding) is the one already in the library.  Raises
    images.ImageRefused."""
    processed = process(raw)
    name = " ".join(name.split())[:200] or "Untitled picture"
    image, created = MediaImage.objects.get_or_create(
        key=processed.key,
        defaults={
            "name": name,
            "alt": " ".join(alt.split())[:300],
            "content_type": processed.content_type,
            "width": processed.width,
            "height": processed.height,
            "size": len(processed.data),
            "data": processed.data,
            "created_by": actor if getattr(actor, "is_authenticated", False) else None,
        },
    )
    if created:
        audit("media.uploaded", actor=actor, obj=image, bytes=image.size)
    return image, created


@transaction.atomic
def do_describe_image(image: MediaImage, *, name: str, alt: str, actor: Any) -> None:
    image.name = " ".join(name.split())[:200] or image.name
    image.alt = " ".join(alt.split())[:300]
    image.save(update_fields=["name", "alt"])
    audit("media.described", actor=actor, obj=image, fields=["name", "alt"])


@transaction.atomic
def do_mark_image_personal(image: MediaImage, contact: Any, *, actor: Any) -> None:
    """Say whom the picture shows (it becomes their personal data: access and erasure), or
    ``contact=None``: it shows nobody identifiable."""
    image.contact = contact
    image.save(update_fields=["contact"])
    audit("media.personal_set", actor=actor, obj=image, personal=contact is not None)


@transaction.atomic
def do_delete_image(image: MediaImage, *, actor: Any) -> None:
    """Remove it; emails already sent show a missing picture where it was.  Raises ImageInUse
    (and deletes nothing) while a template, a layout or an unsent campaign still shows it."""
    uses = uses_of(image.key)
    if uses:
        raise ImageInUse(uses)
    audit("media.deleted", actor=actor, obj=image)
    image.delete()
