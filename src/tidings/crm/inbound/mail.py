"""Reading one inbound mail: is it mail, who sent it, to which address, is it automatic, what
did the person write (without the quoted history and signature), and which files came with it.

- Automatic mail (RFC 3834 ``Auto-Submitted``, ``Precedence: bulk/junk/list/auto_reply``,
  ``X-Autoreply``/``X-Autorespond``, mailing-list headers, our own ``X-Loop``, a null
  ``Return-Path``, Exchange's ``X-Auto-Response-Suppress: All``, an out-of-office reply's
  subject) never opens a ticket and is never answered, so two auto-responders cannot
  keep a loop going; delivery reports (bounces: ``multipart/report``, ``X-Failed-Recipients``,
  MAILER-DAEMON) go to the bounce processing that knows them.
- The text is the plain-text part; with only HTML, the HTML is first sanitised with nh3 (which
  drops scripts, styles and quoted ``blockquote`` history with their content, and every
  attribute but links) and then turned into text: the sender's HTML itself is never kept or
  shown.  Quoted history and signatures are stripped with mail-parser-reply (maintained,
  multi-language) rather than a hand-written set of patterns.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import email
import email.header
import email.message
import email.policy
import mimetypes
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

import nh3
from mailparser_reply.constants import MAIL_LANGUAGES, OUTLOOK_MAIL_SEPARATOR
from mailparser_reply.parser import EmailMessage as EmailMessage_

from tidings.lib import mime
from tidings.lib.text import strip_format_characters

# Languages whose reply headers ("On ... wrote:", "Am ... schrieb:") are recognised.
REPLY_LANGUAGES = ["en", "de", "fr", "it", "es", "nl", "pl", "sv"]
_RECIPIENT_HEADERS = (
    "To",
    "Cc",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "Resent-To",
)
_AUTOMATIC_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autoreply-From")
_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post")
_REPORT_SENDERS = ("mailer-daemon", "postmaster")
# Exchange stamps its out-of-office replies (and its other generated mail) with
# ``X-Auto-Response-Suppress: All`` and nothing else that says what they are: no
# Auto-Submitted, often no In-Reply-To.  A mail asking for no automatic answer of one of these
# kinds gets none, whatever it is.
_SUPPRESS_ALL = "all"
_SUPPRESSED_ANSWERS = {"all", "oof", "autoreply"}
# The subjects out-of-office replies are given by Outlook/Exchange, Gmail, Apple Mail and the
# rest, in the languages of REPLY_LANGUAGES (and Portuguese): matched only at the start of the
# subject and followed by a colon, as those programs write them ("Automatic reply: Courses",
# "Réponse automatique : Cours", "Abwesenheitsnotiz: Kurse").  A person's own subject does not
# start like that.
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(?:"
    r"auto(?:matic)?[- ]?(?:reply|response)|out of (?:the )?office(?: reply| auto-?reply)?"
    r"|r[ée]ponse automatique|absence du bureau|abwesenheitsnotiz|automatische antwort"
    r"|abwesenheit|respuesta autom[áa]tica|fuera de la oficina|risposta automatica"
    r"|fuori sede|automatisch antwoord|afwezig(?:heidsbericht)?|automatyczna odpowied[źz]"
    r"|autosvar|fr[åa]nvaro|resposta autom[áa]tica"
    r")\s*:",
    re.IGNORECASE,
)
# RFC 3834 3.2: a responder "SHOULD NOT" answer mail from these (mailing-list and system
# addresses, and those that say they read nothing).
_NO_ANSWER_LOCAL = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster|listserv|majordomo"
    r"|owner-.*|.*-(?:request|owner|bounces?)|no[-_.]?reply[-_.+].*|bounces?[-_.+].*)$",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
# What ``automatic`` says of a mail known as automatic only by its subject: a person may write
# such a subject too, so processing keeps that mail for an operator rather than dropping it.
BY_SUBJECT = "an out-of-office reply's subject"


class NotMail(ValueError):
    """The input is not a mail message (empty, binary, no headers).  Never personal data."""


class Unreadable(ValueError):
    """A mail, but one that cannot be read safely (MIME nested thousands deep, thousands of
    parts): kept unprocessed with this reason, which names no one."""


# Where a mail's headers end: the first empty line.
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
# The headers that say who sent a mail (and where replies go): see ``headers_with_nul``.
SENDER_HEADERS = ("From", "Sender", "Reply-To", "Return-Path")
_HEADER_NAME = re.compile(rb"[!-9;-~]{1,76}")  # RFC 5322 ftext, at most a line's worth


def _head(raw: bytes) -> tuple[bytes, bytes]:
    """(the header section, the rest from its empty line on); all of it with no empty line."""
    end = _END_OF_HEADERS.search(raw)
    return (raw[: end.start()], raw[end.start() :]) if end else (raw, b"")


def headers_with_nul(raw: bytes) -> list[str]:
    """The names of the header fields with a NUL byte in them, in order, each once (canonical
    case: "Subject", "X-Mailer"); a name that is no header name is left out.  Names only: they
    say nothing of anyone, and processing notes them for the operator."""
    head = _head(raw)[0]
    if b"\x00" not in head:
        return []
    names: dict[str, None] = {}
    name = ""
    for line in re.split(rb"\r?\n", head):
        if line[:1] not in (b" ", b"\t"):  # not a folded field's continuation: a new field
            found = _HEADER_NAME.fullmatch(line.partition(b":")[0].replace(b"\x00", b"").strip())
            name = found[0].decode("ascii").title() if found else ""
        if b"\x00" in line and name:
            names[name] = None
    return list(names)


def read(raw: bytes) -> EmailMessage:
    """The mail in ``raw``.  NUL bytes are dropped wherever they are: RFC 5322 forbids them,
    but mail programs write them (a C program's string terminator after a Subject, a stray
    byte in a text), and a customer's mail refused as "not a mail message" was a bounce to
    them and no enquiry.  RFC 5322's obsolete syntax (4.1) even lists NUL among the characters
    of an unstructured header's text, which a receiver is to accept though no sender may
    write it.  What is not mail (a file: binary, no From) is still refused; where a NUL sat in
    who sent it (``SENDER_HEADERS``) processing keeps the mail for an operator instead."""
    if not raw or not raw.strip():
        raise NotMail("the input is empty")
    head, rest = _head(raw)
    binary = b"\x00" in head
    if binary:
        raw = head.replace(b"\x00", b"") + rest
    try:
        message = mime.parse(raw, policy=email.policy.default)
        has_sender = bool(message.get("From") or message.get("Sender"))
    except mime.TooComplex as exc:
        raise Unreadable(str(exc)) from None
    except RecursionError:  # a header's value parser on a pathological value
        raise Unreadable("its headers are nested too deeply to read") from None
    if not message.keys() or not has_sender:
        if binary:  # a file with NUL bytes (an image, a document): no mail headers at all
            raise NotMail("the input is binary, not a mail message")
        raise NotMail("the input has no mail headers (no From)")
    return message  # type: ignore[return-value]  # policy.default makes EmailMessage objects


def header(message: EmailMessage, name: str) -> str:
    """A header's value as text ("" if missing or unreadable).  A value whose bytes are not in
    the charset it names (Windows-1252 in an "=?utf-8?…?=" word, an unknown charset, raw 8-bit
    bytes) is read with the same fallbacks as a body (see ``_FALLBACK_CHARSETS``): the parser
    alone gave "Gr\ufffd\ufffde aus M\ufffdnchen" for a subject and a person's name."""
    try:
        value = message.get(name)
    except Exception:  # a header the parser cannot make sense of counts as absent
        return ""
    if value is None:
        return ""
    text = str(value)
    if "\ufffd" in text:
        text = _redecoded(message, name) or text
    return " ".join(text.replace("\x00", "").split())  # an encoded word may hold a NUL


