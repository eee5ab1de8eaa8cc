"""DKIM: ``tidings dkim keygen`` and signatures that dkimpy verifies against the record."""

from __future__ import annotations

import functools
import io
import re
import stat
import unittest.mock

import dkim as dkimpy
import hypothesis
import pytest
from django.core.management import CommandError, call_command
from hypothesis import strategies as st

from tests.campaigns.delivery_helpers import (
    SmtpSink,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tidings.campaigns.engine import deliver_pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings, tmp_path):
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "dkim")
    settings.TIDINGS_DKIM_SELECTOR = "news2026"
    return tmp_path / "dkim"


def keygen(*args: str) -> str:
    out = io.StringIO()
    call_command("dkim", "keygen", *args, stdout=out)
    return out.getvalue()


def dns_from(output: str):
    """A DNS lookup for dkimpy that answers with the record keygen printed."""
    name = re.search(r"^Name:\s+(\S+)$", output, re.M).group(1)
    value = re.search(r"^Value: (.+)$", output, re.M).group(1)

    def lookup(qname, timeout=5):
        return value.encode() if qname.decode().rstrip(".") == name else None

    return name, lookup


def test_keygen_stores_a_private_key_and_prints_the_record_to_publish(keys):
    output = keygen("Example.co.uk")
    path = keys / "example.co.uk" / "news2026.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in path.read_bytes()
    assert "news2026._domainkey.example.co.uk. IN TXT" in output
    assert re.search(r"^Value: v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$", output, re.M)
    assert "signed with this key from now on" in output
    with pytest.raises(CommandError, match="exists already"):
        keygen("example.co.uk")


def test_keygen_with_another_selector_says_how_to_switch_to_it(keys):
    output = keygen("example.co.uk", "--selector", "next")
    assert "next._domainkey.example.co.uk" in output
    assert "set TIDINGS_DKIM_SELECTOR=next" in output


def test_show_prints_the_record_of_an_existing_key(keys):
    made = keygen("example.co.uk")
    out = io.StringIO()
    call_command("dkim", "show", "example.co.uk", stdout=out)
    value = re.search(r"^Value: (.+)$", made, re.M).group(1)
    assert value in out.getvalue()


def test_campaign_messages_are_signed_and_verify_against_the_published_key(keys, settings):
    _, lookup = dns_from(keygen("example.co.uk"))
    news = make_list()
    subscribers(news, 2)
    sending_campaign(news)
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending()
    assert len(sink.received) == 2
    for received in sink.received:
        assert dkimpy.verify(received.data, dnsfunc=lookup)
        signature = received.message["DKIM-Signature"]
        signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", signature).group(1).split(":")}
        assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= signed
        assert "d=example.co.uk" in signature and "s=news2026" in signature


def test_changing_the_unsubscribe_link_breaks_the_signature(keys, settings):
    _, lookup = dns_from(keygen("example.co.uk"))
    news = make_list()
    subscribers(news, 1)
    sending_campaign(news)
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending()
    data = sink.received[0].data
    forged = re.sub(
        rb"List-Unsubscribe: <[^>]+>", b"List-Unsubscribe: <https://evil.example/u>", data
    )
    assert forged != data
    assert not dkimpy.verify(forged, dnsfunc=lookup)


def test_mail_from_a_domain_without_a_key_is_not_signed(keys, settings):
    keygen("another.example")
    news = make_list()
    subscribers(news, 1)
    sending_campaign(news)
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending()
    assert sink.received[0].message["DKIM-Signature"] is None


def test_openssl_signs_exactly_as_dkimpys_own_rsa_would(keys):
    import hashlib

    from dkim.crypto import parse_pem_private_key

    from tidings.campaigns.dkim import _pure_python_sign, _rsa_sign_with_openssl

    keygen("example.co.uk")
    key = parse_pem_private_key((keys / "example.co.uk" / "news2026.pem").read_bytes())
    digest = dkimpy.HashThrough(hashlib.sha256(b"a canonicalized header block"))
    assert _rsa_sign_with_openssl(digest, key) == _pure_python_sign(digest, key)


