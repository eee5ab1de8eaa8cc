"""The one writer of a subscription's end: unsubscribed, bounced or complained.

``do_set_subscription_status`` is what an unsubscribe (a link, the preference centre, an
objection, an operator), a hard bounce and a complaint call; each caller records its own consent
events and audit entry, inside the same transaction.  Starting or confirming a subscription is
``actions.do_subscribe``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import Subscription

Status = Subscription.Status
ACTIVE = (Status.PENDING, Status.CONFIRMED)
ENDED = (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED)
# The person withdrew (a link, a complaint): the moment is kept as ``unsubscribed_at``.  A bounce
# is the mailbox's doing, not theirs, and leaves it empty.
_WITHDRAWALS = (Status.UNSUBSCRIBED, Status.COMPLAINED)


def do_set_subscription_status(
    subscriptions: QuerySet[Subscription] | Iterable[Subscription],
    status: str,
    *,
    at: datetime | None = None,
) -> int:
    """End these subscriptions with ``status`` (one of ``ENDED``) in one UPDATE; returns how many
    rows changed.  Subscription objects passed in are updated in memory too."""
    if status not in ENDED:
        raise ValueError(f"not an end of a subscription: {status!r}")
    at = at or timezone.now()
    values: dict[str, object] = {"status": status, "updated_at": at}
    if status in _WITHDRAWALS:
        values["unsubscribed_at"] = at
    with transaction.atomic(savepoint=False):  # the caller's transaction, when there is one
        if isinstance(subscriptions, QuerySet):
            return subscriptions.update(**values)
        subs = list(subscriptions)
        for sub in subs:
            for name, value in values.items():
                setattr(sub, name, value)
        if not subs:
            return 0
        return Subscription.objects.filter(pk__in=[sub.pk for sub in subs]).update(**values)
