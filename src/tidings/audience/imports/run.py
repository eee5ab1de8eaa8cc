"""Running an import from end to end, and starting one (the upload, the background task)."""

from __future__ import annotations

import contextlib
import gc
import logging
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from tidings.lib.audit import audit

from ..actions import wording
from ..models import Import, MailingList, imports_dir
from .columns import PURPOSE, ColumnPlan, compact, plan_columns, read_date_order
from .config import ImportConfig
from .exporters import Exporter
from .lanes import Run
from .lease import CLAIM_FIELDS, claim
from .parallel import Inline, ParallelWrite, Prefetch, Progress, prefetch_wanted
from .proof import BOTH, DAY_FIRST, EITHER, MONTH_FIRST
from .report import date_in_words, file_kind
from .rows import COUNTERS, Batch, read_batches
from .source import CsvSource, ImportFailed, detect_format, open_source
from .workbook import XLSX, XlsxSource
from .writers import PostgresWriter, Writer, writer_for

log = logging.getLogger("tidings.audience.imports")


def percent_done(imp: Import) -> int:
    """How much of its file the import has read, 0 to 100 (without a size: 100 once finished)."""
    if imp.total_bytes:
        return min(100, round(100 * imp.processed_bytes / imp.total_bytes))
    return 100 if imp.status == Import.Status.FINISHED else 0


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cyclic garbage collector, run 50 times less often for the import's duration.

    An import allocates millions of small objects (cells, rows) that reference counting frees;
    at the default threshold (2,000 allocations) the collector ran every few rows, and cost
    ~1.3 µs a row (measured parsing the 1M-row file: 7.8 -> 6.5 µs a row).  Process-wide: the
    threshold is put back afterwards.
    """
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 100_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


@contextlib.contextmanager
def _bulk_session() -> Iterator[None]:
    """Connection settings for the import's duration.  SQLite: a 32 MB page cache instead of
    2 MB, so the indexes' pages a batch touches stay in memory (measured at 300,000 rows: 2 ->
    64 MB took 12.8 s to 11.7 s).  It counts in the process's RSS: with the 25-column export at
    1M rows 64 MB peaked at 248 MB; 32 MB peaks ~40 MB lower for ~4% more time."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute("PRAGMA cache_size = -32768")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")


def _parallel(imp: Import, writer: Writer, config: ImportConfig) -> bool:
    """Whether to write with several connections: PostgreSQL's writer, a file big enough, and
    no transaction around the import (a dry run is one; the writers could not see into it)."""
    return (
        isinstance(writer, PostgresWriter)
        and config.writers > 1
        and not imp.dry_run
        and not connection.in_atomic_block
        and imp.total_bytes >= config.parallel_min_bytes
    )


def _write_in_turn(run: Run, batches: Iterator[Batch], progress: Progress | None) -> None:
    """One connection: each batch in a transaction with the Import row's progress."""
    imp = run.imp
    reader = Prefetch(batches, ahead=1) if prefetch_wanted() else Inline(batches)
    try:
        with _bulk_session():
            for batch in reader:
                with transaction.atomic():
                    run.write_batch(batch)
                    _save_progress(imp, batch, run)
                if progress is not None:
                    progress(imp)
    finally:
        reader.close()


def _save_progress(imp: Import, batch: Batch, run: Run) -> None:
    imp.processed_bytes = min(batch.processed_bytes, imp.total_bytes)
    imp.bad_reasons = run.reasons
    if not imp.dry_run:
        fields = [*COUNTERS, "processed_bytes", "bad_reasons"]
        imp.heartbeat_at = timezone.now()  # the lease (imports.lease): this import is alive
        Import.objects.filter(pk=imp.pk).update(
            heartbeat_at=imp.heartbeat_at, **{f: getattr(imp, f) for f in fields}
        )


