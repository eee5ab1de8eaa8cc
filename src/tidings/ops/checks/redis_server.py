"""Redis, when ``TIDINGS_REDIS_URL`` is set: reachable, and its ingest queues being drained."""

from __future__ import annotations

import time

from django.conf import settings

from tidings.ops.doctor import FAIL, OK, WARN, Finding, register

BACKLOG_WARNING_SECONDS = 60


@register("redis", order=70)
def check_redis() -> list[Finding]:
    url = getattr(settings, "TIDINGS_REDIS_URL", "")
    if not url:
        return []  # not configured: nothing to check (the doctor prints no line for it)
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        started = time.perf_counter()
        client.ping()
        elapsed = (time.perf_counter() - started) * 1000
    except redis.RedisError as exc:
        return [
            Finding(
                "redis",
                FAIL,
                f"cannot reach Redis ({type(exc).__name__}: {str(exc)[:120]})",
                "check TIDINGS_REDIS_URL and that redis-server runs and listens there",
            )
        ]
    findings = [Finding("redis", OK, f"reachable ({elapsed:.0f} ms)")]
    from tidings.lib.ingest import backlog

    waiting_rows = backlog()
    oldest = max((b.oldest_seconds or 0.0 for b in waiting_rows), default=0.0)
    waiting = sum(b.rows for b in waiting_rows)
    if oldest > BACKLOG_WARNING_SECONDS:
        findings.append(
            Finding(
                "redis.ingest",
                WARN,
                f"{waiting} tracking/analytics rows wait in Redis, the oldest for {oldest:.0f} s",
                "run `tidings worker` (without --delivery-only): it writes them to the database",
            )
        )
    else:
        findings.append(Finding("redis.ingest", OK, f"{waiting} rows waiting to be written"))
    return findings
