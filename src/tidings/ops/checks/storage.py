"""The data directory: there, writable, and with room to grow."""

from __future__ import annotations

import os
import shutil

from django.conf import settings

from tidings.ops.doctor import FAIL, OK, WARN, Finding, register

# Below these, the database (SQLite), imports' files and backups will soon have no room.
FAIL_FREE_BYTES = 1 * 1024**3
WARN_FREE_FRACTION = 0.10
WARN_FREE_BYTES = 5 * 1024**3


@register("disk", order=60)
def check_disk() -> Finding:
    data_dir = settings.DATA_DIR
    if not data_dir.is_dir():
        return Finding(
            "disk",
            FAIL,
            f"the data directory {data_dir} does not exist",
            "create it (owned by the tidings user) or set TIDINGS_DATA_DIR",
        )
    if not os.access(data_dir, os.W_OK):
        return Finding(
            "disk",
            FAIL,
            f"{data_dir} is not writable by this user",
            f"chown it to the user tidings runs as (`chown -R tidings: {data_dir}`)",
        )
    usage = shutil.disk_usage(data_dir)
    free = usage.free / usage.total if usage.total else 0.0
    summary = f"{data_dir}: {_size(usage.free)} free of {_size(usage.total)} ({free:.0%})"
    if usage.free < FAIL_FREE_BYTES:
        return Finding("disk", FAIL, summary, "free space or grow the disk now: writes will fail")
    if free < WARN_FREE_FRACTION or usage.free < WARN_FREE_BYTES:
        return Finding(
            "disk", WARN, summary, "free space (old backups, imports' files) or grow the disk"
        )
    return Finding("disk", OK, summary)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"
