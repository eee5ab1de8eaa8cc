"""DMARC aggregate reports: read with parsedmarc from a file (.xml, .xml.gz, .zip), an upload or
the bounce mailbox; stored per day, sending address and result; shown as pass rates per source
with a chart, unknown sources flagged; malformed reports kept unprocessed with the reason;
failure reports (which can quote people) never kept."""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from email.message import EmailMessage

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tidings.campaigns.bounces.processing import do_record_inbound_mail
from tidings.campaigns.deliverability.dmarc import (
    do_record_dmarc_report,
    looks_like_dmarc_report,
    sources,
)
from tidings.campaigns.models import DmarcRecord, DmarcReport, InboundReport, Sender

pytestmark = pytest.mark.django_db

OURS = "192.0.2.25"
SPOOFER = "203.0.113.5"


def report_xml(report_id: str = "r-1", *, day: int = 1767225600, ours: int = 120, spoof: int = 3):
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name><email>noreply-dmarc-support@google.com</email>
    <report_id>{report_id}</report_id>
    <date_range><begin>{day}</begin><end>{day + 86399}</end></date_range>
  </report_metadata>
  <policy_published><domain>example.co.uk</domain><adkim>r</adkim><aspf>r</aspf><p>none</p>
    <sp>none</sp><pct>100</pct></policy_published>
  <record>
    <row><source_ip>{OURS}</source_ip><count>{ours}</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>
      </policy_evaluated></row>
    <identifiers><header_from>example.co.uk</header_from></identifiers>
    <auth_results><dkim><domain>example.co.uk</domain><result>pass</result>
      <selector>tidings</selector></dkim>
      <spf><domain>example.co.uk</domain><result>pass</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>{SPOOFER}</source_ip><count>{spoof}</count>
      <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf>
      </policy_evaluated></row>
    <identifiers><header_from>example.co.uk</header_from></identifiers>
    <auth_results><spf><domain>spoof.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>""".encode()


def as_zip(data: bytes, name: str = "google.com!example.co.uk!1767225600!1767311999.xml"):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def as_mail(data: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "noreply-dmarc-support@google.com"
    message["To"] = "bounces@example.co.uk"
    message["Subject"] = "Report domain: example.co.uk Submitter: google.com Report-ID: r-9"
    message.set_content("This is an aggregate report from google.com.")
    message.add_attachment(
        gzip.compress(data),
        maintype="application",
        subtype="gzip",
        filename="google.com!example.co.uk!1767225600!1767311999.xml.gz",
    )
    return message.as_bytes()


def test_an_xml_report_is_stored_per_day_address_and_result():
    report = do_record_dmarc_report(report_xml(), source="file")
    assert report.status == "processed"
    assert (report.org_name, report.domain, report.policy) == (
        "google.com",
        "example.co.uk",
        "none",
    )
    assert report.messages == 123 and report.raw == b""
    rows = {
        r.source_ip: (r.count, r.dmarc_pass, r.spf_aligned, r.dkim_aligned)
        for r in DmarcRecord.objects.all()
    }
    assert rows == {OURS: (120, True, True, True), SPOOFER: (3, False, False, False)}
    assert {str(r.day) for r in DmarcRecord.objects.all()} == {"2026-01-01"}


@pytest.mark.parametrize("pack", [gzip.compress, as_zip, as_mail], ids=["gzip", "zip", "mail"])
def test_gzip_zip_and_whole_mails_are_read_too(pack):
    report = do_record_dmarc_report(pack(report_xml()), source="file")
    assert report.status == "processed", report.reason
    assert report.messages == 123


def test_the_same_report_twice_is_counted_once():
    do_record_dmarc_report(report_xml("same"), source="file")
    again = do_record_dmarc_report(gzip.compress(report_xml("same")), source="imap")
    assert again.status == "processed" and "the same report as" in again.reason
    assert DmarcRecord.objects.filter(source_ip=OURS).count() == 1


def test_a_malformed_report_is_kept_unprocessed_with_the_reason():
    broken = report_xml().replace(b"report_metadata>", b"metadata>")
    report = do_record_dmarc_report(broken, source="file")
    assert report.status == "unprocessed"
    assert report.reason == (
        "not a DMARC report parsedmarc can read: Invalid aggregate report: Missing field: "
        "'report_metadata'"
    )
    assert bytes(report.raw) == broken  # kept, to look at or read again later
    assert not DmarcRecord.objects.exists()


@pytest.mark.parametrize("count", ["-3", str(10**20)])
def test_a_report_with_an_impossible_count_is_kept_unprocessed_not_a_crash(count):
    """A negative count broke the database's check, a huge one overflowed SQLite's integer: the
    command, the upload and the bounce mailbox crashed instead of keeping the report."""
    broken = report_xml("odd", spoof=3).replace(
        b"<count>3</count>", f"<count>{count}</count>".encode()
    )
    report = do_record_dmarc_report(broken, source="file")
    report.refresh_from_db()
    assert report.status == "unprocessed"
    assert report.reason == (
        f"not stored: the row for {SPOOFER} gives {count} messages, which cannot be right"
    )
    assert bytes(report.raw) == broken
    assert not DmarcRecord.objects.exists()


def test_a_failure_report_is_refused_and_not_kept():
    message = EmailMessage()
    message["From"] = "dmarc@receiver.example"
    message["To"] = "bounces@example.co.uk"
    message["Subject"] = "FW: auth failure"
    message.make_mixed()
    text = EmailMessage()
    text.set_content("An authentication failure report.")
    message.attach(text)
    feedback = EmailMessage()
    feedback.set_content(
        "Feedback-Type: auth-failure\nUser-Agent: test/1.0\nVersion: 1\n"
        "Original-Mail-From: <someone@example.org>\nArrival-Date: Thu, 1 Jan 2026 10:00:00 +0000\n"
        "Source-IP: 203.0.113.5\nReported-Domain: example.co.uk\nAuthentication-Results: "
        "receiver.example; dmarc=fail header.from=example.co.uk\nDelivery-Result: reject\n",
        subtype="feedback-report",
    )
    feedback.replace_header("Content-Type", "message/feedback-report")
    message.attach(feedback)
    original = EmailMessage()
    original["From"] = "someone@example.co.uk"
    original["To"] = "person@example.org"
    original["Subject"] = "Hello"
    original.set_content("A private message.")
    headers = EmailMessage()
    headers.set_content(original.as_string(), subtype="rfc822-headers")
    headers.replace_header("Content-Type", "text/rfc822-headers")
    message.attach(headers)
    report = do_record_dmarc_report(message.as_bytes(), source="imap")
    assert report.status == "unprocessed"
    assert report.raw == b""
    assert "not kept" in report.reason or "not a DMARC report" in report.reason


def test_reports_at_the_bounce_mailbox_go_to_dmarc_not_to_bounces():
    raw = as_mail(report_xml("from-mailbox"))
    assert looks_like_dmarc_report(raw)
    result = do_record_inbound_mail(raw, source="imap")
    assert isinstance(result, DmarcReport) and result.status == "processed"
    assert not InboundReport.objects.exists()


def test_an_ordinary_bounce_is_not_mistaken_for_a_report():
    message = EmailMessage()
    message["From"] = "MAILER-DAEMON@mx.example.org"
    message["Subject"] = "Undelivered Mail Returned to Sender"
    message.set_content("Your message could not be delivered.")
    assert not looks_like_dmarc_report(message.as_bytes())


def test_sources_say_which_are_ours_authorised_or_unknown():
    Sender.objects.create(
        name="News", email="news@example.co.uk", health={"sending_ips": [OURS], "checks": []}
    )
    do_record_dmarc_report(report_xml(day=_days_ago(2)), source="file")
    found = {s.ip: s for s in sources(30)}
    assert found[OURS].ours and found[OURS].pass_rate == 1.0 and not found[OURS].flagged
    assert found[SPOOFER].flagged and found[SPOOFER].pass_rate == 0.0


def _days_ago(n: int) -> int:
    from django.utils import timezone

    return int((timezone.now().timestamp() // 86400 - n) * 86400)


def test_the_page_shows_pass_rates_a_chart_and_flags_unknown_sources(owner_client):
    do_record_dmarc_report(report_xml(day=_days_ago(1)), source="file")
    do_record_dmarc_report(b"<feedback>", source="file")
    page = owner_client.get(reverse("campaigns:deliverability")).content.decode()
    assert '<svg class="chart"' in page
    assert "Messages sent as your domains, by DMARC result, per day" in page
    assert f'<th scope="row">{SPOOFER}</th>' in page
    assert "Unknown: not your server, and it fails DMARC" in page
    assert "Unprocessed:</strong> not a DMARC report parsedmarc can read" in page


def test_an_owner_uploads_a_report_and_an_analyst_may_only_look(owner_client, client):
    from tests.operators import make_operator

    upload = SimpleUploadedFile("report.xml.gz", gzip.compress(report_xml("up")))
    owner_client.post(reverse("campaigns:dmarc-upload"), {"report": upload})
    assert DmarcReport.objects.get().report_id == "up"
    client.force_login(make_operator("ann", "analyst"))
    assert client.get(reverse("campaigns:deliverability")).status_code == 200
    again = SimpleUploadedFile("report.xml", report_xml("nope"))
    assert client.post(reverse("campaigns:dmarc-upload"), {"report": again}).status_code == 403


def test_the_command_reads_a_file_and_fails_on_a_bad_one(tmp_path, capsys):
    good = tmp_path / "report.xml.gz"
    good.write_bytes(gzip.compress(report_xml("cli")))
    call_command("dmarc", "process", "--file", str(good))
    assert "google.com about example.co.uk: 2 rows, 123 messages" in capsys.readouterr().out
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"not xml at all")
    with pytest.raises(CommandError) as failed:
        call_command("dmarc", "process", "--file", str(bad))
    assert failed.value.returncode == 1 and "kept unprocessed" in str(failed.value)
    with pytest.raises(CommandError, match="cannot read"):
        call_command("dmarc", "process", "--file", str(tmp_path / "missing.xml"))


def test_an_empty_file_is_kept_unprocessed_with_a_reason(tmp_path):
    report = do_record_dmarc_report(b"", source="file")
    assert report.status == "unprocessed"
    assert report.reason == "the file is empty: nothing to read"
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(CommandError) as failed:
        call_command("dmarc", "process", "--file", str(empty))
    assert str(failed.value).endswith("kept unprocessed: the file is empty: nothing to read")


def test_a_report_of_one_row_and_one_message_says_so_in_words():
    """The upload said "Report from google.com: 1 rows, 1 messages"."""
    one = re.sub(
        rb"<record>\s*<row><source_ip>" + SPOOFER.encode() + rb".*?</record>",
        b"",
        report_xml("one", ours=1),
        flags=re.S,
    )
    report = do_record_dmarc_report(one, source="file")
    assert report.reason == "1 row, 1 message"
    assert do_record_dmarc_report(report_xml("two"), source="file").reason == "2 rows, 123 messages"