@pytest.mark.parametrize(
    "body",
    [
        "Plain ASCII news.\n\nSecond paragraph.\n",
        "Zoë’s news, 8bit UTF-8.\n\n\n",  # trailing empty lines: simple body canonicalisation
        "",
    ],
    ids=["ascii", "utf-8 with trailing lines", "empty"],
)
def test_signatures_are_byte_for_byte_what_dkimpy_makes_of_the_whole_message(
    keys, monkeypatch, body
):
    """``DkimSigner.sign`` hands dkimpy only the header block to parse; the header it returns is
    the one ``dkimpy.sign`` makes of the whole message, and it verifies."""
    from tidings.campaigns.dkim import SIGNED_HEADERS, signer_for
    from tidings.campaigns.messages import MessageFactory

    _name, lookup = dns_from(keygen("example.co.uk"))
    signer = signer_for("news@example.co.uk")
    factory = MessageFactory(
        from_header="Example News <news@example.co.uk>",
        headers={"List-Id": "News <news.example.co.uk>", "List-Unsubscribe-Post": "One-Click"},
    )
    message = factory.build(
        to="Zoë Müller <zoe@example.org>",
        subject="Nouvelles – décembre",
        text=body,
        html=f"<p>{body}</p>" if body else "",
        message_id="<d1.abc@example.co.uk>",
        headers={"List-Unsubscribe": "<https://example.co.uk/u/T>"},
        eight_bit=True,
    )
    head = message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    present = {line.split(b":", 1)[0].lower() for line in head if line[:1] not in (b" ", b"\t")}
    include = [h for h in SIGNED_HEADERS if h in present] + [
        h for h in SIGNED_HEADERS if h not in (b"to", b"date") and h in present
    ]
    monkeypatch.setattr(dkimpy.time, "time", lambda: 1_800_000_000.0)
    whole = dkimpy.sign(
        message,
        signer.selector,
        signer.domain,
        signer.key,
        include_headers=include,
        canonicalize=(b"relaxed", b"simple"),
    )
    header = signer.sign(message)
    assert header == whole
    assert signer.sign(message, crlf=True) == whole  # as MessageFactory asks for it
    assert dkimpy.verify(header + message, dnsfunc=lookup)
    # A message with bare LF line ends (not ours) is parsed whole by dkimpy, and still verifies.
    loose = message.replace(b"\r\n", b"\n")
    assert dkimpy.verify(signer.sign(loose) + loose, dnsfunc=lookup)


_VALUE = st.text(alphabet=st.sampled_from("ab Z09-:;<>@.\t=é"), max_size=60)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    fields=st.lists(
        st.tuples(
            st.sampled_from(["To", "Subject", "List-Id", "X-Other", "subject ", "Date", "FROM"]),
            st.lists(_VALUE, min_size=1, max_size=3),  # continuation lines: a folded field
        ),
        max_size=8,
    ),
    body=st.text(alphabet=st.sampled_from("ab \t.\r\n"), max_size=40),
)
def test_the_fast_signer_writes_what_dkimpy_writes_for_any_crlf_header_block(fields, body):
    """``DkimSigner._sign_crlf`` (hand-written for speed) against ``dkimpy.sign`` on header blocks
    of every shape: repeated and missing fields, folded values, tabs and runs of spaces, a name
    with white space before its colon, odd bodies.  Byte for byte the same header, or the same
    refusal; and ``dkim.verify`` accepts what it signs."""
    from tidings.campaigns.dkim import SIGNED_HEADERS, DkimSigner, dns_record

    pem = _key_pem()
    signer = DkimSigner("example.co.uk", "news2026", pem)
    lines = [b"From: News <news@example.co.uk>"]
    for name, (first, *rest) in fields:
        lines.append(f"{name}:{first}".encode())
        lines += [b" " + part.encode() for part in rest]
    crlf_body = body.replace("\r", "").replace("\n", "\r\n").encode()
    message = b"\r\n".join(lines) + b"\r\n\r\n" + crlf_body
    present = {line.split(b":", 1)[0].lower().rstrip() for line in lines if line[:1] != b" "}
    include = [h for h in SIGNED_HEADERS if h in present] + [
        h for h in SIGNED_HEADERS if h not in (b"to", b"date") and h in present
    ]
    with unittest.mock.patch.object(dkimpy.time, "time", lambda: 1_700_000_000.0):
        fast = signer._sign_crlf(message, message.find(b"\r\n\r\n"), SIGNED_HEADERS)
        try:
            whole = dkimpy.sign(
                message,
                signer.selector,
                signer.domain,
                pem,
                include_headers=include,
                canonicalize=(b"relaxed", b"simple"),
            )
        except dkimpy.MessageFormatError:  # "subject :": not a header dkimpy parses
            assert fast is None
            return
    assert fast == whole
    if sum(line[:5].lower() == b"from:" for line in lines) > 1:
        return  # dkimpy refuses to verify a message with two From fields, whoever signed it
    name, value = dns_record("example.co.uk", "news2026", pem)
    lookup = {f"{name}.".encode(): value.encode(), name.encode(): value.encode()}
    assert dkimpy.verify(fast + message, dnsfunc=lambda q, timeout=5: lookup.get(q))


@functools.cache
def _key_pem() -> bytes:
    from tidings.campaigns.dkim import _generate_rsa_pem

    return _generate_rsa_pem(2048)


def test_a_signer_that_has_signed_still_goes_to_builder_processes(keys):
    """The signer is shared by a worker's one-off messages and its campaigns' recipes, which are
    pickled for the builder processes: having signed (and loaded its OpenSSL key) must not stop
    it from being sent, and the copy signs alike."""
    import pickle

    from tidings.campaigns.dkim import signer_for

    _name, lookup = dns_from(keygen("example.co.uk"))
    signer = signer_for("news@example.co.uk")
    message = b"From: news@example.co.uk\r\nSubject: Hi\r\n\r\nHello.\r\n"
    signer.sign(message, crlf=True)
    copy = pickle.loads(pickle.dumps(signer))  # noqa: S301 - our own object, pickled here
    assert dkimpy.verify(copy.sign(message, crlf=True) + message, dnsfunc=lookup)
