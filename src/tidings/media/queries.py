"""Reading the media library, for other apps (the block editor's picker, branding)."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import MediaImage

PICKER_LIMIT = 200


def library() -> QuerySet[MediaImage]:
    """Every picture, newest first, without its bytes."""
    return MediaImage.objects.defer("data").order_by("-created_at", "-pk")


def picker_choices() -> list[tuple[str, str, str]]:
    """(address, "name (width×height)", description) for the newest pictures: the choices of an
    image field (the description becomes the block's alt text when it has none)."""
    return [
        (image.path, f"{image.name} ({image.width}×{image.height})", image.alt)
        for image in library()[:PICKER_LIMIT]
    ]


def by_path(path: str) -> MediaImage | None:
    """The library's picture at ``path`` (/media/<key>/...), if there is one."""
    parts = path.split("/")
    if len(parts) < 4 or parts[1] != "media":
        return None
    return library().filter(key=parts[2]).first()
