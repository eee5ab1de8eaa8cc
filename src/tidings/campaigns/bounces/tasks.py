"""The periodic bounce job (registered with ``lib.periodic`` in ``CampaignsConfig.ready``)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.tasks import task

logger = logging.getLogger(__name__)


@task()
def bounce_mailbox_task() -> dict[str, int]:
    """Fetch the bounce mailbox when ``TIDINGS_BOUNCE_MAILBOX_URL`` is set, and drop the kept
    messages of old reports."""
    from .mailbox import MailboxError, fetch_configured
    from .processing import purge_kept_messages

    outcome = {"fetched": 0, "processed": 0, "purged": purge_kept_messages()}
    if getattr(settings, "TIDINGS_BOUNCE_MAILBOX_URL", ""):
        try:
            result = fetch_configured()
        except MailboxError as exc:  # retried at the next run; the operator sees it in the log
            logger.warning("bounce mailbox: %s", exc)
        else:
            outcome.update(fetched=result.fetched, processed=result.processed)
    return outcome
