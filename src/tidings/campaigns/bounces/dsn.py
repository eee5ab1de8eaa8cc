"""Delivery status notifications, read with flufl.bounce.

flufl.bounce knows RFC 3464 DSNs and the usual non-standard formats (Postfix, Exim, qmail,
Microsoft...).  Its ``all_failures`` gives the addresses that failed for good (a hard bounce: the
RFC 3464 ``Action: failed``, a 5.x.x status) and those that are only delayed (a soft bounce:
``Action: delayed``, 4.x.x).

A recipient the DSN gives up on with a *transient* status (``Action: failed``, ``Status:
4.4.1``: Postfix's "connection timed out" after the queue lifetime, or a mailbox still full
after days of retries) is a soft bounce, not a hard one: the 4 says the address may well be
good (RFC 3463), and one such report must not suppress it for good.  It counts towards the
soft-bounce limit, as the delivery engine's own exhausted 4xx retries never suppress.  So is
one without Status fields (Exim's) that quotes only a 4xx reply or says it stopped retrying
("retry timeout exceeded").

So is a permanent status that says nothing against the address (``base.permanent_but_soft``):
5.2.2 "mailbox full" (Gmail's "552 5.2.2 ... out of storage space": the mailbox takes mail again
once emptied).  A 5.7.x policy block (5.7.1 "likely unsolicited mail", a blocklisted server,
5.7.26 DMARC) is no bounce at all (``base.BLOCKED``): the receiver refused the message or its
sender, not the address, so it neither suppresses nor counts towards the soft-bounce limit.
5.1.1 "user unknown" stays hard.  So is a refusal without an enhanced code in the words of a
policy block ("550 Message rejected as spam"), read in the report's own text, never in the
returned message.

A refusal of our envelope sender (5.1.7 bad sender's address, 5.1.8 sender's domain not found,
"Sender address rejected", Exim's "Sender verify failed", or our relay refusing to relay) is ours
to fix, never the address's (``base.SENDER``): nobody is suppressed, and the campaign's
reputation pause counts it apart and says to fix the sender.

A recipient with an internationalised address (``jörg@bücher.example``) is reported with RFC
6533's ``utf-8`` address type, in a ``message/global-delivery-status`` part or (encoded as
``\\x{F6}``) a ``message/delivery-status`` one; flufl.bounce knows only ``rfc822``, so those are
read here (``utf8_failures``).
"""

from __future__ import annotations

import logging
import re
from email import message_from_string
from email.message import Message

from flufl.bounce import all_failures

from .base import (
    BLOCKED,
    HARD,
    SENDER,
    SOFT,
    Finding,
    diagnostics,
    message_texts,
    permanent_but_soft,
    policy_block,
    refused_by_policy_words,
    refuses_our_sender,
    rows_in,
    status_codes,
)

# flufl.bounce logs every detector it tries at INFO: noise in a worker's log.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)


def parse(message: Message) -> list[Finding]:
    """One finding per failed recipient ([] when the message is not a bounce we understand)."""
    flufl_temporary, flufl_permanent = all_failures(message)
    extra_temporary, extra_permanent = utf8_failures(message)
    temporary = {xtext_decoded(_text(a)) for a in flufl_temporary} | extra_temporary
    permanent = {xtext_decoded(_text(a)) for a in flufl_permanent} | extra_permanent
    texts = message_texts(message)
    rows = rows_in(texts)
    codes = status_codes(texts)
    hard_code = next((c for c in codes if c.startswith("5")), "")
    soft_code = next((c for c in codes if c.startswith("4")), "")
    given = recipient_statuses(message)
    said = diagnostics(message)
    # Bounces without Status fields (Exim's, qmail's) that gave up on a transient failure: a 4xx
    # reply quoted and no 5xx, or the MTA saying it stopped retrying.
    gave_up = not hard_code and (bool(soft_code) or any(_GAVE_UP.search(t) for t in texts))
    findings = []
    for address in sorted(permanent):
        recipient = _text(address)
        status = given.get(recipient.lower(), "")
        if status.startswith("4"):  # gave up after retrying a transient failure
            findings.append(Finding(SOFT, recipient=recipient, rows=rows, detail=status))
        elif not status and gave_up:
            findings.append(Finding(SOFT, recipient=recipient, rows=rows, detail=soft_code))
        elif refuses_our_sender(status or hard_code, said):  # ours to fix, not the address
            detail = status or hard_code or "sender refused"
            findings.append(Finding(SENDER, recipient=recipient, rows=rows, detail=detail))
        elif policy_block(status or hard_code) or refused_by_policy_words(
            status or hard_code, said
        ):  # the message or sender refused, not the address
            detail = status or hard_code or "policy"
            findings.append(Finding(BLOCKED, recipient=recipient, rows=rows, detail=detail))
        elif permanent_but_soft(status or hard_code, texts):  # a full mailbox
            detail = status or hard_code
            findings.append(Finding(SOFT, recipient=recipient, rows=rows, detail=detail))
        else:
            detail = status or hard_code
            findings.append(Finding(HARD, recipient=recipient, rows=rows, detail=detail))
    findings += [
        Finding(SOFT, recipient=_text(address), rows=rows, detail=soft_code)
        for address in sorted(temporary - permanent)
    ]
    return findings


