"""Hostile and broken mail at the support address: whatever arrives is kept as exactly one row —
acted on, or unprocessed with its reason and (unless the policy refuses its text) its bytes — and
no exception escapes to the mail server's pipe or the mailbox fetch.

The MIME trees are the bounce intake's (tests/campaigns/test_bounces_hostile.py), sent from a
person to the support address, plus quoted mails (message/rfc822) nested thousands deep, which
ended in a RecursionError with the row left unprocessed and no reason."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.campaigns.test_bounces_hostile import multipart, trees
from tests.hypothesis_profiles import examples
from tidings.crm.inbound.processing import do_receive_inbound
from tidings.crm.models import InboundMail

from .helpers import SUPPORT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("support_address")]

HEAD = (
    f"From: Grace Hopper <grace@example.org>\r\nTo: {SUPPORT}\r\nSubject: help\r\n"
    "MIME-Version: 1.0\r\n"
).encode()


def quoted(depth: int) -> bytes:
    """A mail quoting a mail quoting a mail ... ``depth`` times (message/rfc822 parts)."""
    inner = b"From: grace@example.org\r\nSubject: leaf\r\n\r\nhello\r\n"
    for _ in range(depth):
        inner = HEAD + b"Content-Type: message/rfc822\r\n\r\n" + inner
    return inner


@st.composite
def hostile_mail(draw) -> bytes:
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.binary(max_size=2000))
    if choice == 1:
        return quoted(draw(st.integers(1, 3000)))
    if choice == 2:
        depth = draw(st.integers(1, 3000))
        return (
            HEAD
            + multipart(
                [b"Content-Type: text/plain\r\n\r\nhello\r\n"], "multipart/mixed", "b", True
            )
            if depth == 1
            else HEAD + _nested(depth)
        )
    return HEAD + draw(trees)


def _nested(depth: int) -> bytes:
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return opening + b"Content-Type: text/plain\r\n\r\nhello\r\n" + closing


def test_any_mail_at_the_support_address_is_kept_as_one_row_and_never_crashes():
    @hypothesis_settings(
        max_examples=examples(60),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hostile_mail())
    def check(raw: bytes) -> None:
        before = InboundMail.objects.count()
        row = do_receive_inbound(raw, source="pipe")
        row.refresh_from_db()
        assert InboundMail.objects.count() == before + 1
        if row.status == InboundMail.Status.UNPROCESSED:
            assert row.reason, "an unprocessed mail must say why"
            if not row.reason.startswith("refused:"):
                assert bytes(row.raw) == raw, "an unprocessed mail keeps what arrived"

    check()
