"""Email addresses: one normal form for storage, uniqueness and suppression hashes."""

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


def normalise_email(raw: str) -> str:
    """The stored form of an address: trimmed, NFC, domain lower-cased (IDN kept as Unicode).

    Raises InvalidEmail.  No DNS look-up is made.
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
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc).replace(text, "the address")) from None


def email_key(email: str) -> str:
    """What makes two addresses the same person's: the normal form, case-folded."""
    return email.casefold()


def email_hmac(email: str) -> str:
    """Keyed hash of an address, for suppression entries that keep nobody's address in clear."""
    key = settings.TIDINGS_SUPPRESSION_KEY.encode("utf-8")
    return hmac.new(key, email_key(email).encode("utf-8"), hashlib.sha256).hexdigest()


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()