def run_import(
    imp: Import,
    path: Path | None = None,
    *,
    progress: Progress | None = None,
    fast: bool = True,
    actor_label: str = "",
    config: ImportConfig | None = None,
    carried: dict[str, int] | None = None,
) -> Import:
    """Run an import to the end and return it finished, or raise ImportFailed (marked failed).

    ``path`` is the file to read, by default the import's stored upload.  ``fast`` allows the
    PostgreSQL writer; the generic writer does the same work with portable SQL.  ``progress`` is
    called with the import after every batch, once the batch is committed.  ``config`` tunes
    batch sizes and connections (ImportConfig's defaults otherwise).  A dry run leaves no trace
    in the database.  ``carried``: the counts an interrupted run of this import committed
    (lease.resume_import), added to this run's at the end.
    """
    config = config or ImportConfig()
    path = path or imp.stored_path
    if path is None or not path.is_file():
        raise _fail(imp, "the file to import is missing")
    if imp.mailing_list is None:
        raise _fail(imp, "the list to import into no longer exists")
    started = time.monotonic()
    try:
        fmt = detect_format(path)
        source = open_source(path, fmt)
    except ImportFailed as exc:
        raise _fail(imp, str(exc)) from None
    try:
        plan = plan_columns(source.header, imp.column_map, imp.original_filename)
        refuse_never_subscribed(plan.exporter, imp.original_filename)
        read_date_order(plan, path, fmt, imp.date_order)
    except ImportFailed as exc:
        source.close()
        raise _fail(imp, str(exc)) from None
    for name in COUNTERS:  # a re-run (after a worker died mid-way) counts afresh
        setattr(imp, name, 0)
    imp.bad_reasons, imp.error, imp.notes = {}, "", []
    imp.encoding = fmt.encoding
    imp.delimiter = "" if fmt.encoding == XLSX else fmt.delimiter
    imp.ignored_columns = plan.ignored
    imp.exporter = plan.exporter.key
    if plan.ips_dropped:
        imp.notes.append(IPS_NOT_KEPT_NOTE)
    note = date_order_note(plan)
    if note:
        imp.notes.append(note)
    imp.total_bytes = source.total_bytes
    imp.status = Import.Status.RUNNING
    imp.started_at = timezone.now()
    claim(imp)
    if not imp.dry_run:
        imp.report_file = imp.report_file or f"{imp.pk}-{secrets.token_hex(8)}-bad-rows.csv"
        imp.save(
            update_fields=[
                *COUNTERS,
                "bad_reasons",
                "error",
                "encoding",
                "delimiter",
                "ignored_columns",
                "exporter",
                "notes",
                "total_bytes",
                "status",
                "started_at",
                "report_file",
                *CLAIM_FIELDS,
            ]
        )

    run = None
    try:
        with transaction.atomic() if imp.dry_run else contextlib.nullcontext():
            consent = wording(provenance(imp, plan.exporter, actor_label))
            proof = bool(plan.consent)
            writer = writer_for(imp, imp.mailing_list, consent.pk, fast, proof=proof)
            run = Run(imp, source, plan, writer, config)
            batches = read_batches(source, run.parser, config.batch_rows)
            with _fewer_collections():
                if _parallel(imp, writer, config):
                    lanes = [
                        writer_for(imp, imp.mailing_list, consent.pk, fast, proof=proof)
                        for _ in range(config.writers)
                    ]
                    connections = len(lanes)
                    parallel = ParallelWrite(run, lanes, progress)
                    try:
                        parallel.write(batches)
                    finally:
                        parallel.close()
                else:
                    connections = 1
                    _write_in_turn(run, batches, progress)
            if imp.dry_run:
                transaction.set_rollback(True)
    except ImportFailed as exc:
        raise _fail(imp, str(exc), run) from None
    except KeyboardInterrupt:
        _fail(imp, "interrupted", run)
        raise
    except Exception as exc:
        # The database's message may quote a value from the file: only the class goes out.
        log.error("import %s failed: %s", imp.pk, type(exc).__name__)
        raise _fail(imp, f"internal error ({type(exc).__name__})", run) from None
    finally:
        source.close()
        if run is not None:
            run.report.close()

    keys = sorted(run.parser.ignored_keys)
    if keys:
        imp.ignored_columns.setdefault(
            f"attributes keys not allowed by the policy's {PURPOSE} purpose or unknown", keys
        )
    imp.encoding, note = encoding_note(source)
    if note:
        imp.notes.append(note)
    if carried:
        _carry_over(imp, carried)
    imp.status = Import.Status.FINISHED
    imp.finished_at = timezone.now()
    imp.processed_bytes = imp.total_bytes
    if not run.report.written:
        imp.report_file = ""
    if not imp.dry_run:
        imp.save(
            update_fields=[
                "status",
                "finished_at",
                "processed_bytes",
                "report_file",
                "ignored_columns",
                "bad_reasons",
                "encoding",
                "notes",
                *COUNTERS,
            ]
        )
        audit(
            "import.finished",
            actor=imp.operator,
            actor_label=actor_label,
            obj=imp,
            mailing_list=imp.mailing_list_id,
            seconds=round(time.monotonic() - started, 1),
            **{name: getattr(imp, name) for name in COUNTERS},
        )
    log.info(
        "import %s finished: %s rows read, written by %s connection(s)",
        imp.pk,
        imp.rows_read,
        connections,
    )
    return imp


