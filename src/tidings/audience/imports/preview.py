"""The check before an import: what the operator sees, and decides on, before anything is
written.

An upload in the browser is *checked* first (status CHECKING, then READY): a dry run of the
whole file (check_import(), in the worker) counts what the import would do, and the page shows
how each column will be used (the operator may change it, as ``--map`` does), which columns
are ignored and why, and the first rows as they would be stored.  Only the operator's go-ahead
(do_confirm_import) queues the import itself; until then nothing about the file's people is
in the database.  The dry run's counts keep no value from the file (Import.preview).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from tidings.lib.audit import audit
from tidings.policy import get_policy

from ..models import Import
from .columns import (
    ATTRIBUTES,
    FIRST_NAME,
    LAST_NAME,
    PURPOSE,
    STORED_COLUMNS,
    ColumnPlan,
    plan_columns,
    read_date_order,
    use_label,
)
from .exporters import (
    CONFIRM_IP,
    CONFIRM_TIME,
    MAPPABLE_USES,
    OPTIN_IP,
    OPTIN_TIME,
    STATUS_USES,
)
from .rows import COUNTERS, OUTCOMES, BadRow, GoodRow, RowParser
from .run import run_import
from .source import ImportFailed, detect_format, open_source

PREVIEW_ROWS = 10

# A file of a header alone (or blank lines after it): the check and the command say so.
NO_ROWS = "the file has a header but no rows: there is nothing to import"


@dataclass(frozen=True)
class ColumnUse:
    index: int
    name: str
    use: str  # what it feeds ("" when ignored)
    label: str  # the use in words
    why: str  # why it is ignored ("" when used)
    sample: str  # its first non-blank value among the previewed rows
    # The use is the exporter's own (Mailchimp's CLEAN_TIME, HubSpot's bounce reason and
    # confirmation status) and not among Preview.choices: the column's menu offers it as well,
    # or the menu would show (and send back) its first choice, the name.
    own_choice: bool = False


@dataclass(frozen=True)
class PreviewRow:
    line: int
    values: list[str]  # as they would be stored, in Preview.stored_headings' order
    outcome: str  # what this row alone would become


@dataclass(frozen=True)
class Preview:
    exporter: str
    columns: list[ColumnUse]
    choices: list[tuple[str, str]]  # (value, label) a column can be given
    stored_headings: list[str]
    rows: list[PreviewRow]
    error: str  # why the file cannot be imported as mapped ("" when it can)
    # The file has consent dates to read (its Dates choice is shown), and how they are read now:
    # Import.date_order ("" as the file's dates show, "day-first", "month-first").
    has_dates: bool = False
    date_order: str = ""
    date_choices: tuple[tuple[str, str], ...] = tuple(Import.DateOrder.choices)


def column_choices(ips_kept: bool) -> list[tuple[str, str]]:
    """What a column can be used for: the newsletter purpose's fields, the pseudo-fields, the
    proof of consent, or nothing."""
    allowed = get_policy().fields_for(PURPOSE).all
    fields = [(f, use_label(f)) for f in allowed]
    if "name" in allowed:
        fields += [(FIRST_NAME, use_label(FIRST_NAME)), (LAST_NAME, use_label(LAST_NAME))]
    fields.append((ATTRIBUTES, use_label(ATTRIBUTES)))
    proof = [
        (use, use_label(use))
        for use in MAPPABLE_USES
        if ips_kept or use not in (OPTIN_IP, CONFIRM_IP)
    ]
    return [*fields, *proof, ("", "ignore: not imported")]


def _moment(value: datetime | None) -> str:
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f"{local:%d %b %Y %H:%M} ({local.tzname()})"


def build_preview(imp: Import, path: Path | None = None, rows: int = PREVIEW_ROWS) -> Preview:
    """How the file will be read with the import's column map: a pure read of its first rows."""
    path = path or imp.stored_path
    if path is None or not path.is_file():
        return Preview("", [], [], [], [], "the uploaded file is missing")
    try:
        source = open_source(path, detect_format(path))
    except ImportFailed as exc:
        return Preview("", [], [], [], [], str(exc))
    try:
        try:
            plan = plan_columns(source.header, imp.column_map, imp.original_filename)
            read_date_order(plan, path, source.format, imp.date_order)
        except ImportFailed as exc:
            plan = None
            error = str(exc)
        if plan is None:
            # Show the columns as tidings would take them on its own, so one can be chosen.
            automatic = _automatic_plan(source.header)
            return Preview(
                automatic.exporter.key if automatic else "",
                _columns(source.header, automatic, imp.column_map, []),
                column_choices(automatic.ips_kept if automatic else False),
                [],
                [],
                error,
            )
        parser = RowParser(plan, source.format.delimiter)
        previewed: list[PreviewRow] = []
        samples: list[list[str]] = []
        headings = _stored_headings(plan)
        for source_row in source:
            if len(previewed) >= rows:
                break
            samples.append(source_row.values)
            row = _row(parser, plan, source_row)
            row.values.extend([""] * (len(headings) - len(row.values)))  # a bad or gone row
            previewed.append(row)
        return Preview(
            plan.exporter.key,
            _columns(source.header, plan, imp.column_map, samples),
            column_choices(plan.ips_kept),
            headings,
            previewed,
            "",
            has_dates=OPTIN_TIME in plan.consent or CONFIRM_TIME in plan.consent,
            date_order=imp.date_order,
        )
    finally:
        source.close()