def _redecoded(message: EmailMessage, name: str) -> str:
    raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), None)
    if not isinstance(raw, str):
        return ""
    try:
        parts = email.header.decode_header(raw)
    except Exception:  # a malformed encoded word: the parser's reading stands
        return ""
    text = []
    for chunk, charset in parts:
        if isinstance(chunk, str):  # no encoded word: raw 8-bit bytes, kept as surrogates
            chunk = chunk.encode("ascii", "surrogateescape")
        elif charset is None:  # the text between encoded words
            chunk = chunk.decode("raw-unicode-escape").encode("ascii", "surrogateescape")
        text.append(_decoded(chunk, charset or "us-ascii"))
    return "".join(text)


def _decoded(data: bytes, declared: str) -> str:
    for charset in (declared, *_FALLBACK_CHARSETS):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeError):
            continue
    return ""  # not reached: Latin-1 decodes every byte


def sender(message: EmailMessage) -> tuple[str, str]:
    """(display name, address) of who wrote it ("" when there is none)."""
    name, address = parseaddr(header(message, "From") or header(message, "Sender"))
    return name.strip(), address.strip() if "@" in address else ""


def recipients(message: EmailMessage) -> list[str]:
    values = [header(message, h) for h in _RECIPIENT_HEADERS]
    return [address for _, address in getaddresses([v for v in values if v]) if address]


def message_ids(value: str) -> list[str]:
    """The Message-IDs in an In-Reply-To or References header, in order."""
    return _MESSAGE_ID.findall(value)[:50]


def is_report(message: EmailMessage) -> bool:
    """A delivery status notification or feedback report (a bounce, a complaint)."""
    if message.get_content_type() == "multipart/report" or header(message, "X-Failed-Recipients"):
        return True
    local = sender(message)[1].partition("@")[0].lower()
    return local in _REPORT_SENDERS


