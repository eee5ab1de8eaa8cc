"""The visitor's address, as far as it can be trusted."""

from __future__ import annotations

from typing import Any, Protocol

from django.conf import settings


class HasMeta(Protocol):
    """A request, or anything with its META (the WSGI environ): the fast paths have no
    HttpRequest."""

    @property
    def META(self) -> dict[str, Any]: ...


def client_ip(request: HasMeta) -> str | None:
    """The visitor's address.  Behind a reverse proxy (TIDINGS_BEHIND_PROXY), the address the
    proxy appended to X-Forwarded-For: the last entry, the only one a client cannot forge."""
    if getattr(settings, "TIDINGS_BEHIND_PROXY", False):
        forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
        if forwarded.strip():
            return forwarded.split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR") or None