def recipient_statuses(message: Message) -> dict[str, str]:
    """Each recipient's ``Status`` in the report's ``message/delivery-status`` parts (RFC 3464:
    a block of fields per recipient), by lower-cased address."""
    found: dict[str, str] = {}
    for _part_type, block in _status_blocks(message):
        status = str(block.get("Status") or "").strip()
        if not _CODE.match(status):
            continue
        status = status.split()[0]
        if status[1:] == ".0.0":
            # "Undefined": Postfix writes 5.0.0 when the server's reply had no enhanced
            # code ("552 Mailbox full"); one in the reply itself says more.
            quoted = status_codes([" ".join(str(block.get("Diagnostic-Code") or "").split())])
            if quoted and quoted[0][0] == status[0]:
                status = quoted[0]
        # Final-Recipient, and Original-Recipient: the one flufl.bounce names (after an
        # alias, the two differ).
        for field in ("Final-Recipient", "Original-Recipient"):
            _kind, address = _recipient(block, field)
            if address:
                found.setdefault(address.lower(), status)
    return found


def utf8_failures(message: Message) -> tuple[set[str], set[str]]:
    """(delayed, failed) recipients that flufl.bounce cannot read: those of RFC 6533's
    ``utf-8`` address type, and every one in a ``message/global-delivery-status`` part (flufl
    reads only ``message/delivery-status``).  Original-Recipient first, as flufl.bounce does."""
    delayed: set[str] = set()
    failed: set[str] = set()
    for part_type, block in _status_blocks(message):
        action = _header(block, "Action").lower()
        if action.startswith("delayed"):
            into = delayed
        elif action.startswith(("fail", "error")):
            into = failed
        else:
            continue
        named = [_recipient(block, f) for f in ("Original-Recipient", "Final-Recipient")]
        if part_type == "message/delivery-status" and any(
            kind == "rfc822" and address.isascii() for kind, address in named if address
        ):
            continue  # flufl.bounce reported this one
        address = next((a for _, a in named if a), "")
        if address:
            into.add(address)
    return delayed, failed


def _status_blocks(message: Message) -> list[tuple[str, Message]]:
    """(part type, block) for each per-message and per-recipient block of the report's
    delivery-status parts.  The email package parses ``message/delivery-status`` into its
    blocks but leaves RFC 6533's ``message/global-delivery-status`` (UTF-8) as text."""
    found: list[tuple[str, Message]] = []
    for part in message.walk():
        part_type = part.get_content_type()
        if part_type == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list):
                found += [(part_type, b) for b in blocks if isinstance(b, Message)]
        elif part_type == "message/global-delivery-status":
            # The email package reads it as an attached mail: the first block its headers,
            # the other blocks its body (or, when it is not a message/* it knows, all text).
            inner = part.get_payload()
            texts: list[bytes] = []
            if isinstance(inner, list):
                for sub in inner:
                    if isinstance(sub, Message):
                        found.append((part_type, sub))
                        body = sub.get_payload(decode=True)
                        if isinstance(body, bytes):
                            texts.append(body)
            else:
                body = part.get_payload(decode=True)
                if isinstance(body, bytes):
                    texts.append(body)
            for text in texts:
                decoded = text.decode("utf-8", "replace").replace("\r\n", "\n")
                for chunk in re.split(r"\n[ \t]*\n", decoded):
                    if chunk.strip():
                        found.append((part_type, message_from_string(chunk.strip() + "\n")))
    return found


