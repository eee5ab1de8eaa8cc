"""Buffered ingest: endpoints hand rows over without writing to the database in the request.

Tracking pixels, click redirects and website analytics answer in well under a millisecond; a
database write per request would cost more than the rest of the request together.  So a view
calls ``submit(name, row)`` and a *sink* — ``writer(rows: list[Row])``, registered once with
``register_sink(name, writer)``, usually from an ``AppConfig.ready()`` — writes them in bulk.

Where the rows wait:

- **In the web process** (default).  A daemon thread flushes every
  ``TIDINGS_INGEST_FLUSH_SECONDS`` (1 s), or at once when ``TIDINGS_INGEST_BATCH`` (1,000) rows
  are waiting, and the waiting rows are written at interpreter exit (graceful shutdown:
  SIGTERM/SIGINT to the server, which stops its workers normally).  **A crash (SIGKILL, power
  loss) loses at most the rows of the last second.**  ``TIDINGS_INGEST_FLUSH_SECONDS=0`` turns
  the timer off: rows are then written when a batch is full, at exit, or when someone calls
  ``flush()``.
- **In Redis** when ``TIDINGS_REDIS_URL`` is set, so several web processes share one queue:
  ``submit()`` appends a JSON row to the list ``tidings:ingest:<name>`` and ``tidings worker``
  drains the lists every second (``drain_forever``).  A crash of a web process loses nothing; the
  worker writes a batch, then removes it, so a worker crash writes at most one batch twice.
  While Redis cannot be reached, rows wait in the web process instead (and it writes them, as
  without Redis), with one warning a minute: a click in a mail still reaches its link.

A writer that fails (database down) gets its rows back in the buffer (in-process: up to
``TIDINGS_INGEST_MAX_ROWS`` rows, 100,000, then the oldest are dropped and counted in the log) or
in Redis, and is retried on the next flush.  Rows must be JSON-safe dicts: ids, numbers, short
strings; never personal data (a log line may count them, never print them).
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

Row = dict[str, Any]  # one row for a sink: JSON-safe values
Writer = Callable[[list[Row]], None]

_sinks: dict[str, Writer] = {}
_buffers: dict[str, list[Row]] = {}
_lock = threading.Lock()
_flush_lock = threading.Lock()  # one flush at a time: rows are written in submission order
_wake = threading.Event()
_thread: threading.Thread | None = None
_thread_pid: int | None = None
_redis_client: Any = None
_redis_url: str | None = None

KEY_PREFIX = "tidings:ingest:"


def register_sink(name: str, writer: Writer) -> None:
    """Make ``writer`` receive the rows submitted under ``name`` (replacing any earlier one)."""
    _sinks[name] = writer


def unregister_sink(name: str) -> None:
    """Stop taking rows for ``name`` (rows already waiting in Redis stay there)."""
    _sinks.pop(name, None)


def discard_buffered() -> int:
    """Drop the rows waiting in this process's buffers, unwritten; returns how many.  For a
    process whose database is gone (a test's, at its end): nothing else may write them later."""
    with _lock:
        count = sum(len(rows) for rows in _buffers.values())
        _buffers.clear()
    return count


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _redis() -> Any:
    """The Redis client when TIDINGS_REDIS_URL is set, else None."""
    global _redis_client, _redis_url
    url = _setting("TIDINGS_REDIS_URL", "") or None
    if url is None:
        return None
    if _redis_client is None or _redis_url != url:
        import redis

        # Timeouts: a Redis that does not answer must not hold a click redirect for minutes.
        _redis_client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
        _redis_url = url
    return _redis_client


_unreachable_logged = 0.0
UNREACHABLE_LOG_SECONDS = 60


def _redis_unreachable(doing: str) -> None:
    """One warning a minute while Redis cannot be reached (not one traceback per click)."""
    global _unreachable_logged
    now = time.monotonic()
    if now - _unreachable_logged >= UNREACHABLE_LOG_SECONDS or not _unreachable_logged:
        _unreachable_logged = now
        log.warning(
            "ingest: Redis is unreachable (%s); rows wait in this process, which writes them "
            "to the database itself",
            doing,
        )


def submit(name: str, row: Row) -> None:
    """Queue ``row`` for the sink ``name``; no database write happens in the caller."""
    if name not in _sinks:
        raise KeyError(f"no ingest sink named {name!r}")
    client = _redis()
    if client is not None:
        from redis.exceptions import RedisError

        try:
            client.rpush(KEY_PREFIX + name, json.dumps(row, separators=(",", ":")))
            return
        except RedisError:
            # A click must still reach its link and be counted: the row waits here, as it
            # would without Redis, and this process's flusher writes it.
            _redis_unreachable("submit")
    with _lock:
        buffer = _buffers.setdefault(name, [])
        buffer.append(row)
        full = len(buffer) >= _setting("TIDINGS_INGEST_BATCH", 1000)
    interval = _setting("TIDINGS_INGEST_FLUSH_SECONDS", 1.0)
    if interval > 0:
        _ensure_thread(interval)
        if full:
            _wake.set()
    elif full:
        flush()


def pending(name: str) -> int:
    """How many rows wait for ``name`` (in this process, or in Redis)."""
    client = _redis()
    if client is not None:
        return int(client.llen(KEY_PREFIX + name))
    with _lock:
        return len(_buffers.get(name, ()))


@dataclass(frozen=True)
class Backlog:
    """Rows waiting for one sink: in Redis (every web process's) or in this process's memory."""

    sink: str
    where: str  # "redis" | "process"
    rows: int
    oldest_seconds: float | None  # age of the oldest waiting row (rows carrying a time "t")


_written: dict[str, dict[str, Any]] = {}
WRITTEN_KEY = "tidings:ingest:written"


def _note_written(name: str, rows: list[Row]) -> None:
    """Remember when ``name``'s rows were last written and how old the oldest of them was (the
    ingest lag), here and, with Redis, where every process's /metrics can read it."""
    now = time.time()
    times = [row["t"] for row in rows if isinstance(row.get("t"), int | float)]
    note = {"at": now, "lag": max(0.0, now - min(times)) if times else 0.0, "rows": len(rows)}
    _written[name] = note
    client = _redis()
    if client is not None:
        try:
            client.hset(WRITTEN_KEY, name, json.dumps(note))
        except Exception:  # a statistic: never fail a write for it
            _redis_unreachable("noting a write")


def last_writes() -> dict[str, dict[str, Any]]:
    """Per sink: ``{"at": POSIX time, "lag": seconds, "rows": n}`` of its last written batch."""
    client = _redis()
    if client is None:
        return dict(_written)
    from redis.exceptions import RedisError

    try:
        noted = client.hgetall(WRITTEN_KEY)
    except RedisError:
        _redis_unreachable("reading the last writes")
        return dict(_written)  # this process's own, as without Redis
    result = {}
    for name, raw in noted.items():
        try:
            result[name.decode()] = json.loads(raw)
        except ValueError:
            continue
    return result


def backlog() -> list[Backlog]:
    """What waits to be written, per sink, and for how long (for the doctor and /metrics)."""
    now = time.time()

    def age(row: object) -> float | None:
        if isinstance(row, dict) and isinstance(row.get("t"), int | float):
            return max(0.0, now - float(row["t"]))
        return None

    client = _redis()
    result = []
    if client is not None:
        from redis.exceptions import RedisError

        try:
            for name in sorted(_sinks):
                with client.pipeline(transaction=False) as pipe:
                    pipe.llen(KEY_PREFIX + name)
                    pipe.lindex(KEY_PREFIX + name, 0)
                    rows, first = pipe.execute()
                try:
                    oldest = age(json.loads(first)) if first else None
                except ValueError:
                    oldest = None
                result.append(Backlog(name, "redis", int(rows), oldest))
            return result
        except RedisError:
            # Rows wait in this process meanwhile (``submit``): show those.
            _redis_unreachable("reading the backlog")
            result = []
    with _lock:
        waiting = {name: (len(rows), rows[0] if rows else None) for name, rows in _buffers.items()}
    for name in sorted(_sinks):
        rows, first = waiting.get(name, (0, None))
        result.append(Backlog(name, "process", rows, age(first) if rows else None))
    return result


def flush() -> None:
    """Write every waiting row now: this process's buffers, and the Redis lists when configured."""
    client = _redis()
    if client is not None:
        from redis.exceptions import RedisError

        try:
            with _flush_lock:
                for name in list(_sinks):
                    _drain_redis(client, name)
        except RedisError:
            _redis_unreachable("drain")
    _flush_buffers()


def _flush_buffers() -> None:
    with _flush_lock:
        with _lock:
            taken = {name: rows for name, rows in _buffers.items() if rows}
            for name in taken:
                _buffers[name] = []
        for name, rows in taken.items():
            _write(name, rows, on_failure=functools.partial(_put_back, name))


def _write(name: str, rows: list[Row], on_failure: Callable[[list[Row]], None]) -> bool:
    writer = _sinks.get(name)
    if writer is None:
        log.error("ingest: no sink %r; %d rows dropped", name, len(rows))
        return True
    try:
        writer(rows)
    except Exception:
        log.exception("ingest: sink %r failed on %d rows; they will be retried", name, len(rows))
        on_failure(rows)
        return False
    else:
        _note_written(name, rows)
    finally:
        # A flusher thread keeps no broken connection to the next round.
        from django.db import close_old_connections

        if threading.current_thread() is not threading.main_thread():
            close_old_connections()
    return True


def _put_back(name: str, rows: list[Row]) -> None:
    limit = _setting("TIDINGS_INGEST_MAX_ROWS", 100_000)
    with _lock:
        merged = rows + _buffers.get(name, [])
        if len(merged) > limit:
            log.error(
                "ingest: sink %r over %d waiting rows; %d oldest dropped",
                name,
                limit,
                len(merged) - limit,
            )
            merged = merged[-limit:]
        _buffers[name] = merged


# One drainer per sink at a time: several `tidings worker` processes drain the same lists, and
# "read a batch, write it, then trim it" by two at once would write a batch twice and then trim
# rows nobody had read.  The lock (redis-py's, a token with an expiry) is renewed after each
# batch; a drainer that crashed holds it for at most DRAIN_LOCK_SECONDS.
DRAIN_LOCK_SECONDS = 30


def _drain_redis(client: Any, name: str) -> None:
    from redis.exceptions import LockError

    key = KEY_PREFIX + name
    lock = client.lock(key + ":drain", timeout=DRAIN_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return  # another process is draining this sink
    try:
        _drain_locked(client, name, key, lock)
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("ingest: the drain lock of %r had expired", name)


def _drain_locked(client: Any, name: str, key: str, lock: Any) -> None:
    from redis.exceptions import LockError

    batch = _setting("TIDINGS_INGEST_BATCH", 1000)
    while True:
        raw = client.lrange(key, 0, batch - 1)
        if not raw:
            return
        rows = []
        for item in raw:
            try:
                rows.append(json.loads(item))
            except ValueError:
                log.warning("ingest: a malformed row in %s dropped", key)
        # Written first, removed after: a crash between the two writes the batch twice rather
        # than losing it.  On failure the rows stay in Redis for the next round.
        if not _write(name, rows, on_failure=lambda rows: None):
            return
        client.ltrim(key, len(raw), -1)
        if len(raw) < batch:
            return
        try:
            lock.reacquire()
        except LockError:
            return  # held too long (a very slow write): another drainer may take over


def _ensure_thread(interval: float) -> None:
    global _thread, _thread_pid
    if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
        return
    with _lock:
        if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
            return
        # A forked web worker inherits the parent's buffer object but not its thread.
        _thread = threading.Thread(
            target=_run, args=(interval,), name="tidings-ingest", daemon=True
        )
        _thread_pid = os.getpid()
        _thread.start()


def _run(interval: float) -> None:
    while interval > 0:
        _wake.wait(interval)
        _wake.clear()
        try:
            _flush_buffers()
        except Exception:  # never let the flusher die: the next round retries
            log.exception("ingest: flush failed")
        interval = _setting("TIDINGS_INGEST_FLUSH_SECONDS", 1.0)  # 0 now: the timer stops


def drain_forever(stop: threading.Event, interval: float = 1.0) -> None:
    """The worker's loop over the Redis lists (``tidings worker`` runs it in a thread)."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            flush()
        except Exception:
            log.exception("ingest: drain failed")
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    flush()


class DrainThread(threading.Thread):
    """Runs ``drain_forever`` until ``stop()``; the worker starts one when Redis is configured."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(name="tidings-ingest-drain", daemon=True)
        self._stop_event = threading.Event()
        self.interval = interval

    def run(self) -> None:
        drain_forever(self._stop_event, self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def _flush_at_exit() -> None:
    """This process's own waiting rows, written before it ends.  The Redis lists are left to the
    workers (drain_forever ends with a last drain): every other process — a web server shutting
    down, `tidings doctor`, `tidings backup` — would otherwise drain the shared queue as it
    exits, and print a traceback when Redis is down."""
    try:
        _flush_buffers()
    except Exception:
        log.exception("ingest: flush at exit failed")


atexit.register(_flush_at_exit)
