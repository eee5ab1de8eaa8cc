"""Backups: when the last one ran (``tidings backup``, or the PostgreSQL recipe's stamp file)."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from tidings.ops.doctor import OK, WARN, Finding, register


@register("backups", order=80)
def check_backups() -> Finding:
    stamp = Path(settings.TIDINGS_BACKUP_STAMP)
    max_age = settings.TIDINGS_BACKUP_MAX_AGE_HOURS * 3600
    how = (
        "run `tidings backup /var/backups/tidings/$(date +%F)` from cron or a systemd timer "
        "(deploy/tidings-backup.timer)"
        if connection.vendor == "sqlite"
        else 'run the pg_dump recipe of the README ("Backups") from cron or a systemd timer; '
        f"it ends with `touch {stamp}`"
    )
    try:
        age = time.time() - stamp.stat().st_mtime
    except FileNotFoundError:
        return Finding("backups", WARN, f"no backup has been recorded ({stamp} is missing)", how)
    hours = age / 3600
    if age > max_age:
        return Finding(
            "backups",
            WARN,
            f"the last backup was {hours:.0f} hours ago (more than "
            f"{settings.TIDINGS_BACKUP_MAX_AGE_HOURS} h)",
            how,
        )
    return Finding("backups", OK, f"the last backup was {hours:.1f} hours ago")
