"""Imports: upload a CSV file or an Excel workbook (.xlsx) into a list, follow its progress,
fetch the bad-rows report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.conf import settings
from django.http import FileResponse, HttpRequest
from ninja import File, Form, Path, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from tidings.audience.imports import COUNTERS, not_a_csv_file, percent_done, start_import
from tidings.audience.imports.lease import is_interrupted, resume_command
from tidings.audience.models import Import, MailingList

from .. import idempotency
from ..actions import audit_by_token
from ..auth import need, token_of
from ..conditional import HEAD_ONLY
from ..errors import Problem, found, named

router = Router()
ID = Path(..., ge=1, le=2**62)


class ImportOut(Schema):
    id: int
    status: str
    list_id: int | None
    percent: int
    done: bool
    interrupted: bool = Field(
        description="Running, but its process is gone or silent past the lease: it will not "
        "finish by itself; resume it with resume_command on the server."
    )
    resume_command: str
    rows_read: int
    created: int
    updated: int
    unchanged: int
    subscribed: int
    skipped_suppressed: int
    skipped_unsubscribed: int
    left_in_file: int
    duplicates: int
    bad_rows: int
    bad_reasons: dict[str, dict[str, int]]
    notes: list[str] = Field(
        description="What to know about how the file was read (dates read day first, lines "
        "not in UTF-8...), one sentence each, holding no value from the file."
    )
    has_report: bool
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportForm(Schema):
    list_id: int = Field(..., ge=1, le=2**62)
    consent_source: str = Field(
        ...,
        min_length=1,
        max_length=1000,
        description="How these people consented; kept as the wording of each consent event.",
    )
    dates: Literal["", "day-first", "month-first"] = Field(
        "",
        description="How consent dates that read either way (03/04/2025) are read: day-first "
        "(3 April) or month-first (4 March, as a spreadsheet set up for the US saves them); "
        "by default as the file's own dates show, else day first, which notes says.",
    )


_DETAILS = ("bad_reasons", "notes", "error", "created_at", "started_at", "finished_at")


def _out(imp: Import) -> dict:
    interrupted = is_interrupted(imp)
    return {
        "id": imp.pk,
        "status": imp.status,
        "list_id": imp.mailing_list_id,
        "percent": percent_done(imp),
        "done": interrupted or imp.status in (Import.Status.FINISHED, Import.Status.FAILED),
        "interrupted": interrupted,
        "resume_command": resume_command(imp) if interrupted else "",
        **{name: getattr(imp, name) for name in (*COUNTERS, *_DETAILS)},
        "has_report": bool(imp.report_path and imp.report_path.exists()),
    }


def _import(import_id: int) -> Import:
    return found(Import.objects, import_id, "import")


@router.post(
    "",
    response={202: ImportOut},
    auth=need("write", page="audience:imports"),
    summary="Upload a CSV file or an Excel workbook (.xlsx, its first sheet) to import into a "
    "list; runs in the background (write, content)",
    openapi_extra=idempotency.openapi(),
)
def upload(request: HttpRequest, form: Form[ImportForm], file: File[UploadedFile]):
    limit = int(getattr(settings, "TIDINGS_MAX_IMPORT_BYTES", 1024**3))
    if (file.size or 0) > limit:  # refused before its content is hashed for the key
        raise Problem(
            413,
            f"The file is larger than {limit // 1024**2} MB; import it with "
            "`tidings import contacts` on the server instead.",
        )
    return idempotency.run(request, ImportOut, lambda: _upload(request, form, file))


def _upload(request: HttpRequest, form: ImportForm, file: UploadedFile):
    # A picture, a PDF, an .xls or .ods is refused now, not queued to fail in the background;
    # an XLSX workbook goes through (its whole ZIP directory is checked when it is read).
    refusal = not_a_csv_file(file.read(64 * 1024))
    file.seek(0)
    if refusal:
        raise Problem(422, f"file: {refusal}.", errors=[{"field": "file", "message": refusal}])
    mailing_list = named(
        MailingList.objects.filter(closed_at__isnull=True),
        form.list_id,
        "open list",
        field="list_id",
        message="no open list with this id",
    )
    imp = start_import(
        mailing_list=mailing_list,
        consent_source=form.consent_source,
        operator=token_of(request).operator,
        original_filename=(file.name or "upload.csv")[:255],
        date_order=form.dates,
        upload=file.chunks(),
    )
    return Status(202, _out(imp))


@router.get(
    "/{import_id}",
    response=ImportOut,
    auth=need("read", page="audience:import"),
    summary="An import's progress and outcome (read, content)",
)
def progress(request: HttpRequest, import_id: int = ID):
    return _out(_import(import_id))


@router.get(
    "/{import_id}/bad-rows",
    auth=need("read", page="audience:import-report"),
    response={200: None},
    summary="The rows that could not be imported, as CSV (read, content)",
)
def bad_rows(request: HttpRequest, import_id: int = ID):
    imp = _import(import_id)
    path = imp.report_path
    if path is None or not path.exists():
        raise Problem(404, f"Import {import_id} has no bad-rows report.")
    if not getattr(request, HEAD_ONLY, False):  # a HEAD hands nothing out
        audit_by_token("export.import_report", token_of(request), obj=imp)
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"import-{imp.pk}-bad-rows.csv",
        content_type="text/csv",
    )