def _header(block: Message, name: str) -> str:
    """A field of a status block as text.  Raw UTF-8 in it (RFC 6533 allows it in a global
    delivery status; some MTAs write it in a plain one) is read as UTF-8, not replaced."""
    for key, value in block.raw_items():
        if key.lower() == name.lower():
            if not isinstance(value, str):
                value = str(value)
            if not value.isascii():
                value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            return " ".join(value.split())
    return ""


def _recipient(block: Message, field: str) -> tuple[str, str]:
    """(address type lower-cased, address) of a Final-/Original-Recipient field, the address
    of type ``utf-8`` decoded (``j\\x{F6}rg@b\\x{FC}cher.example``); ("", "") without one."""
    kind, sep, address = _header(block, field).partition(";")
    if not sep:
        return "", ""
    kind = kind.strip().lower()
    address = address.strip().strip("<>").strip()
    if kind == "utf-8":
        address = _EMBEDDED.sub(_unembed, address)
    elif kind == "rfc822":
        address = xtext_decoded(address)
    return kind, address


def xtext_decoded(address: str) -> str:
    """An ``rfc822`` recipient with RFC 3461's xtext escapes decoded: ``ada+2Btag@example.com``
    is ``ada+tag@example.com``.  The address of an Original-Recipient field is the ORCPT the
    sender gave, which SMTP carries as xtext (Postfix copies it so; some MTAs write
    Final-Recipient so too).  No well-kept library decodes xtext (flufl.bounce, aiosmtpd and
    the email package leave it as written), hence these lines.

    Other MTAs write a plus-address as it is (``ada+2026@``), so a ``+HH`` is decoded only
    where an encoder must have written it (RFC 3461 §4): for "+", "=", or the octets of a
    non-ASCII UTF-8 character.  A ``+HH`` that would decode to a printable ASCII character, a
    space or a control character (which no address in a list holds), or to octets that are no
    UTF-8, is left as written."""
    if "+" not in address:
        return address
    return _XTEXT_RUN.sub(_xtext_run, address)


# A run of consecutive "+HH" escapes (the octets of one UTF-8 character are a run).
_XTEXT_RUN = re.compile(r"(?:\+[0-9A-F]{2})+")


def _xtext_run(match: re.Match[str]) -> str:
    written = match.group(0)
    octets = bytes.fromhex(written.replace("+", ""))
    try:
        text = octets.decode("utf-8")
    except UnicodeDecodeError:
        return written
    if all(c in "+=" or ord(c) > 0x7F for c in text):
        return text
    # Escapes an encoder writes next to other characters' ("+2B" after a literal "+20..."):
    # decode those alone.
    if len(octets) > 1:
        return "".join(_xtext_run(m) for m in _XTEXT_ONE.finditer(written))
    return written


_XTEXT_ONE = re.compile(r"\+[0-9A-F]{2}")


# RFC 6533 section 3: a character embedded as "\x{" 1*6HEXDIG "}" in a utf-8 address.  No
# well-kept library decodes this form (it is not Python's escape syntax), hence the few lines.
_EMBEDDED = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")


def _unembed(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return match.group(0)  # not a character: left as written
    return chr(code)


# Exim: "retry timeout exceeded", "all hosts for 'x' have been failing for a long time (and
# retry time not reached)"; qmail: "I'm not going to try again" follows a 5xx (so it never
# matches alone: only with no 5xx code quoted); Postfix's "delivery temporarily suspended".
_GAVE_UP = re.compile(
    r"retry timeout exceeded|have been failing for a long time|"
    r"delivery temporarily suspended|message expired|too long in queue|"
    r"could not be delivered for \d+ days",
    re.IGNORECASE,
)
_CODE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}\b")


def _text(address: bytes | str) -> str:
    if isinstance(address, bytes):
        return address.decode("utf-8", "replace")
    return str(address)
