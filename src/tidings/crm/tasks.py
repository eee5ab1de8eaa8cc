"""The CRM's background work (``django.tasks``, run by ``tidings worker``; the periodic ones are
registered with ``lib.periodic`` in ``CrmConfig.ready``)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.tasks import task

logger = logging.getLogger(__name__)


@task()
def send_notifications_task() -> int:
    """Send the operators' notifications that wait to go one by one."""
    from .notifications import send_pending

    return send_pending()


@task()
def crm_periodic_task() -> dict[str, int]:
    """Every few minutes: reminders of what is due, the daily digests, and any notification a
    failed send left behind."""
    from .notifications import send_digests, send_pending, send_reminders

    return {
        "reminders": send_reminders(),
        "digests": send_digests(),
        "notifications": send_pending(),
    }


@task()
def inbound_mailbox_task() -> dict[str, int]:
    """Fetch the support mailbox when ``TIDINGS_INBOUND_MAILBOX_URL`` is set, and drop the kept
    bytes of old unprocessed mail."""
    from .inbound.mailbox import MailboxError, fetch_configured
    from .inbound.processing import purge_kept_mail

    outcome = {"fetched": 0, "unprocessed": 0, "purged": purge_kept_mail()}
    if getattr(settings, "TIDINGS_INBOUND_MAILBOX_URL", ""):
        try:
            result = fetch_configured()
        except MailboxError as exc:  # retried at the next run; the operator sees it in the log
            logger.warning("support mailbox: %s", exc)
        else:
            outcome.update(fetched=result.fetched, unprocessed=result.unprocessed)
    return outcome
