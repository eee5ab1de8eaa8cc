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
        parser.add_argument("file", type=Path, help="the CSV file")
        parser.add_argument("--list", required=True, dest="list_name", help="the list's name")
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
            "--dry-run", action="store_true", help="check and count everything, change nothing"
        )

    def handle(self, *args, kind, file, list_name, consent_source, mappings, dry_run, **options):
        # This command reports the outcome itself; the import's info lines are for workers.
        logging.getLogger("tidings.audience.imports").setLevel(logging.WARNING)
        path: Path = file
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        mailing_list = MailingList.objects.filter(name=list_name).first()
        if mailing_list is None:
            names = ", ".join(MailingList.objects.values_list("name", flat=True)[:10]) or "none"
            raise CommandError(f"no list named {list_name!r} (lists: {names})")
        imp = create_import(
            mailing_list=mailing_list,
            consent_source=consent_source,
            original_filename=path.name,
            column_map=dict(_mapping(m) for m in mappings),
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
                imp = run_import(imp, path, progress=update, actor_label="cli")
            except ImportFailed as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(summary(imp, time.monotonic() - started))
        note = ignored_text(imp)
        if note:
            self.stdout.write(note)
        for line in imp.notes:
            self.stdout.write(line)
        if imp.report_path is not None:
            self.stdout.write(f"bad rows report (personal data, for you only): {imp.report_path}")
