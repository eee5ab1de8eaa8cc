"""What imports add to the privacy notice: once people came from another newsletter tool's
export, "where we get it" says so (policy.notice.register_source_provider)."""

from __future__ import annotations

from ..models import Import
from .columns import PURPOSE

MOVED_LISTS = "lists moved from our earlier newsletter tool"


def notice_sources() -> dict[str, tuple[str, ...]]:
    """{newsletter: (MOVED_LISTS,)} once an import brought anyone in, else {}."""
    moved = Import.objects.filter(status=Import.Status.FINISHED, dry_run=False).filter(
        created__gt=0
    )
    return {PURPOSE: (MOVED_LISTS,)} if moved.exists() else {}
