"""Hostile and broken mail at the bounce/complaint intake: nothing crashes, nothing is lost, and
nothing one report says reaches a person it is not about.

Hypothesis builds MIME trees of every shape (nested multiparts, DSN and ARF parts, quoted
messages, odd encodings and charsets, cut-off boundaries) with our real Message-IDs for one
person mixed in, plus arbitrary bytes; the command is run for real (a subprocess) on MIME parts
nested thousands deep, which used to end in a traceback with nothing stored.
"""

from __future__ import annotations

import base64
import io
import os
import sqlite3
import subprocess
import sys

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.campaigns.bounce_helpers import DOMAIN, delivered, sample
from tests.hypothesis_profiles import examples
from tidings.audience.emails import email_hmac
from tidings.audience.models import Subscription, Suppression
from tidings.campaigns.bounces.processing import do_record_inbound_mail
from tidings.campaigns.messages import message_id_for
from tidings.campaigns.models import InboundReport
from tidings.lib.mime import MAX_DEPTH

pytestmark = pytest.mark.django_db

HEAD = (
    b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
    b"To: bounces@example.co.uk\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"MIME-Version: 1.0\r\n"
)


def nested(depth: int) -> bytes:
    """A mail whose multipart/mixed parts are nested ``depth`` levels deep."""
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return HEAD + opening + b"Content-Type: text/plain\r\n\r\nStatus: 5.1.1\r\n" + closing


# --- MIME trees --------------------------------------------------------------------------------
LEAF_TYPES = [
    "text/plain",
    "text/html",
    "message/delivery-status",
    "message/feedback-report",
    "text/rfc822-headers",
    "message/rfc822",
    "application/octet-stream",
    "image/png",
    "x-weird/\u00e9",
]
MULTI_TYPES = ["multipart/mixed", "multipart/report", "multipart/alternative", "multipart/x"]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "b\u00e4d", ""]
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "utf-16", "x-unknown", "\u2603", ""]
REPORT_LINES = [
    "Status: 5.1.1",
    "Status: 4.2.2",
    "Action: failed",
    "Action: delayed",
    "Final-Recipient: rfc822; {who}",
    "Original-Recipient: rfc822;{who}",
    "Feedback-Type: abuse",
    "Original-Rcpt-To: {who}",
    "Message-ID: {mid}",
    "550 5.1.1 <{who}>: Recipient address rejected",
    "Reporting-MTA: dns; mx.example.net",
]


