"""``tidings import contacts FILE.csv --list NAME``: import a CSV file of contacts into a list."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from tidings.audience.imports import (
    ImportFailed,
    create_import,
    ignored_text,
    run_import,
    summary,
)
from tidings.audience.imports.columns import DATE_CHOICES
from tidings.audience.imports.lease import is_interrupted, resume_import
from tidings.audience.imports.preview import NO_ROWS
from tidings.audience.models import Import, MailingList


def _mapping(text: str) -> tuple[str, str]:
    column, sep, field = text.partition("=")
    if not sep or not column.strip():
        raise CommandError(f"--map expects 'Column=field' (or 'Column=' to ignore), got {text!r}")
    return column.strip(), field.strip()


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV file into a list, as confirmed subscribers whose consent you "
        "assert (say where it came from with --consent-source).  Columns are matched to the "
        "policy's newsletter fields by their headers; others are reported and not stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["contacts"], help="what to import")
        parser.add_argument(
            "file",
            type=Path,
            nargs="?",
            help="the CSV file (with --resume: not needed for an import uploaded in the browser)",
        )
        parser.add_argument("--list", dest="list_name", help="the list's name (required)")
        parser.add_argument(
            "--consent-source",
            default="",
            help="where and how these people consented (kept as the consent wording)",
        )
        parser.add_argument(
            "--map",
            action="append",
            dest="mappings",
            default=[],
            metavar="COLUMN=FIELD",
            help="map a column to a field (repeatable); 'COLUMN=' ignores the column",
        )
        parser.add_argument(
            "--dates",
            choices=DATE_CHOICES,
            default="",
            help="read consent dates such as 03/04/2025 day first (3 April) or month first "
            "(4 March, as a spreadsheet set up for the US saves them); by default as the "
            "file's own dates show, else day first with a note",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check and count everything, change nothing"
        )
        parser.add_argument(
            "--resume",
            type=int,
            metavar="ID",
            help="run an interrupted import again (its list, map and consent source kept): "
            "what it wrote is kept and its counts carried over",
        )

    def handle(
        self,
        *args,
        kind,
        file,
        list_name,
        consent_source,
        mappings,
        dates,
        dry_run,
        resume,
        **options,
    ):
        # This command reports the outcome itself; the import's info lines are for workers.
        logging.getLogger("tidings.audience.imports").setLevel(logging.WARNING)
        if resume is not None:
            imp = self._resumed(resume, file, list_name, mappings, dates, dry_run)
            path = file or imp.stored_path
            assert path is not None
        else:
            if file is None:
                raise CommandError("give the CSV file to import (or --resume ID)")
            if not list_name:
                raise CommandError("give the list to import into with --list NAME")
            path = file
            if not path.is_file():
                raise CommandError(f"no such file: {path}")
            mailing_list = MailingList.objects.filter(name=list_name).first()
            if mailing_list is None:
                names = ", ".join(MailingList.objects.values_list("name", flat=True)[:10])
                raise CommandError(f"no list named {list_name!r} (lists: {names or 'none'})")
            imp = create_import(
                mailing_list=mailing_list,
                consent_source=consent_source,
                original_filename=path.name,
                column_map=dict(_mapping(m) for m in mappings),
                date_order=dates,
                dry_run=dry_run,
            )
        console = Console(stderr=True)
        show = options["verbosity"] > 0
        started = time.monotonic()
        with Progress(
            TextColumn("[bold]Importing[/]"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]:>12,} rows"),
            TextColumn("{task.fields[rate]:>8,.0f} rows/s"),
            TimeRemainingColumn(),
            console=console,
            disable=not show,
            transient=True,
        ) as progress:
            bar = progress.add_task("import", total=path.stat().st_size, rows=0, rate=0.0)

            def update(current: Import) -> None:
                elapsed = max(time.monotonic() - started, 1e-6)
                progress.update(
                    bar,
                    completed=current.processed_bytes,
                    rows=current.rows_read,
                    rate=current.rows_read / elapsed,
                )

            try:
                if resume is not None:
                    imp = resume_import(imp, path, progress=update, actor_label="cli")
                else:
                    imp = run_import(imp, path, progress=update, actor_label="cli")
            except ImportFailed as exc:
                raise CommandError(str(exc)) from None
        if imp.rows_read == 0:
            # "Imported 0 rows" and exit 0 read as done: the browser's check refuses it so.
            raise CommandError(NO_ROWS)
        self.stdout.write(summary(imp, time.monotonic() - started))
        note = ignored_text(imp)
        if note:
            self.stdout.write(note)
        for line in imp.notes:
            self.stdout.write(line)
        if imp.report_path is not None:
            self.stdout.write(f"bad rows report (personal data, for you only): {imp.report_path}")

    @staticmethod
    def _resumed(
        pk: int,
        file: Path | None,
        list_name: str | None,
        mappings: list[str],
        dates: str,
        dry_run: bool,
    ) -> Import:
        """The import to resume, checked before anything runs."""
        if list_name or mappings or dates or dry_run:
            raise CommandError("--resume keeps the import's list, map and dates: give none of them")
        imp = Import.objects.select_related("mailing_list", "operator").filter(pk=pk).first()
        if imp is None:
            raise CommandError(f"no import {pk}")
        if imp.status == Import.Status.RUNNING and not is_interrupted(imp):
            raise CommandError(
                f"import {pk} is still running (process {imp.run_pid} on {imp.run_host})"
            )
        if imp.status not in (Import.Status.RUNNING, Import.Status.FAILED):
            raise CommandError(f"import {pk} is {imp.get_status_display().lower()}: not resumed")
        if file is None and imp.stored_path is None:
            raise CommandError(
                f"import {pk} read {imp.original_filename or 'a file'} in place: give the file"
            )
        path = file or imp.stored_path
        if path is None or not path.is_file():
            raise CommandError(f"no such file: {path}")
        return imp