def _carry_over(imp: Import, carried: dict[str, int]) -> None:
    """Count what an interrupted run wrote as it did: this run found those rows again (its
    contacts there, subscribed) and counted them unchanged."""
    found_again = carried.get("created", 0) + carried.get("updated", 0)
    moved = min(found_again, imp.unchanged)
    imp.unchanged -= moved
    for name, count in carried.items():
        setattr(imp, name, getattr(imp, name) + count)
    imp.notes.append(
        "Resumed after an interruption: what the interrupted run had written was found and "
        "kept, and is counted here as that run counted it."
    )


def encoding_note(source: CsvSource | XlsxSource) -> tuple[str, str]:
    """The encoding to record, and a sentence for the operator when lines were not UTF-8 in a
    file that is UTF-8 elsewhere (or when a workbook's other sheets were not read)."""
    if isinstance(source, XlsxSource):
        if source.sheets > 1:
            return XLSX, (
                f"Only the workbook's first sheet was read; it has {source.sheets} sheets: "
                "import each of the others on its own (save it as the first sheet, or as CSV)."
            )
        return XLSX, ""
    encoding = source.encoding
    if not encoding.startswith("utf-8+"):
        if encoding == "mac_roman":
            return encoding, "Read as Mac Roman (Excel for Mac's CSV): check the accented letters."
        return encoding, ""
    lines, first = source.lines.legacy_lines, source.lines.first_legacy_line
    legacy = "Mac Roman" if encoding.endswith("mac_roman") else "Windows-1252"
    if lines == 1:
        return encoding, (
            f"1 line (the first is line {first:,}) was not UTF-8 and was read as "
            f"{legacy}: check its accented letters."
        )
    return encoding, (
        f"{lines:,} lines (the first is line {first:,}) were not UTF-8 and were read as "
        f"{legacy}: check their accented letters."
    )


def refuse_never_subscribed(exporter: Exporter, filename: str) -> None:
    """Mailchimp's audience export holds, beside its subscribed, unsubscribed and cleaned files,
    one of its non-subscribed contacts (a shop's customers, transactional contacts), with the
    same columns as the subscribed file: only its name tells it apart, and its people never
    opted in.  Raises ImportFailed for it."""
    if exporter.key == "mailchimp" and compact(Path(filename).name).startswith("nonsubscribed"):
        raise ImportFailed(
            "this is Mailchimp's file of non-subscribed contacts, who never opted in to its "
            "email marketing: there is no consent to import (import its subscribed, "
            "unsubscribed and cleaned files)"
        )


def _fail(imp: Import, message: str, run: Run | None = None) -> ImportFailed:
    imp.status = Import.Status.FAILED
    imp.error = message[:500]
    imp.finished_at = timezone.now()
    if run is not None:
        imp.bad_reasons = run.reasons
        if not run.report.written:
            imp.report_file = ""
    if not imp.dry_run and imp.pk is not None:
        imp.save(update_fields=["status", "error", "finished_at", "bad_reasons", "report_file"])
        audit(
            "import.failed",
            actor=imp.operator,
            obj=imp,
            **{name: getattr(imp, name) for name in COUNTERS},
        )
    log.info("import %s failed: %s", imp.pk or "(dry run)", message)
    return ImportFailed(message)


# How to choose the order of numeric dates, at the command line and in the browser.
DATES_OPTION = (
    "--dates month-first or --dates day-first (in the browser: Dates, in the check before"
    " the import)"
)
MONTH_FIRST_NOTE = (
    "The consent dates were read month first (3/14/2024 is the 14th of March), as the file's"
    " dates that can be read only one way are written (as a spreadsheet set up for the US"
    f" saves them); to read them day first, import with {DATES_OPTION}."
)
DATES_EITHER_NOTE = (
    "The consent dates could be read day first or month first (01/02/2024: the 1st of February"
    " or the 2nd of January) and none in the file tells which: they were read day first, as in"
    " the UK. A file saved by a spreadsheet set up for the US writes them month first: if this"
    " one was, import it with --dates month-first (in the browser: Dates, month first, in the"
    " check before the import)."
)
DATES_BOTH_NOTE = (
    "The consent dates are written both day first (14/03/2024) and month first (03/14/2024):"
    " they were read day first, so the dates that can only be month first are bad rows, and"
    " those that read either way (01/02/2024) may be wrong: check the file, or choose the"
    f" order with {DATES_OPTION}."
)