def _automatic_plan(header: list[str]) -> ColumnPlan | None:
    try:
        return plan_columns(header, {})
    except ImportFailed:
        return None


def _columns(
    header: list[str], plan: ColumnPlan | None, column_map: dict[str, str], samples: list[list[str]]
) -> list[ColumnUse]:
    columns = []
    for index, name in enumerate(header):
        if plan is not None and index < len(plan.uses):
            use, why = plan.uses[index]
        else:
            use, why = column_map.get(name, ""), ""
        sample = next((r[index].strip() for r in samples if index < len(r) and r[index]), "")
        label = use_label(use) if use else "not imported"
        own = bool(use) and use in STATUS_USES and use not in MAPPABLE_USES
        columns.append(ColumnUse(index, name, use, label, why, sample[:60], own))
    return columns


def _stored_headings(plan: ColumnPlan) -> list[str]:
    fed = [f for f in STORED_COLUMNS if plan.fields.get(f)]
    if (plan.first_name or plan.last_name) and "name" not in fed:
        fed.insert(0, "name")
    headings = ["email", *fed]
    if plan.consent:
        headings += ["consent given", "confirmed", "IP addresses"]
    return [use_label(h) if h in STORED_COLUMNS or h == "email" else h for h in headings]


def _row(parser: RowParser, plan: ColumnPlan, source_row: Any) -> PreviewRow:
    result = parser.parse(source_row)
    if isinstance(result, BadRow):
        return PreviewRow(result.line, [], f"bad: {result.detail}")
    row: GoodRow = result
    if row.left:
        return PreviewRow(row.line, [row.email], f"left the earlier tool ({row.left}): suppressed")
    fed = [f for f in STORED_COLUMNS if plan.fields.get(f)]
    if (plan.first_name or plan.last_name) and "name" not in fed:
        fed.insert(0, "name")
    values = [row.email, *(row.values[STORED_COLUMNS.index(f)] for f in fed)]
    if plan.consent:
        first, first_ip, second, second_ip = row.consent or (None, None, None, None)
        values += [
            _moment(first) or "at the import",
            _moment(second),
            ", ".join(ip for ip in (first_ip, second_ip) if ip) or _no_ip(plan),
        ]
    return PreviewRow(row.line, values, "subscribed, with consent as shown")


def _no_ip(plan: ColumnPlan) -> str:
    """Why a row shows no consent IP address: the policy drops the file's, or there is none."""
    if plan.ips_dropped:
        return "not kept (policy)"
    has_columns = OPTIN_IP in plan.consent or CONFIRM_IP in plan.consent
    return "none in the row" if has_columns else "none in the file"


# --- the dry run and the decisions --------------------------------------------------------------
def check_import(imp: Import) -> Import:
    """Dry-run the whole file as mapped now and keep the counts on the import (READY).

    Runs in the worker.  Its result is kept only if the map did not change meanwhile (a newer
    check is then on its way).
    """
    column_map = dict(imp.column_map)
    trial = Import(
        mailing_list=imp.mailing_list,
        consent_source=imp.consent_source,
        operator=imp.operator,
        original_filename=imp.original_filename,
        column_map=column_map,
        date_order=imp.date_order,
        dry_run=True,
    )
    preview: dict[str, Any] = {"column_map": column_map, "checked_at": timezone.now().isoformat()}
    try:
        trial = run_import(trial, imp.stored_path, actor_label="worker")
    except ImportFailed as exc:
        preview["error"] = str(exc)
    else:
        if trial.rows_read == 0:
            # Only a header (or blank lines after it): confirming would import nothing and
            # report a finished import, which reads as if the people had been brought in.
            preview["error"] = NO_ROWS
    if "error" not in preview:
        preview |= {
            "counts": {name: getattr(trial, name) for name in COUNTERS},
            "bad_reasons": trial.bad_reasons,
            "notes": trial.notes,
            "ignored_columns": trial.ignored_columns,
            "exporter": trial.exporter,
            "encoding": trial.encoding,
        }
    with transaction.atomic():
        current = Import.objects.select_for_update().get(pk=imp.pk)
        if current.status == Import.Status.CHECKING and current.column_map == column_map:
            current.status, current.preview = Import.Status.READY, preview
            current.save(update_fields=["status", "preview"])
    imp.refresh_from_db()
    return imp


