"""The door to system mail for the apps below campaigns.

System mail (a sign-up's confirmation, the welcome, the preference link) is rendered in the
campaigns' sandbox and queued on the campaigns' outbox, in the caller's transaction
(``campaigns.mail.send_system_email``).  The audience app sends it but sits below campaigns in
the layers, so it calls this module instead, and the campaigns app plugs its sender in when it
starts (``CampaignsConfig.ready``).  Apps above campaigns may import ``campaigns.mail`` directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured


class Sender(Protocol):
    def __call__(
        self,
        contact: Any,
        key: str,
        context: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        attachments: Sequence[Mapping[str, str]] = (),
    ) -> None: ...


_sender: Sender | None = None


def provide(sender: Sender) -> None:
    """Install the function that renders and queues system mail (the campaigns app's)."""
    global _sender
    _sender = sender


def send_system_email(
    contact: Any,
    key: str,
    context: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[Mapping[str, str]] = (),
) -> None:
    """Render system email ``key`` for ``contact`` and queue it in the caller's transaction
    (see ``campaigns.mail.send_system_email``)."""
    if _sender is None:
        raise ImproperlyConfigured("no system-mail sender: tidings.campaigns is not installed")
    _sender(contact, key, context, headers=headers, attachments=attachments)
