"""Importing contacts from a CSV file into a list.

The contract, in the order a row meets it:

- The file is streamed (memory flat whatever its size), decoded line by line (UTF-8, else
  Windows-1252 or Mac Roman, whichever the file's first megabyte reads as; UTF-16 as such), and
  refused as "not a CSV file" when it is empty or binary (see ``source``).  The delimiter is
  whichever of ``,`` ``;`` tab ``|`` the header line has most of.
  Blank lines are skipped; quoted fields may span lines, and every line number reported is the
  physical line on which the row *starts* (a bad row names every line it covers).
- Columns map to the policy's fields by their header (case, spaces, underscores and punctuation
  ignored, accents dropped; common aliases known, English and European), or by the
  operator's ``column_map``.  The exports of Mailchimp, listmonk, Brevo, HubSpot, Kit,
  MailerLite, MailPoet and Substack are recognised (``exporters``): their opt-in and
  confirmation times (and IPs, where the policy keeps ip_address) become the consent events'
  own, and their status columns say who left; in any other file, a Status or Unsubscribed
  column does. Only fields the policy's newsletter purpose collects are stored; every other
  column is reported as ignored and never read. listmonk's ``attributes`` JSON column is read
  the same way, key by key.
- A row is *bad* (reported with its line and reason, not imported) when it could not be read
  safely (an unterminated or stray quote, a cell over the csv module's limit, undecodable
  text), its address is invalid, a field the purpose requires is blank, a value is too long
  for its column, or its consent proof is not what it claims (a date that is not one: reported
  by the kind of value, never the value).
- A row the earlier tool marks as gone (unsubscribed, cleaned, bounced...) is never
  subscribed: its address goes to the suppression list, and it is counted (left_in_file).
- A row whose address (HMAC) or domain is suppressed is skipped: counted, and listed in the report
  by line number only, never with its values.
- Within the file, the first row for an address wins; later ones are reported as
  "duplicate of line N" and not merged, except that a later row saying the person left takes
  the first's place (lanes.Run.screen): consent withdrawn anywhere in a file is not imported.
- An existing contact keeps what it holds: only its blank fields are filled from the file.  A
  contact already confirmed on the list is unchanged; a pending subscription is confirmed; one who
  left the list (unsubscribed, bounced, complained) is skipped and never re-subscribed.
- Every subscription created or confirmed gets its ConsentEvents (granted, source import,
  ``source_ref="import:<id>"``): at the row's opt-in and confirmation times when it has them
  (two for a double opt-in), else at the import; the wording is the provenance (file, tool, day,
  operator) and the operator's statement of the consent source.  Re-running the same file
  changes nothing and writes no event.  The outcome counts (rows.OUTCOMES) add up to the rows.

In the browser an upload is checked first (``preview``): a dry run's counts, the columns' uses
and the first rows as stored, before the operator confirms.

Rows are written in batches of ``ImportConfig.batch_rows``, one transaction each, together with
the Import row's progress, so the counts always match what is committed.  A dry run does all of
it inside one transaction that is rolled back.  Nothing here logs or raises with personal data
in the message.

How PostgreSQL's import is made fast (the target: a 1M-row file at 40,000 rows/s, a sixth of the
speed of a bare COPY into one indexed table; peak RSS under 250 MB):

- Each new contact costs the server three inserts, eight index entries and five foreign-key
  checks (Django's FKs are DEFERRABLE INITIALLY DEFERRED: checked one by one at commit, ~3.5 µs
  each, which no statement shape avoids).  Audience migration 0006 dropped six indexes the
  import paid for and no query used (FK indexes duplicated by composite ones, and a Lower("name")
  index the search could not use): 40 -> 35 µs of server time a row.
- New rows travel by COPY into a temporary staging table, then one INSERT ... SELECT creates the
  contacts, their subscriptions and consent events, ids never leaving the server
  (PostgresWriter.create_contacts).  Dumping the values as arrays instead cost the importing
  process ~6 µs a row in psycopg's Python code.
- While no address of the last batch was taken, that INSERT runs without ON CONFLICT in a
  savepoint, falling back to ON CONFLICT DO NOTHING if one is (35 -> 31 µs a row).
- Transactions commit with synchronous_commit off: safe because an import is idempotent, and a
  server crash that loses the last commits is repaired by running it again (as the worker does).
- The parser costs ~6.5 µs a row (csv ~1.3): cells stripped once, HMAC keys padded once,
  ASCII addresses spared NFC, and Python's cyclic GC run 50 times less often (_fewer_collections).
- Files over PARALLEL_MIN_BYTES are written by WRITERS connections at once (ParallelWrite): the
  parser's thread screens each batch (first row of an address, suppressions) and splits it by
  address, so a later duplicate always reaches the writer that wrote the first row, in file
  order; each writer's transaction adds its part's counts to the Import row.  One connection
  cannot pass ~32,000 rows/s: its server process needs ~31 µs a row; the importing process ~12.
- Left: the five foreign-key checks are 17 of those 31 µs.  Without the database constraints of
  the three that point at the same list and wording (PROTECT and CASCADE are Django's, and would
  still hold for the ORM) the server measured ~20 µs a row; kept, as a decision about the
  ledger's integrity rather than speed.

Measured with ``bench/import_contacts.py --rows 1000000`` on this 2-core machine, with other
benchmarks running beside it (so the figures move with them; the ratio to COPY is from the same
run, COPY itself at 185,000-198,000 rows/s where DESIGN.md has 240,000 for an idle machine):

  PostgreSQL  before (arrays, ON CONFLICT, one connection): 17,600-18,800 rows/s, 10.3-10.5x
              COPY's time, peak RSS 148 MB; now: 40,300-41,800 rows/s, 4.6-4.9x, peak RSS 142 MB
              (20,000-26,000 rows/s, 5.4-8.0x, while the machine was heavily loaded).
  SQLite      before: 22,700 rows/s, 4.9x executemany's time; now: 32,300 rows/s, 3.3-3.4x;
              peak RSS 202 MB either way (64 MB of it SQLite's page cache, _bulk_session).

Those figures were for a 6-column file.  The benchmark now imports a 25-column Mailchimp export
with consent times (1.6 consent events a contact: a double opt-in proves two moments), into an
empty database and merged into 1M existing contacts, and prints the CPU a row costs the
importing process and the server's processes (a figure the machine's load hardly moves).
Measured at 1M rows on 6 December 2026, load average 13-17 on the 2 cores (COPY itself at
18,000-24,000 rows/s): PostgreSQL 6,700 rows/s empty (3.5x COPY's time) and 6,400 rows/s
merging (2.8x), peak RSS 206/220 MB; SQLite 215/214 MB.  CPU a row: empty 18.5 µs in the
importing process + 33.8 µs in the server, merge 21.5 + 37.1: however well the two overlap, a
quiet 2-core machine could do at most ~38,000 and ~34,000 rows/s, so the empty target (40,000)
is out of this design's reach and the merge one (25,000) within it (neither measured on a
quiet machine).

Where the server's time goes (EXPLAIN ANALYZE of a 20,000-row batch, one connection): the
foreign-key checks ~60% (6.8 a contact: the subscription's contact and list, and each event's
contact, list and wording), inserting the contacts ~12%, the consent events ~10%, the
subscriptions ~7%.  The importing process (one connection, 100,000 rows, ~14 µs a row): parsing
~9 µs (csv ~2), staging by COPY ~2, screening ~1 (the benchmark's 18.5 µs is with two writers'
threads, at 1M rows).  Merges look a batch's addresses up before inserting while the last batch
had any taken (Lane.write): the insert then needs no ON CONFLICT and is never rolled back for
one taken address (server CPU merging 100,000 rows into 100,000: 35.5 -> 32.0 µs a row).  The
lever left is the list's and wording's foreign keys on each subscription and event (35-40% of
the server's time), kept as said above.

The package, in the order an import runs:

- ``source``   the file: encoding, delimiter, rows with their physical line numbers;
- ``columns``  which column feeds which field (ColumnPlan), and which are ignored and why;
- ``rows``     a source row becomes a GoodRow or a BadRow; batches; what a batch did (Tally);
- ``writers``  the SQL: generic (SQLite, PostgreSQL) and PostgreSQL's set-based one;
- ``lanes``    screening a batch (duplicates, suppressions) and writing it (Lane, Run);
- ``parallel`` reading ahead in a thread; writing with several connections (PostgreSQL);
- ``report``   the bad-rows CSV and the one-line summary;
- ``run``      run_import() from end to end; create_import() and start_import().
- ``lease``    the heartbeat of a running import; interrupted imports, and resuming them.
"""

from .config import ImportConfig
from .report import ignored_text, summary
from .rows import COUNTERS
from .run import create_import, default_consent_source, percent_done, run_import, start_import
from .source import ImportFailed, not_a_csv_file

__all__ = [
    "COUNTERS",
    "ImportConfig",
    "ImportFailed",
    "create_import",
    "default_consent_source",
    "ignored_text",
    "not_a_csv_file",
    "percent_done",
    "run_import",
    "start_import",
    "summary",
]