@st.composite
def leaf(draw) -> bytes:
    lines = draw(st.lists(st.sampled_from(REPORT_LINES), max_size=6))
    noise = draw(st.text(max_size=200))
    text = "\r\n".join([*lines, noise])
    body = text.encode("utf-8", "surrogatepass")
    encoding = draw(st.sampled_from(ENCODINGS))
    if encoding == "base64" and draw(st.booleans()):
        body = base64.encodebytes(body)
    if draw(st.booleans()):
        body += draw(st.binary(max_size=60))
    ctype = draw(st.sampled_from(LEAF_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    header = f"Content-Type: {ctype}; charset={charset}\r\n"
    if encoding:
        header += f"Content-Transfer-Encoding: {encoding}\r\n"
    return header.encode("utf-8") + b"\r\n" + body + b"\r\n"


def multipart(children: list[bytes], ctype: str, boundary: str, closed: bool) -> bytes:
    out = f'Content-Type: {ctype}; boundary="{boundary}"\r\n\r\npreamble\r\n'.encode()
    for child in children:
        out += f"--{boundary}\r\n".encode() + child
    if closed:
        out += f"--{boundary}--\r\n".encode()
    return out


trees = st.recursive(
    leaf(),
    lambda children: st.builds(
        multipart,
        st.lists(children, max_size=4),
        st.sampled_from(MULTI_TYPES),
        st.text(alphabet="abcXYZ019'()+_,-./:=? ", min_size=1, max_size=20),
        st.booleans(),
    ),
    max_leaves=25,
)


@st.composite
def hostile_mail(draw) -> bytes:
    headers = HEAD
    if draw(st.booleans()):
        headers += draw(st.sampled_from(REPORT_LINES)).encode() + b"\r\n"
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.binary(max_size=3000))
    if choice == 1:
        return nested(draw(st.integers(1, 3000)))
    return headers + draw(trees)


# --- properties --------------------------------------------------------------------------------
def test_any_mail_is_kept_as_a_report_and_only_its_own_person_is_affected():
    """Random MIME trees carrying the Message-ID of Ada's delivery (and Bob's address as text
    only): every input becomes exactly one report — processed, or unprocessed with its reason
    and its bytes kept — no exception escapes, and nobody but Ada is ever suppressed or has a
    subscription changed."""
    _, [(ada, ada_delivery), (bob, _)] = delivered(2)
    ada_mid = message_id_for("d", ada_delivery.pk, DOMAIN)
    bob_subscriptions = set(Subscription.objects.filter(contact=bob).values_list("pk", "status"))

    @hypothesis_settings(
        max_examples=examples(150),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hostile_mail(), st.sampled_from([ada.email, bob.email, "stranger@example.org"]))
    def check(raw: bytes, who: str) -> None:
        raw = raw.replace(b"{mid}", ada_mid.encode()).replace(b"{who}", who.encode())
        before = InboundReport.objects.count()
        if not raw.strip():
            return  # nothing arrived: the command refuses it (tested below)
        report = do_record_inbound_mail(raw, source="pipe")
        report.refresh_from_db()
        assert InboundReport.objects.count() == before + 1
        if report.status == InboundReport.Status.PROCESSED:
            assert report.delivery_id == ada_delivery.pk
            assert report.contact_id == ada.pk
        else:
            assert report.reason, "an unprocessed report must say why"
            assert bytes(report.raw) == raw, "an unprocessed report keeps what arrived"
        assert not Suppression.objects.filter(email_hmac=email_hmac(bob.email)).exists()
        assert (
            set(Subscription.objects.filter(contact=bob).values_list("pk", "status"))
            == bob_subscriptions
        )

    check()


@hypothesis_settings(max_examples=examples(12), deadline=None)
@given(st.integers(min_value=MAX_DEPTH + 1, max_value=6000))
def test_mime_nested_deeper_than_the_limit_is_kept_unprocessed_with_the_reason(depth):
    report = do_record_inbound_mail(nested(depth), source="pipe")
    report.refresh_from_db()
    assert report.status == "unprocessed"
    assert (
        report.reason == f"unreadable: its MIME parts are nested more than {MAX_DEPTH} levels deep"
    )
    assert bytes(report.raw) == nested(depth)


def test_a_real_bounce_wrapped_a_few_levels_deep_is_still_read():
    _, [(ada, delivery)] = delivered()
    inner = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    wrapped = HEAD + multipart(
        [b"Content-Type: message/rfc822\r\n\r\n" + inner], "multipart/mixed", "w1", True
    )
    report = do_record_inbound_mail(wrapped, source="pipe")
    assert report.status == "processed", report.reason
    assert report.delivery_id == delivery.pk


def test_a_mail_with_too_many_parts_is_kept_unprocessed():
    flat = HEAD + multipart(
        [b"Content-Type: text/plain\r\n\r\nx\r\n"] * 600, "multipart/mixed", "flat", True
    )
    report = do_record_inbound_mail(flat, source="pipe")
    assert report.status == "unprocessed"
    assert "more than 500 MIME parts" in report.reason


def test_a_mail_over_the_size_limit_is_kept_unprocessed_without_being_read(settings):
    settings.TIDINGS_BOUNCE_MAX_BYTES = 50_000
    _, [(ada, delivery)] = delivered()
    big = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    big += b"x" * 60_000
    report = do_record_inbound_mail(big, source="pipe")
    assert report.status == "unprocessed"
    assert report.reason.startswith(f"too large: {len(big):,} bytes, over the limit of 50,000")
    assert bytes(report.raw) == b""  # not kept: nothing for the reader to choke on later
    assert not Suppression.objects.exists()


def test_the_command_keeps_deeply_nested_mime_as_an_unprocessed_report(tmp_path):
    path = tmp_path / "nested.eml"
    path.write_bytes(nested(5000))
    out = io.StringIO()
    call_command("bounces", "process", "--file", str(path), stdout=out)
    report = InboundReport.objects.get()
    assert out.getvalue().strip() == (
        f"report #{report.pk}: unprocessed: unreadable: its MIME parts are nested more than "
        f"{MAX_DEPTH} levels deep"
    )
    assert bytes(report.raw) == nested(5000)


@pytest.mark.django_db(transaction=False)
def test_the_real_command_exits_cleanly_on_deep_mime_and_stores_it(fresh_installation):
    """`tidings bounces process` as an MTA runs it: a separate process with its own SQLite
    database, the mail on standard input."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "TIDINGS_"))
    }
    env["TIDINGS_DATA_DIR"] = str(fresh_installation)  # migrated
    tidings = [sys.executable, "-m", "tidings"]
    done = subprocess.run(
        [*tidings, "bounces", "process"],
        env=env,
        input=nested(5000),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"Traceback" not in done.stderr
    assert b": unprocessed: unreadable: its MIME parts are nested" in done.stdout
    with sqlite3.connect(fresh_installation / "tidings.sqlite3") as db:
        rows = db.execute(
            "SELECT status, reason, length(raw) FROM campaigns_inboundreport"
        ).fetchall()
    assert rows == [("unprocessed", rows[0][1], len(nested(5000)))]
    assert "nested more than" in rows[0][1]