def automatic(message: EmailMessage, *, own_address: str = "") -> str:
    """Why the mail is automatic (an auto-reply, list mail, our own mail looping), or ""."""
    auto = header(message, "Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto.split(';')[0].strip()}"
    for name in _AUTOREPLY_HEADERS:
        if header(message, name):
            return f"{name} header"
    if _SUPPRESS_ALL in _suppressed(message):
        return "X-Auto-Response-Suppress: All (Exchange's out-of-office and system mail)"
    precedence = (header(message, "Precedence") or header(message, "X-Precedence")).lower()
    if precedence in _AUTOMATIC_PRECEDENCE:
        return f"Precedence: {precedence}"
    loop = header(message, "X-Loop").lower()
    if loop and own_address and own_address.lower() in loop:
        return "X-Loop: our own mail came back"
    for name in _LIST_HEADERS:
        if header(message, name):
            return f"mailing-list mail ({name})"
    if (
        message.get("Return-Path") is not None
        and parseaddr(header(message, "Return-Path"))[1] == ""
    ):
        return "null Return-Path (<>)"
    # Last: any header that says the mail is automatic is the better reason (processing keeps
    # mail known only by this for an operator).
    if _AUTOREPLY_SUBJECT.match(header(message, "Subject")):
        return BY_SUBJECT
    return ""


def _suppressed(message: EmailMessage) -> set[str]:
    value = header(message, "X-Auto-Response-Suppress").lower()
    return {word.strip() for word in value.split(",") if word.strip()}


def no_automatic_answer(message: EmailMessage) -> str:
    """Why the mail (a person's, not automatic) must get no automatic answer (acknowledgement,
    "we did not keep your files"), or "": its sender asks for none (``X-Auto-Response-Suppress``
    with OOF or AutoReply), or its address is one nobody reads (``noreply@``, ``…-request@``,
    ``owner-…@``: RFC 3834 3.2).  It is still opened and answered by an operator."""
    if _suppressed(message) & _SUPPRESSED_ANSWERS:
        return "its sender asks for no automatic reply (X-Auto-Response-Suppress)"
    local = sender(message)[1].rpartition("@")[0]
    if local and _NO_ANSWER_LOCAL.match(local):
        return "its sender's address is not one that reads replies"
    return ""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Content:
    text: str  # what the person wrote this time: no quoted history, no signature
    attachments: list[Attachment]


# A table cell's paragraphs (Outlook writes <td><p class=MsoNormal>…</p></td>) made each cell
# a paragraph of its own: a cell's content is one line of its row.
_CELL = re.compile(r"(<t[dh]\b[^>]*>)(.*?)(</t[dh]\s*>)", re.IGNORECASE | re.DOTALL)
_CELL_BLOCK = re.compile(r"</?(?:p|div)\b[^>]*>", re.IGNORECASE)


def _html_text(html: str) -> str:
    from tidings.campaigns.rendering import html_to_text

    html = _CELL.sub(lambda m: m[1] + _CELL_BLOCK.sub(" ", m[2]).strip() + m[3], html)

    cleaned = nh3.clean(
        html,
        # Tables, headings and preformatted text too: Outlook's mail is laid out in them, and
        # without them a table's cells ran together ("NameSeatsGrace10").
        tags={
            *("p", "br", "div", "span", "b", "strong", "i", "em", "a", "ul", "ol", "li"),
            *("table", "thead", "tbody", "tfoot", "tr", "td", "th", "pre", "code"),
            *("h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt", "dd", "hr"),
        },
        # white-space alone of its style: Apple Mail's tabs and other preformatted text keep
        # their spacing (html_to_text's keep_spacing), as does indentation in &nbsp;s.
        attributes={"a": {"href"}, **{tag: {"style"} for tag in ("div", "span", "p", "code")}},
        filter_style_properties={"white-space"},
        clean_content_tags={"script", "style", "title", "head", "blockquote"},
    )
    text = html_to_text(cleaned, keep_spacing=True).replace("\xa0", " ")
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+\n", "\n", text))


# When a part's bytes are not in the charset it names (or it names one nobody knows, or
# none), these are tried in turn: UTF-8, then Windows-1252, the usual charset of mail that says
# nothing or the wrong thing (what browsers assume too); Latin-1 reads any byte.  The stdlib
# would give U+FFFD for every such letter ("Gr\ufffd\ufffde aus M\ufffdnchen").
_FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")


def _part_text(part: EmailMessage) -> str:
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
        broken = _broken_base64_text(part)
        if broken is not None:
            return broken
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, AssertionError):  # a broken transfer encoding
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
        cut = _cut_in_a_letter(payload, charset)
        if cut is not None:
            return cut
    return _decoded(payload, charset)


def _cut_in_a_letter(data: bytes, charset: str) -> str | None:
    """The text of a UTF-8 part whose base64 was cut on a four-character boundary, inside a
    letter's bytes (valid base64: ``_broken_base64_text`` sees nothing wrong): what decodes,
    then ``UNDECODABLE``.  None for anything else.  Read in the fallbacks' Windows-1252, the
    whole text became "GrÃ¼ÃŸe aus MÃ¼nchen".  Only when what comes before decodes as UTF-8
    with a letter outside ASCII in it: Windows-1252 mail labelled UTF-8 whose one accented
    letter ends it ("café") is read by the fallbacks as before."""
    try:
        if codecs.lookup(charset).name != "utf-8":
            return None
        data.decode("utf-8")
        return None
    except LookupError:
        return None
    except UnicodeDecodeError as error:
        if error.reason != "unexpected end of data" or error.end != len(data):
            return None
        text = data[: error.start].decode("utf-8")
    if text.isascii():
        return None
    return f"{text.rstrip()}\n\n{UNDECODABLE}"


# Said in place of what could not be decoded of a text (see ``_broken_base64_text``).
UNDECODABLE = "[The rest of this message could not be decoded.]"
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]*")
_BASE64_PADDING = re.compile(r"=*")


def _matched(pattern: re.Pattern[str], text: str, at: int) -> str:
    found = pattern.match(text, at)
    return found[0] if found else ""


