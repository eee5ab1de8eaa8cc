"""Email addresses: one normal form for storage, one key for "the same address".

Three things used to decide whether two addresses are one: the contacts' unique index on
SQL ``lower(email)`` (SQLite's lower() folds ASCII only, PostgreSQL's the database's locale),
``email_key`` (Python's casefold) behind the suppression HMAC, and Django's ``iexact``.  They
disagreed on non-ASCII letters (``zoë@`` / ``ZOË@``: two contacts on SQLite, one on PostgreSQL)
and on ``ß`` (casefold makes it ``ss``; lower() keeps it).  Now ``email_key`` is the only rule:
the suppression HMAC hashes it, and ``Contact.email_key`` stores it, unique, computed here in
Python so both databases agree (README, "People, lists and consent": Addresses).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

from django.conf import settings
from email_validator import EmailNotValidError, validate_email


class InvalidEmail(ValueError):
    """The message says why, without repeating the address (it may be personal data)."""


# Plain ASCII addresses are most of every list.  email-validator is exact but costs ~22 µs an
# address; this strict pattern accepts only what the library would accept unchanged (lower-cased
# domain aside; a domain with a punycode label is sent on, as the library writes it in Unicode),
# and anything it does not match goes to the library.  Measured in bench/.
_PLAIN = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


# RFC 5321 4.5.3.1: 64 octets before the @, 255 in a domain (254 in an address as a path allows),
# 63 in a domain label.  For an internationalised (SMTPUTF8, RFC 6531) address the limits are
# octets of its UTF-8 form.  email-validator checks the address's and the labels' lengths, but
# the local part's only in its strict mode, and then in characters: that let a 65-character
# local part in through every path (imports, API, forms).
LOCAL_PART_MAX_OCTETS = 64


def _check_local_part(local: str) -> None:
    size = len(local.encode("utf-8"))
    if size > LOCAL_PART_MAX_OCTETS:
        raise InvalidEmail(
            f"The part before the @-sign is {size} bytes long; the most an address may have "
            f"is {LOCAL_PART_MAX_OCTETS} (RFC 5321)."
        )


def normalise_email(raw: str) -> str:
    """The stored form of an address: trimmed, NFC, domain lower-cased (IDN kept as Unicode).

    This is the one validator for every way an address comes in (imports, API, public and
    operator forms, CLI): internationalised local parts (``jörg@bücher.example``) are accepted
    everywhere, and the RFC 5321 lengths are enforced everywhere (local part at most 64 octets,
    domain labels 63, the whole address 254).  Raises InvalidEmail, whose message never repeats
    the address.  No DNS look-up is made.
    """
    text = raw.strip()
    if not text.isascii():  # ASCII is its own NFC: most addresses skip the call
        text = unicodedata.normalize("NFC", text)
    if len(text) <= 254 and _PLAIN.match(text):
        local, _, domain = text.rpartition("@")
        domain = domain.lower()
        # An IDN domain written in its ASCII form ("xn--bcher-kva.example") is the library's:
        # it stores the Unicode form, so both spellings of one mailbox are one address (and
        # one suppression hash).
        if len(local) <= 64 and "xn--" not in domain:
            return f"{local}@{domain}"
    try:
        normal = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        message = str(exc).replace(text, "the address")
        if "periods cannot be separated by so many characters" in message:
            # The library's words for a domain label over 63 octets.
            message = (
                "A part of the domain after the @-sign is too long: each part between dots may "
                "have at most 63 characters (RFC 1035). " + message
            )
        raise InvalidEmail(message) from None
    _check_local_part(normal.rpartition("@")[0])
    return normal


def email_key(email: str) -> str:
    """What makes two addresses the same person's: the normal form, case-folded.

    The one rule for "same address", everywhere: the contacts' unique ``email_key`` column,
    every look-up of a contact by address (``Contact.objects.with_email``), imports and the
    suppression HMAC.  Full Unicode case folding, so ``ZOË@`` is ``zoë@`` on SQLite as on
    PostgreSQL, and ``straße@`` is ``strasse@``.

    ß and ss: casefold makes them one, though strictly that is not a case difference.  We keep
    it, because the suppression list has always hashed this key and its entries are HMACs that
    cannot be recomputed: a rule that told ß from ss would leave every stored suppression of a
    ß address unmatched, and the person would be mailed again.  So one rule for both, at the
    price that two people at one domain whose local parts differ only by ß/ss would be one
    contact: the safer mistake for a list that must never mail someone who left it.

    Never change this function's output for any address: stored suppression HMACs and stored
    contact keys (audience migration 0011) depend on it.
    """
    return email.casefold()


def email_hmac(email: str) -> str:
    """Keyed hash of an address, for suppression entries that keep nobody's address in clear."""
    key = settings.TIDINGS_SUPPRESSION_KEY.encode("utf-8")
    return hmac.new(key, email_key(email).encode("utf-8"), hashlib.sha256).hexdigest()


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()