def date_order_note(plan: ColumnPlan) -> str:
    """What the import says of how it read the file's numeric consent dates ("" when there was
    nothing to say: no such dates, or all of them read one way only)."""
    if plan.date_chosen:
        chosen = (
            "month first (03/04/2025 is the 4th of March)"
            if plan.month_first
            else "day first (03/04/2025 is the 3rd of April)"
        )
        note = f"The consent dates were read {chosen}, as chosen."
        against = DAY_FIRST if plan.month_first else MONTH_FIRST
        if plan.date_order in (against, BOTH):
            other = "day" if plan.month_first else "month"
            note += (
                f" Some of the file's dates can only be {other} first (such as "
                f"{'14/03/2024' if other == 'day' else '03/14/2024'}): those rows are bad."
            )
        return note
    if plan.month_first:
        return MONTH_FIRST_NOTE
    if plan.date_order == EITHER:
        return DATES_EITHER_NOTE
    if plan.date_order == BOTH:
        return DATES_BOTH_NOTE
    return ""


IPS_NOT_KEPT_NOTE = (
    "The IP addresses of consent in the file were not kept: the policy's newsletter purpose does "
    "not collect ip_address (add it to the purpose's fields to keep them as proof)."
)


def operator_name(imp: Import, actor_label: str = "") -> str:
    """Who ran the import, in words: the operator's name, or where it was started."""
    user = imp.operator
    if user is not None:
        return user.get_full_name() or user.get_username()
    return "an operator at the command line" if actor_label == "cli" else "an operator"


def provenance(imp: Import, exporter: Exporter, actor_label: str = "") -> str:
    """The wording of the consent events an import writes: where the consent comes from
    (file, tool, day, operator) and the operator's statement of how these people consented."""
    day = timezone.localdate(imp.started_at) if imp.started_at else timezone.localdate()
    tool = file_kind(imp, exporter)
    return (
        f"Imported from {imp.original_filename or 'a file'}, {tool}, on "
        f"{date_in_words(day)}, by {operator_name(imp, actor_label)}. "
        f"How these people consented, as the operator stated it: {imp.consent_source}"
    )


def default_consent_source(filename: str) -> str:
    return (
        f"Imported from {filename or 'a file'}: the operator who imported it confirmed that "
        "these people had consented to receive this list."
    )


def create_import(
    *,
    mailing_list: MailingList,
    consent_source: str = "",
    operator: Any = None,
    original_filename: str = "",
    column_map: dict[str, str] | None = None,
    date_order: str = "",
    dry_run: bool = False,
    upload: Iterable[bytes] | None = None,
    status: str = Import.Status.QUEUED,
) -> Import:
    """An Import record (queued); ``upload`` chunks are stored in imports_dir() (0600).

    A dry run is not saved (it leaves no trace), so it takes no upload: run_import() it on a path.
    """
    if dry_run and upload is not None:
        raise ValueError("a dry run reads its file in place: pass the path to run_import()")
    user = operator if getattr(operator, "is_authenticated", False) else None
    imp = Import(
        mailing_list=mailing_list,
        consent_source=consent_source.strip() or default_consent_source(original_filename),
        operator=user,
        original_filename=original_filename[:255],
        column_map=column_map or {},
        date_order=date_order,
        dry_run=dry_run,
        status=status,
    )
    if upload is not None:
        directory = imports_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        imp.stored_file = f"{secrets.token_hex(16)}.csv"
        path = directory / imp.stored_file
        path.touch(mode=0o600)
        with path.open("wb") as fp:
            for chunk in upload:
                fp.write(chunk)
        imp.total_bytes = path.stat().st_size
    if not dry_run:
        imp.save()
    return imp


def start_import(**kwargs: Any) -> Import:
    """create_import() with an upload, then queue the background task once it is committed."""
    from ..tasks import import_contacts

    imp = create_import(**kwargs)
    transaction.on_commit(lambda: import_contacts.enqueue(imp.pk))
    return imp
