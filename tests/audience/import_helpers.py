"""What the import tests share: files written from text, an import run to the end, its report."""

from __future__ import annotations

import csv
from pathlib import Path

from tidings.audience.imports import ImportConfig, create_import, run_import
from tidings.audience.models import (
    ConsentEvent,
    ConsentWording,
    Contact,
    Import,
    MailingList,
    Subscription,
)

CONSENT = "Signed up at our stand at the Chester trade fair, 2026 (paper forms kept in the office)."


def write(tmp_path: Path, text: str, name: str = "contacts.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def do_import(
    path: Path,
    mailing_list: MailingList,
    *,
    fast: bool = True,
    batch_rows: int | None = None,
    progress=None,
    **kwargs,
) -> Import:
    kwargs.setdefault("consent_source", CONSENT)
    imp = create_import(mailing_list=mailing_list, original_filename=path.name, **kwargs)
    config = ImportConfig(batch_rows=batch_rows) if batch_rows else None
    return run_import(imp, path, fast=fast, config=config, progress=progress)


def report_rows(imp: Import) -> list[list[str]]:
    assert imp.report_path is not None
    with imp.report_path.open(encoding="utf-8-sig", newline="") as fp:
        return list(csv.reader(fp))


def counts() -> dict[str, int]:
    return {
        "contacts": Contact.objects.count(),
        "subscriptions": Subscription.objects.count(),
        "events": ConsentEvent.objects.count(),
        "wordings": ConsentWording.objects.count(),
    }