def _broken_base64_text(part: EmailMessage) -> str | None:
    """The text of a base64 part whose base64 is invalid (None when it is valid): what decodes
    cleanly up to the first fault, then ``UNDECODABLE``.  The stdlib skips characters that are
    not base64 and decodes a wrong length anyway, and its bytes, no longer UTF-8, were then read
    as Windows-1252: the person's words ended in "'¢ÖÚ…" garbage."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    chars = "".join(payload.split())
    try:
        base64.b64decode(chars, validate=True)
        return None
    except ValueError:  # binascii.Error: invalid characters, padding or length
        pass
    data = []
    at, lost = 0, True
    while run := _matched(_BASE64_RUN, chars, at):  # each run ended by its "=" padding, if any
        whole, left = len(run) - len(run) % 4, len(run) % 4
        data.append(base64.b64decode(run[:whole]))
        if left > 1:  # two or three characters more: one or two more bytes
            data.append(base64.b64decode(run[whole:] + "=" * (4 - left)))
        at += len(run)
        padding = len(_matched(_BASE64_PADDING, chars, at))
        need = (4 - left) % 4
        if left == 1 or padding < need or (padding > need and at + padding < len(chars)):
            break  # a wrong length: what follows is not where it should be
        at += padding
    else:  # all of it, in runs each padded as it should be ("SGVsbG8=V29ybGQ="): nothing lost
        lost = at < len(chars)
    if not lost:
        return _decoded(b"".join(data), part.get_content_charset() or "us-ascii")
    charset = part.get_content_charset() or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    decoded = b"".join(data)
    try:
        text = decoded.decode(charset)
    except UnicodeDecodeError as error:  # garbage's bytes: only the text before them is kept
        text = decoded[: error.start].decode(charset, errors="replace")
    return (
        f"{text.rstrip()}\n\n{UNDECODABLE}"
        if text.strip()
        else UNDECODABLE.replace("The rest of this", "This")
    )


# Mobile mail programs' sign-off lines that mail-parser-reply (0.4, its "sent_from" patterns)
# does not know: it has "Envoyé depuis" but not iOS's French "Envoyé de mon iPhone", Dutch
# "Verzonden vanaf mijn" but not iOS's "Verstuurd vanaf mijn iPhone", English "Sent from my" and
# "Get Outlook for" but not Outlook mobile's "Sent from Outlook for Android", "Gesendet von" but
# not iOS's German word order "Von meinem iPad gesendet", Polish "Wysłano z" but not "Wysłane z
# mojego iPhone'a".  Matched only as the whole last line of the reply (a short one, naming a
# device or app), after the library has done its work, so a sentence that mentions an iPhone
# is never cut.
_MOBILE_SIGN_OFF = re.compile(
    r"\n\s*(?:"
    r"Envoy[ée] de mon .{1,30}"
    r"|Verstuurd (?:vanaf|met) mijn .{1,30}"
    r"|(?:Sent from|Get) Outlook(?: for (?:Android|iOS|Mac))?"
    r"|Von meine[mr] .{1,30} gesendet"
    r"|Wysłane z (?:mojego|mojej) .{1,30}"
    r")\s*$",
    re.IGNORECASE,
)


def strip_reply(text: str, *, subject: str = "") -> str:
    """The newest reply in ``text``: quoted history, reply headers and signature removed.

    An inline forward ("---------- Forwarded message ---------", "Begin forwarded message:")
    is what the person sends us to read: its text stays, after what they wrote above it.  So
    does Outlook's, which has no such line (its forward's "From: … Sent: …" block is the one
    its replies quote under): a ``subject`` starting "FW:" (or "Fwd:", "TR:", "WG:", "RV:" …)
    says which it is."""
    text = _trimmed(text.replace("\r\n", "\n"))
    if not text:
        return ""
    forward = _FORWARD_MARKER.search(text)
    if forward is None and _FORWARD_SUBJECT.match(subject):
        forward = _first_header_block(text)
    if forward and not _reader(text).HEADER_REGEX.search(text[: forward.start()]):
        note = _newest_reply(text[: forward.start()]) if forward.start() else ""
        forwarded = text[forward.start() :].strip()
        return f"{note}\n\n{forwarded}" if note else forwarded
    return _newest_reply(text)


# The line mail programs put above a forwarded mail's headers (Gmail, Thunderbird, Apple Mail,
# Outlook on the web), in the reply languages.  Outlook's "-----Original Message-----" is a
# reply's quoted history, not a forward: the library knows it.
_FORWARD_MARKER = re.compile(
    r"^[ \t]*(?:-{3,}[ \t]*(?:forwarded message|weitergeleitete nachricht"
    r"|message transf[ée]r[ée]|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht"
    r"|wiadomo[śs][ćc] przekazana|vidarebefordrat meddelande)[ \t]*-{3,}"
    r"|begin forwarded message:|anfang der weitergeleiteten nachricht:"
    r"|d[ée]but du message r[ée]exp[ée]di[ée][ \t]*:)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


# What mail programs put before a forwarded mail's subject: English "Fwd:"/"FW:", French
# "TR:", German "WG:", Spanish "RV:", Italian "I:", Dutch "Doorst:", Swedish "VB:", Polish "PD:".
_FORWARD_SUBJECT = re.compile(
    r"\s*(?:\[\s*)?(?:fwd?|tr|wg|rv|i|doorst|vb|vs|pd)\s*:", re.IGNORECASE
)


# The line Outlook puts above the block: underscores, or "-----Original Message-----" (in its
# language: "-----Message d'origine-----", "-----Ursprüngliche Nachricht-----").
_RULE_ABOVE = re.compile(r"^[ \t]*(?:_{8,}|-{3,}[^\n]{0,40}?-{3,})[ \t]*\n\Z", re.M)


def _first_header_block(text: str) -> re.Match[str] | None:
    """Where the first quoted header block ("From: … Sent: …", in the reply languages) starts
    in ``text``, with the line Outlook puts above it; None without one."""
    for line in re.finditer(r"^.*$", text, re.MULTILINE):
        if _FROM_LABEL.match(line[0]):
            block = _reader(text).HEADER_REGEX.search(text[line.start() :])
            if block is not None and block.start() == 0:
                rule = _RULE_ABOVE.search(text[: line.start()])
                return re.compile(r".+", re.S).search(text, rule.start() if rule else line.start())
            return None
    return None


# The library lists each language's header words in one order: From, Sent, To, Subject, Date…
# ("Von|Gesendet|An|Betreff|Datum|Cc").
_FROM, _SUBJECT = 0, 3


def _header_labels(position: int | None = None) -> re.Pattern[str]:
    """A line that starts like one of a quoted header block's ("From:", "Von:", "Envoyé :"),
    in the reply languages, with the library's own words; with ``position``, like its line of
    that kind only (``_FROM``: "From:", "De :"; ``_SUBJECT``: "Subject:", "Betreff:")."""
    labels = []
    for language in REPLY_LANGUAGES:
        found = re.search(r"\[\* \]\*\(\?:(.+?)\):", MAIL_LANGUAGES[language]["from_header"])
        if found:
            labels.append(found[1] if position is None else found[1].split("|")[position])
    return re.compile(r"^(?:> ?)*[* ]*(?:" + "|".join(labels) + r"):", re.IGNORECASE)


_HEADER_LABEL = _header_labels()
_FROM_LABEL = _header_labels(_FROM)
_SUBJECT_LABEL = _header_labels(_SUBJECT)
# What a real quoted header block has on its header lines and a person's two lines do not: an
# address ("From: Peter Jones <peter@…>", "[mailto:…]"), or a date with its time ("Sent:
# Monday, 7 December 2026 10:00", "Date: Mon, 7 Dec 2026 at 10:00").
_ADDRESS = re.compile(r"\S@\S")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_TIME = re.compile(r"\b\d{1,2}[:.]\d\d\b")


def _is_quoted_header_block(block: str) -> bool:
    """Whether the library's header block is a quoted mail's: with an address on it, or, as
    Outlook writes one with no address ("From: Peter Jones / Sent: Monday, 7 December 2026
    10:00 / To: Support / Subject: Trip"), with its sender's line, its subject's line and a date
    and time.  A person's own "From: Leeds / Date: 3 May 2027, 10:30 / To: York" has a date and
    time too, and was cut there with everything after it, as if it were quoted history."""
    lines = block.strip("\n").split("\n")
    if not _HEADER_LABEL.match(lines[0]):
        return True  # not a header block: "On … wrote:", "-----Original Message-----"
    if len(lines) > 1 and not _HEADER_LABEL.match(lines[-1]):
        lines = lines[:-1]  # the line the library takes after the block, whatever it is
    head = "\n".join(lines)
    if _ADDRESS.search(head):
        return True
    return bool(
        _YEAR.search(head)
        and _TIME.search(head)
        and any(_FROM_LABEL.match(line) for line in lines)
        and any(_SUBJECT_LABEL.match(line) for line in lines)
    )


class _QuotedHeaders:
    """The library's header pattern, but its "From: …/To: …" blocks count only when they are
    a quoted mail's (``_is_quoted_header_block``): a travel enquiry that starts "From: London"
    / "To: Paris" was cut there, as if the rest were quoted history."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern.pattern
        self._regex = pattern

    def _matches(self, text: str) -> Iterator[re.Match[str]]:
        return (m for m in self._regex.finditer(text) if _is_quoted_header_block(m[0]))

    def findall(self, text: str) -> list[tuple[str | Any, ...]]:
        return [m.groups() for m in self._matches(text)]

    def search(self, text: str) -> re.Match[str] | None:
        return next(self._matches(text), None)


# The line above a quoted reply ("Le … a écrit :"), where the library's own pattern misses the
# mail programs' (mail-parser-reply 1.36): its French one refuses any line with a second "le "
# in it, case aside — "Example Support", "Nicole", "Le … Michele Leroy" — a guard meant against
# two "Le"s; its Spanish one wants two spaces before "escribió:"; its Dutch one the name before
# "schreef", where Gmail writes "Op ma 7 dec. 2026 om 10:00 schreef Naam <adres>:" (Apple Mail
# "… heeft Naam <adres> het volgende geschreven:").  All three
# quoted histories stayed in the person's message.  One group each, the attribution, which may
# be wrapped onto a second line (as the library's English and German ones may).
_WROTE_HEADERS = {
    "fr": r"^((?:> ?)*Le\s(?:.+?\s?.+?)\sa\s[ée]crit\s?:)$",
    "es": r"^((?:> ?)*El\s(?:.+?\s?.+?)\sescribi[óo]\s?:)$",
    "nl": (
        r"^((?:> ?)*Op\s(?:.+?\s?.+?)\s?"
        r"(?:schreef(?:\s(?:.+?\s?.+?))?|het\svolgende\sgeschreven)\s?:)$"
    ),
}


class _Reader(EmailMessage_):
    """mail-parser-reply's reader, but a quoted mail's header block ("From: … Sent: …") is two
    lines at least in every language: its Polish one took a single line starting "Data:",
    "Do:", "Od:" or "Temat:" for one (in mail of any language: all are read), and everything
    after "Data: 10 rows, all with a date." was dropped as quoted history.  And the block
    must have an address or a date and time (``_QuotedHeaders``)."""

    _two_line_headers: _QuotedHeaders | None = None

    def _normalize_text(self) -> None:
        # The library's own normalisation (mail-parser-reply 1.36, the latest; its fix, pull
        # request 30, is not released), but for one call: it drops a line of 32+ dashes or
        # underscores after a blank line (Outlook's rule above a quoted reply) with
        # ``re.sub(pattern, repl, text, re.MULTILINE)``, whose fourth argument is ``count``:
        # only the first eight went.  From the ninth on, its signature pattern took the rule
        # for Outlook's and cut the rest of the mail as quoted history (a booking list with a
        # rule per attendee lost the last two and the question under them).  Every such rule
        # goes alike here, as its first eight did (the flag changes nothing in a pattern
        # without ^ or $).
        text = str(self.text).replace("\r\n", "\n")  # type: ignore[has-type]  # the library's
        text = "\n".join(line.strip() for line in text.split("\n"))
        self.text = re.sub(f"([^\n]){OUTLOOK_MAIL_SEPARATOR}", "\\1\n", text)

    def _get_language_regex(self, language: str, regex_key: str) -> str:
        if regex_key == "wrote_header" and language in _WROTE_HEADERS:
            return _WROTE_HEADERS[language]
        return super()._get_language_regex(language, regex_key)

    @property
    def HEADER_REGEX(self) -> _QuotedHeaders:
        if self._two_line_headers is None:
            pattern = super().HEADER_REGEX.pattern.replace(
                r"){1,}(?:\n.*){,1})", r"){2,}(?:\n.*){,1})"
            )
            self._two_line_headers = _QuotedHeaders(
                re.compile(pattern, flags=re.MULTILINE | re.IGNORECASE)
            )
        return self._two_line_headers


def _reader(text: str) -> _Reader:
    # Hyphen lists ("- 10 seats") are text, not a "-Grace" sign-off: the library's default
    # took a list's first line for a signature and dropped the list and all that followed.
    return _Reader(text=text, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True)


def _trimmed(text: str) -> str:
    """``text`` without blank lines before and whitespace after it: its first line keeps its
    indentation (``str.strip`` took a code snippet's or a list's first indent)."""
    return _LEADING_BLANK_LINES.sub("", text).rstrip()


_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")


def _as_written(original: str, normalised: str, body: str, after: int = 0) -> str:
    """``body``, a part of the library's ``normalised`` copy of ``original`` (from ``after``
    on), with its lines as the person wrote them.  The library strips every line before it
    looks for quoted history, so what it gives back had lost the indentation of a code
    snippet, an indented list or a quoted config; only the quoted part is to go.  A copy that
    is more than ``original`` with its lines stripped (the library also drops a line of
    underscores after a blank line) has no line-for-line match: then ``body`` stays as it is."""
    lines = original.split("\n")
    start = normalised.find(body, after)
    if start < 0 or normalised != "\n".join(line.strip() for line in lines):
        return body
    first = normalised.count("\n", 0, start)
    written = []
    for number, line in enumerate(body.split("\n"), start=first):
        whole = lines[number]
        if line == whole.strip():
            written.append(whole.rstrip())
        elif number != first and whole.strip().startswith(line):  # the end of a line cut
            written.append(whole[: len(whole) - len(whole.lstrip())] + line)
        else:
            written.append(line)
    return "\n".join(written)


def _newest_reply(text: str) -> str:
    parsed = _reader(text).read()
    if not parsed.replies:
        return _without_sign_off(text)
    reply = parsed.replies[0]
    after = 0
    if reply.headers and (at := parsed.text.find(reply.headers)) >= 0:
        after = at + len(reply.headers)
    body = reply.full_body  # without the reply header ("On … wrote:", "From: … Sent: …")
    signature = reply.signatures
    for disclaimer in reversed(reply.disclaimers):
        # Only a disclaimer that ends the message: the library's pattern also matches a
        # person's own sentence that starts with "Warning:" or "Hinweis:" and names mail.
        if disclaimer and body.endswith(disclaimer):
            body = body[: -len(disclaimer)].strip()
            if signature.endswith(disclaimer):
                signature = signature[: -len(disclaimer)].strip()
    if signature and _is_sign_off(signature) and body.endswith(signature):
        body = body[: -len(signature)].strip()
    if body:
        return _without_sign_off(_as_written(text, parsed.text, body, after))
    # A message that is all quote (a forward with nothing added): keep what there is.
    if reply.full_body:
        return _as_written(text, parsed.text, reply.full_body, after)
    return text


_SENTENCE_END = (".", "?", "!", ":", ";")


def _is_sign_off(signature: str) -> bool:
    """Whether what the library took for the signature (from a sign-off line to the end) is
    one: a short greeting line ("Best regards,", "Thanks,", "-- ", "Sent from my iPhone") and
    then a few short lines (a name, a title, a telephone number).  Its patterns also match a
    person's sentence at a line's start ("Thanks, that fixed the login.", "Best, if you
    could call…", a path "/var/log/…"), and everything from there to the end was lost."""
    lines = [line.lstrip("> ").strip() for line in signature.splitlines() if line.strip()]
    if not lines:
        return False
    first, rest = lines[0], lines[1:]
    if first in ("--", "__", "-- ", "__ "):  # RFC 3676's delimiter: what follows is a signature
        return True
    if len(first.split()) > 5 or first.endswith(_SENTENCE_END):
        return False
    if first.startswith("/") and not re.fullmatch(r"/\w+", first):
        return False
    return len(rest) <= 10 and all(
        len(line.split()) <= 8 and not line.endswith(("?", "!")) for line in rest
    )


def _without_sign_off(text: str) -> str:
    """``text`` without a mobile mail program's sign-off as its last line (see above); a text
    that is nothing but the sign-off stays as it is."""
    stripped = _trimmed(_MOBILE_SIGN_OFF.sub("", "\n" + text))
    return stripped or text


def content(message: EmailMessage) -> Content:
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        text = _part_text(body)  # type: ignore[arg-type]
        if body.get_content_type() == "text/html":
            text = _html_text(text)
    elif message.get_content_maintype() == "multipart" and not message.is_multipart():
        # "multipart" with no boundary, or one its text never uses (a script's or a broken
        # program's mail): the parser keeps the body whole, as one text, and there is no part
        # to take the text from; it was acknowledged and kept as "(no text)".
        text = _part_text(message)
    if not text.strip():
        # Outlook's "Rich Text" mail (Exchange's, between its own users, forwarded to us) can
        # carry its text only inside its winmail.dat, as compressed RTF: it arrived as "(no text)".
        text = _tnef_text(message)
    subject = header(message, "Subject")
    # Stray NUL bytes (see ``read``) are no text, and PostgreSQL cannot store them in text.
    text = strip_reply(text.replace("\x00", ""), subject=subject)
    if _tnef_cut_short(message):  # after the stripping: the notice is no one's signature
        text = f"{text}\n\n{TNEF_CUT_SHORT}" if text.strip() else TNEF_CUT_SHORT
    return Content(text, list(_attachments(message)))


def _attachments(part: EmailMessage) -> Iterator[Attachment]:
    """The files that came with the mail.  A forwarded mail ("Forward as attachment": a
    message/rfc822 part, attached or inline) is one file, kept or refused whole: its own text
    and attachments are someone else's mail, neither the sender's words nor files of theirs
    (``walk()`` would descend into it, drop it unseen and count its attachments instead)."""
    for child in part.iter_parts():
        if child.get_content_type() == "message/rfc822":
            yield Attachment(
                safe_filename(child.get_filename(), "forwarded message.eml"),
                "message/rfc822",
                _forwarded_bytes(child),  # type: ignore[arg-type]
            )
        elif child.is_multipart():
            yield from _attachments(child)  # type: ignore[arg-type]
        elif child.get_content_type() == "application/ms-tnef":
            data = child.get_payload(decode=True)
            data = data if isinstance(data, bytes) else b""
            try:
                files = _tnef_files(data)
            except _NotTnef:
                files = [(child.get_filename() or "winmail.dat", data)]
            for name, content in files:
                yield Attachment(safe_filename(name, "attachment"), _guess_type(name), content)
        elif child.get_content_disposition() == "attachment":
            data = child.get_payload(decode=True)
            yield Attachment(
                safe_filename(child.get_filename(), "attachment"),
                child.get_content_type()[:100],
                data if isinstance(data, bytes) else b"",
            )


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


_FILENAME_LENGTH = 150


def safe_filename(name: str | None, default: str) -> str:
    """An attachment's name as the sender's mail program gave it, made safe to show and to
    download: no folders ("../../etc/passwd", "C:\\Windows\\evil.bat": the last part only), no
    control characters, no format characters (a right-to-left override made
    "invoice\u202egpj.exe" show as "invoiceexe.jpg"), no leading dots, and at most 150
    characters with its extension kept (a name cut at 200 lost its ".pdf")."""
    text = strip_format_characters(" ".join((name or "").split()))
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    text = re.split(r"[/\\]", text)[-1].strip().lstrip(". ")
    if not text:
        return default
    if len(text) > _FILENAME_LENGTH:
        stem, dot, extension = text.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            text = stem[: _FILENAME_LENGTH - len(extension) - 2].rstrip() + "…." + extension
        else:
            text = text[: _FILENAME_LENGTH - 1] + "…"
    return text


def _forwarded_bytes(part: EmailMessage) -> bytes:
    inner = part.get_payload(0) if part.is_multipart() else None
    if not isinstance(inner, email.message.Message):
        return b""
    try:
        return inner.as_bytes(policy=email.policy.compat32)
    except Exception:  # a forwarded mail too broken to write out again: its bytes are gone
        return b""


# --- winmail.dat ------------------------------------------------------------------------------
# Outlook's "Rich Text" mail sends its files inside one application/ms-tnef part named
# winmail.dat, which no one can open, and sends that part with mail that has no files at all:
# the sender was told "we did not keep the 1 file attached" of a file they never attached.
# The files in it are read out with tnefparse; a winmail.dat with none is no file.  One that
# cannot be read stays what it was, one file.
_TNEF_MAX_FILES = 100


class _NotTnef(ValueError):
    pass


# Said after the text of a mail whose winmail.dat was cut short (``_tnef_cut``).
TNEF_CUT_SHORT = (
    "[The winmail.dat in this mail (Outlook's attachments and rich text) was cut short: what "
    "is shown and kept of it is what could be read, and a file cut short is not kept. Ask its "
    "sender to send it again.]"
)
_TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"  # 0x223E9F78, little-endian
_TNEF_RENDERING = 0x9002  # attAttachRendData: the first attribute of each file


@dataclass(frozen=True)
class _Cut:
    """Where a TNEF stream ends inside an attribute: ``in_file``, inside the attributes of the
    last file tnefparse started (its bytes or its name may be cut: it is not kept)."""

    in_file: bool


def _tnef_cut(data: bytes) -> _Cut | None:
    """Whether a TNEF stream ends inside an attribute (None when it is whole, or no TNEF).

    tnefparse reads a stream cut short without a word, each attribute as far as it goes: a
    file cut short came out as if whole.  Its framing (MS-OXTNEF 2.1.3: a level byte, an id,
    a length, the value and a checksum) says where each attribute should end, walked here as
    tnefparse walks it (objects of at least 12 bytes more)."""
    if not data.startswith(_TNEF_SIGNATURE):
        return None
    if len(data) < 6 + 12:  # no attribute at all
        return _Cut(in_file=False)
    at, files = 6, 0
    while at + 12 < len(data):
        level, name = data[at], int.from_bytes(data[at + 1 : at + 3], "little")
        length = int.from_bytes(data[at + 5 : at + 9], "little") + 11
        files += name == _TNEF_RENDERING
        if at + length > len(data):
            return _Cut(in_file=level == 2 and files > 0)
        at += length
    if at < len(data):  # an attribute's first bytes only: tnefparse leaves them
        name = int.from_bytes(data[at + 1 : at + 3], "little") if len(data) > at + 2 else 0
        # The start of a new file's attributes: nothing of it read, its last file is whole.
        return _Cut(in_file=data[at] == 2 and name != _TNEF_RENDERING and files > 0)
    return None


def _tnef_files(data: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in a TNEF stream read in full (one cut short is left out);
    raises _NotTnef when it is not one."""
    from tnefparse import TNEF

    try:
        tnef = TNEF(data, do_checksum=False)
        files = [(_tnef_name(a), bytes(a.data or b"")) for a in tnef.attachments]
    except Exception as error:  # a parser of hostile bytes: any failure means "unreadable"
        raise _NotTnef(type(error).__name__) from None
    cut = _tnef_cut(data)
    if cut is not None and cut.in_file:
        files = files[:-1]
    if len(files) > _TNEF_MAX_FILES:
        raise _NotTnef("too many files")
    return files


def _tnef_cut_short(message: EmailMessage) -> bool:
    """Whether a winmail.dat of the mail was cut short (see ``_tnef_cut``)."""
    for part in _tnef_parts(message):
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and _tnef_cut(data) is not None:
            return True
    return False


# A winmail.dat's RTF is decompressed only from a winmail.dat of at most this size (compressed
# RTF grows some eight times at most): the text of a mail, not a document.
_TNEF_TEXT_MAX_BYTES = 2 * 1024**2


def _tnef_parts(part: EmailMessage) -> Iterator[EmailMessage]:
    """The winmail.dat parts of the mail (the mail itself, when it is one), not those of a
    forwarded mail inside it."""
    if part.get_content_type() == "application/ms-tnef":
        yield part
    elif part.is_multipart() and part.get_content_type() != "message/rfc822":
        for child in part.iter_parts():
            yield from _tnef_parts(child)  # type: ignore[arg-type]


def _tnef_text(message: EmailMessage) -> str:
    """The text in the mail's winmail.dat: its plain text, else its HTML (sanitised, as an HTML
    part's), else its compressed RTF, decompressed (compressed-rtf) and turned into text
    (striprtf); "" when there is none or it cannot be read."""
    for part in _tnef_parts(message):
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and (text := _tnef_body(data)).strip():
            return text
    return ""


def _tnef_body(data: bytes) -> str:
    from striprtf.striprtf import rtf_to_text
    from tnefparse import TNEF

    try:
        tnef = TNEF(data, do_checksum=False)
        charset = tnef.codepage or "cp1252"
        if tnef.body:
            body = tnef.body
            return _decoded(body, charset) if isinstance(body, bytes) else str(body)
        if tnef.htmlbody:
            html = tnef.htmlbody
            return _html_text(_decoded(html, charset) if isinstance(html, bytes) else str(html))
        if len(data) > _TNEF_TEXT_MAX_BYTES:
            return ""
        rtf = _rtf(tnef, cut=_tnef_cut(data) is not None)
        if not isinstance(rtf, bytes) or not rtf.lstrip().startswith(b"{\\rtf"):
            return ""
        return str(rtf_to_text(_decoded(rtf.rstrip(b"\0"), "cp1252"), errors="ignore"))
    except Exception:  # parsers of hostile bytes: any failure means "no text in it"
        return ""


def _rtf(tnef: Any, *, cut: bool) -> bytes | None:
    """The winmail.dat's RTF, decompressed (compressed-rtf, through tnefparse); of one ``cut``
    short, as much as the bytes that came decompress to: compressed-rtf refuses a stream whose
    CRC (over the whole of it) does not match, which no stream cut short can."""
    try:
        return tnef.rtfbody
    except Exception:
        compressed = tnef._rtfbody  # the bytes tnefparse hands compressed-rtf, as they came
        if not cut or not isinstance(compressed, bytes) or len(compressed) <= 16:
            raise
    import struct

    from compressed_rtf import decompress
    from compressed_rtf.crc32 import crc32

    # Its header (MS-OXRTFCP 2.1.3.1) made to say what came: the size and CRC of the bytes
    # there are.  A stream cut inside a two-byte reference decompresses a byte or two shorter.
    header, body = compressed[:16], compressed[16:]
    for end in range(len(body), max(len(body) - 3, 0), -1):
        part = body[:end]
        fixed = struct.pack("<I", len(part) + 12) + header[4:12] + struct.pack("<I", crc32(part))
        with contextlib.suppress(Exception):  # cut inside a reference: a byte shorter
            return bytes(decompress(fixed + part + b"\0"))
    return None


def _tnef_name(attachment: Any) -> str:
    """The file's long name, else its short one (tnefparse gives either as str or bytes)."""
    name = attachment.long_filename() or attachment.name or ""
    if isinstance(name, bytes):
        name = _decoded(name.split(b"\0")[0], "cp1252")
    return str(name).split("\0")[0]