def outcome_rows(counts: dict[str, int]) -> list[tuple[str, int]]:
    """The counts that add up to the rows of the file, in words (for the pages)."""
    labels = {
        "created": "new contacts",
        "updated": "existing contacts given a subscription or blank fields",
        "unchanged": "existing contacts already subscribed, unchanged",
        "left_in_file": "marked as gone in the earlier tool: suppressed, not subscribed here",
        "skipped_unsubscribed": "had left this list here: not subscribed again",
        "skipped_suppressed": "on the suppression list here: skipped",
        "duplicates": "duplicates of an earlier row",
        "bad_rows": "bad rows (see the reasons)",
    }
    return [(labels[name], counts.get(name, 0)) for name in OUTCOMES]


class ImportStateError(Exception):
    """The import is not in a state that allows this (checked, confirmed or gone already)."""


def _preview_owned(imp: Import) -> None:
    if imp.status not in (Import.Status.CHECKING, Import.Status.READY):
        raise ImportStateError("This import has already started: its columns cannot change.")


@transaction.atomic
def do_remap_import(
    imp: Import, choices: dict[int, str], *, actor: Any, dates: str | None = None
) -> Import:
    """Use the file's columns as ``choices`` says ({column index: field or use, "" to ignore})
    and check the file again.  Only the choices that differ from tidings' own are kept.
    ``dates`` (Import.DateOrder: "", "day-first", "month-first"; None keeps it) is how numeric
    consent dates are read."""
    imp = Import.objects.select_for_update().get(pk=imp.pk)
    _preview_owned(imp)
    path = imp.stored_path
    if path is None or not path.is_file():
        raise ImportStateError("The uploaded file is missing.")
    try:
        source = open_source(path, detect_format(path))
    except ImportFailed as exc:
        raise ImportStateError(f"The file cannot be read: {exc}.") from None
    header = source.header
    source.close()
    automatic = _automatic_plan(header)
    allowed = {value for value, _ in column_choices(True)}
    column_map: dict[str, str] = {}
    for index, name in enumerate(header):
        chosen = choices.get(index)
        if chosen is None or chosen not in allowed:
            continue
        own = automatic.uses[index][0] if automatic is not None else ""
        if chosen != own:
            column_map[name] = chosen
    if dates is not None:
        if dates not in Import.DateOrder.values:
            raise ImportStateError("Choose how the dates are read: day first or month first.")
        imp.date_order = dates
    imp.column_map = column_map
    imp.status = Import.Status.CHECKING
    imp.preview = {}
    imp.save(update_fields=["column_map", "date_order", "status", "preview"])
    audit(
        "import.columns_chosen",
        actor=actor,
        obj=imp,
        columns=sorted(column_map),
        dates=imp.date_order or "auto",
    )
    transaction.on_commit(lambda: _enqueue_check(imp.pk))
    return imp


@transaction.atomic
def do_confirm_import(imp: Import, *, actor: Any) -> Import:
    """The operator's go-ahead: queue the checked import to run as checked."""
    changed = Import.objects.filter(
        pk=imp.pk, status=Import.Status.READY, preview__has_key="counts"
    ).update(status=Import.Status.QUEUED)
    if changed != 1:
        raise ImportStateError("Only a checked file that can be imported can be confirmed.")
    imp.refresh_from_db()
    audit("import.confirmed", actor=actor, obj=imp, **imp.preview.get("counts", {}))
    transaction.on_commit(lambda: _enqueue_import(imp.pk))
    return imp


@transaction.atomic
def do_cancel_import(imp: Import, *, actor: Any) -> None:
    """Drop a checked import that was never confirmed, and its uploaded file."""
    imp = Import.objects.select_for_update().get(pk=imp.pk)
    _preview_owned(imp)
    audit("import.cancelled", actor=actor, obj=imp)
    imp.delete()  # the upload goes with it (models._delete_import_files)


def _enqueue_check(import_id: int) -> None:
    from ..tasks import check_upload

    check_upload.enqueue(import_id)


def _enqueue_import(import_id: int) -> None:
    from ..tasks import import_contacts

    import_contacts.enqueue(import_id)


def start_check(**kwargs: Any) -> Import:
    """An uploaded import to be checked before it runs (the browser's way): create_import()
    with status CHECKING, and the check queued once it is committed."""
    from .run import create_import

    imp = create_import(**kwargs, status=Import.Status.CHECKING)
    transaction.on_commit(lambda: _enqueue_check(imp.pk))
    return imp
