"""Hostile input: formula cells in every CSV export, oversized requests and uploads.

Hostile campaign templates (attribute walks, huge loops, enormous output) are proven harmless in
tests/campaigns/test_hostile_templates.py; this module covers what reaches the web layer.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.operators import make_operator, sign_in
from tests.web.test_access_rules import ROUTES
from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.audience.imports import create_import, run_import
from tidings.audience.models import MailingList, Segment

pytestmark = pytest.mark.django_db

# What an attacker types into a sign-up form, hoping an operator opens the export in Excel.
FORMULAS = [
    "=cmd|' /C calc'!A0",
    '+HYPERLINK("https://evil.example","click")',
    "-2+3",
    "@SUM(1,1)",
]


@pytest.fixture
def officer(db) -> Client:
    client = Client()
    sign_in(client, make_operator("priya", "privacy_officer"))
    return client


@pytest.fixture
def hostile_list(db) -> MailingList:
    news = MailingList.objects.create(name="News", topic="product news")
    for i, formula in enumerate(FORMULAS):
        contact, _ = do_create_contact(
            {"email": f"h{i}@example.com", "name": formula}, purpose="newsletter"
        )
        do_subscribe(
            contact, news, source="form", wording_text=formula, confirmed=True, source_ref=formula
        )
    return news


def cells(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def assert_no_formula(rows: list[list[str]]) -> None:
    formulas = [c for row in rows[1:] for c in row if c[:1] in {"=", "+", "-", "@", "\t", "\r"}]
    assert formulas == [], "cells a spreadsheet would run as formulas"


def test_the_list_export_neutralises_formula_cells(officer, hostile_list):
    rows = cells(officer.get(f"/audience/lists/{hostile_list.pk}/export.csv"))

    names = [row[rows[0].index("name")] for row in rows[1:]]
    assert sorted(names) == sorted("'" + f for f in FORMULAS)
    assert_no_formula(rows)


def test_the_segment_export_neutralises_formula_cells(officer, hostile_list):
    segment = Segment.objects.create(name="All news", query='list:"News"')

    rows = cells(officer.get(f"/audience/segments/{segment.pk}/export.csv"))

    assert len(rows) == 1 + len(FORMULAS)
    assert_no_formula(rows)


def test_the_consent_proof_neutralises_formula_cells(officer, hostile_list):
    contact = hostile_list.subscriptions.first().contact

    rows = cells(officer.get(f"/audience/contacts/{contact.pk}/consent.csv"))

    assert len(rows) > 1
    assert any(c.startswith("'") for row in rows[1:] for c in row)
    assert_no_formula(rows)


def test_the_import_bad_rows_report_neutralises_formula_cells(tmp_path, hostile_list):
    editor = Client()
    sign_in(editor, make_operator("eddie", "editor"))
    source = tmp_path / "hostile.csv"
    source.write_text(
        "email,name\n" + "".join(f'not-an-address-{i},"{f}"\n' for i, f in enumerate(FORMULAS))
    )
    imp = run_import(create_import(mailing_list=hostile_list, original_filename="h.csv"), source)

    response = editor.get(f"/audience/imports/{imp.pk}/bad-rows.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))

    assert imp.bad_rows == len(FORMULAS)
    assert_no_formula(rows)


def test_the_import_bad_rows_report_neutralises_formulas_in_the_files_own_header(
    tmp_path, hostile_list
):
    editor = Client()
    sign_in(editor, make_operator("eddie", "editor"))
    source = tmp_path / "hostile-header.csv"
    header = ",".join(f'"{f.replace('"', '""')}"' for f in FORMULAS)
    source.write_text(f"email,name,{header}\nnot-an-address,Ada,1,2,3,4\n")
    imp = run_import(create_import(mailing_list=hostile_list, original_filename="h.csv"), source)

    response = editor.get(f"/audience/imports/{imp.pk}/bad-rows.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))

    assert imp.bad_rows == 1
    assert rows[0][-len(FORMULAS) :] == ["'" + f for f in FORMULAS]


def test_the_campaign_report_neutralises_formula_cells(officer, hostile_list):
    from tests.campaigns.lifecycle_helpers import make_campaign
    from tidings.campaigns.models import TrackedLink

    campaign = make_campaign(hostile_list)
    # A link address is the operator's text; the report lists every link of the campaign.
    for index, formula in enumerate(FORMULAS):
        TrackedLink.objects.create(campaign=campaign, index=index, url=formula)

    rows = cells(officer.get(f"/campaigns/{campaign.pk}/report.csv"))

    links = [row[1] for row in rows if row and row[0] == "link"]
    assert sorted(links) == sorted("'" + f for f in FORMULAS)
    assert_no_formula(rows)


COVERED_CSV_EXPORTS = {
    "campaigns:report-csv",
    "audience:list-export",
    "audience:segment-export",
    "audience:consent-proof",
    "audience:import-report",
}


def test_every_csv_export_of_the_project_is_covered_here():
    exports = {r.key for r in ROUTES if r.route.endswith(".csv")}

    assert exports <= COVERED_CSV_EXPORTS, (
        f"{sorted(exports - COVERED_CSV_EXPORTS)} export CSV: build it with "
        "tidings.lib.csv_export.streamed_csv (which neutralises formula cells) and add a test "
        "here that exports hostile cells through it"
    )


# --- oversized requests ----------------------------------------------------------------------


def test_an_oversized_form_is_refused_with_a_clear_message(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024**2

    response = client.post("/login/", {"username": "x" * (2 * 1024**2), "password": "y"})

    assert response.status_code == 413
    assert "this site accepts at most 1 MB in one form" in response.text
    assert '<main id="main"' in response.text


def test_an_oversized_import_upload_is_refused_with_a_clear_message(monkeypatch, hostile_list):
    import tidings.audience.tool_views as tool_views

    monkeypatch.setattr(tool_views, "MAX_UPLOAD_BYTES", 1024**2)
    editor = Client()
    sign_in(editor, make_operator("eddie", "editor"))
    big = SimpleUploadedFile("big.csv", b"email\n" + b"a@example.com\n" * 90_000)

    response = editor.post(
        "/audience/imports/",
        {"file": big, "mailing_list": hostile_list.pk, "consent_source": "fair"},
    )

    assert response.status_code == 200
    assert "The file is larger than 1 MB" in response.text


@pytest.mark.parametrize("url", ["/login/", "/login/reset/", "/rights/"])
def test_a_stranger_cannot_send_a_file_of_any_size_to_a_public_form(client, settings, url):
    # Files in a form are not counted by Django's limit: they stream to a temporary file.  No
    # public form takes one, yet each wrote whatever was sent to the disk before answering.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024**2
    big = SimpleUploadedFile("big.bin", b"\0" * (2 * 1024**2))

    response = client.post(url, {"email": "a@example.com", "file": big})

    assert response.status_code == 413
    assert "this site accepts at most 1 MB in one form" in response.text


def test_the_sign_up_forms_other_sites_post_to_refuse_a_huge_file_too(client, settings):
    from tests.audience.public_helpers import make_form, make_list

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024**2
    form = make_form([make_list()])
    big = SimpleUploadedFile("big.bin", b"\0" * (2 * 1024**2))

    response = client.post(f"/f/{form.slug}", {"email": "a@example.com", "file": big})

    assert response.status_code == 413


def test_an_operator_still_uploads_past_the_form_limit(monkeypatch, settings, hostile_list):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024**2
    editor = Client()
    sign_in(editor, make_operator("eddie", "editor"))
    csv_file = SimpleUploadedFile("big.csv", b"email\n" + b"a@example.com\n" * 90_000)

    response = editor.post(
        "/audience/imports/",
        {"file": csv_file, "mailing_list": hostile_list.pk, "consent_source": "fair"},
    )

    assert response.status_code in (200, 302)
    assert response.status_code != 413
