"""How an import runs: batch sizes and connections, in one frozen object with its defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImportConfig:
    """The import's knobs.  The defaults are the measured ones (bench/import_contacts.py); a
    caller may pass others to run_import(), e.g. small batches to see progress row by row."""

    # Rows a transaction: larger batches cost SQLite fewer page writes per row (measured at
    # 300,000 rows: 5,000 -> 12.8 s, 20,000 -> 9.8 s); PostgreSQL did not care (50,000 saved no
    # server time and took the peak RSS from 142 to 238 MB).  A SQLite batch holds the write
    # lock for ~0.6 s, which other writers wait out (busy timeout 20 s).
    batch_rows: int = 20_000
    # How many connections write at once (PostgreSQL only).  One connection's server process is
    # the import's bottleneck: ~31 µs a row (indexes, foreign-key checks, WAL) against the
    # importing process's ~12 µs; two share it out.  Three cost the importing process ~2 µs a
    # row more (GIL) and were no faster on this 2-core machine.
    writers: int = 2
    # Files smaller than this are written by one connection: two threads are not worth starting.
    parallel_min_bytes: int = 8 << 20
    # Suppression entries kept in memory as raw digests (~100 bytes each); a longer list is
    # asked per batch.  Measured: asking PostgreSQL per batch cost ~4 µs a row.
    suppression_cache_limit: int = 250_000
