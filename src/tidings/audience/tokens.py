"""Signed links in emails: confirm a sign-up, open the preference centre, unsubscribe.

A token is a payload of internal ids, signed with SECRET_KEY (and SECRET_KEY_FALLBACKS, so a key
rotation does not break links already sent) and a salt per purpose, so a token made for one purpose
is refused by the others.  Payloads never hold an address or a name: a link forwarded, logged by a
proxy or kept in a browser history names nobody.

Lifetimes:
- confirm: ``TIDINGS_CONFIRM_DAYS`` (default 7).  A stale confirmation proves little about who
  holds the mailbox now.
- preferences: ``TIDINGS_PREFERENCES_DAYS`` (default 365).  An expired link offers to email a
  fresh one.
- unsubscribe: never expires.  The law (PECR reg. 22, the GDPR's "as easy to withdraw as to give")
  and RFC 8058 expect the link in a years-old email to keep working, so these tokens carry no
  timestamp at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT_CONFIRM = "tidings.audience.confirm"
SALT_PREFERENCES = "tidings.audience.preferences"
SALT_UNSUBSCRIBE = "tidings.audience.unsubscribe"

ALL_LISTS = "all"


class BadToken(Exception):
    """The token was not made by us (or was altered, or made for another purpose)."""


class ExpiredToken(BadToken):
    """A genuine token whose time is up.  ``payload`` is what it said, for a helpful page."""

    def __init__(self, payload: Any) -> None:
        super().__init__("the link has expired")
        self.payload = payload


def confirm_days() -> int:
    return int(getattr(settings, "TIDINGS_CONFIRM_DAYS", 7))


def preferences_days() -> int:
    return int(getattr(settings, "TIDINGS_PREFERENCES_DAYS", 365))


def _loads(token: str, salt: str, max_age: timedelta) -> Any:
    try:
        return signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        # The signature is good (it is checked before the age), so the payload is ours.
        raise ExpiredToken(signing.loads(token, salt=salt)) from None
    except signing.BadSignature:
        raise BadToken("the link is not valid") from None


# --- confirming a sign-up ---------------------------------------------------------------------
@dataclass(frozen=True)
class ConfirmRequest:
    """What a confirmation link confirms: a contact, the lists and channels they ticked, the form
    and the exact wording they saw (so the ledger records the words of the sign-up, even if the
    form was edited before the click)."""

    contact_id: int
    list_ids: tuple[int, ...]
    form_id: int | None = None
    wording_id: int | None = None
    channels: tuple[str, ...] = ()
    # The preference page's other changes waiting for this click (``PendingPreferences``): an
    # id, never the new details themselves (personal data stays out of links).
    pending_id: int | None = None


def make_confirm_token(request: ConfirmRequest) -> str:
    payload = {
        "c": request.contact_id,
        "l": list(request.list_ids),
        "f": request.form_id,
        "w": request.wording_id,
        "ch": list(request.channels),
    }
    if request.pending_id is not None:
        payload["p"] = request.pending_id
    return signing.dumps(payload, salt=SALT_CONFIRM, compress=True)


def _confirm_request(payload: Any) -> ConfirmRequest:
    try:
        return ConfirmRequest(
            contact_id=int(payload["c"]),
            list_ids=tuple(int(i) for i in payload["l"]),
            form_id=int(payload["f"]) if payload.get("f") is not None else None,
            wording_id=int(payload["w"]) if payload.get("w") is not None else None,
            channels=tuple(str(c) for c in payload.get("ch", ())),
            pending_id=int(payload["p"]) if payload.get("p") is not None else None,
        )
    except (KeyError, TypeError, ValueError):
        raise BadToken("the link is not valid") from None


def read_confirm_token(token: str) -> ConfirmRequest:
    """The request a confirmation link stands for.  Raises ExpiredToken (whose ``payload`` is a
    ConfirmRequest) or BadToken."""
    try:
        payload = _loads(token, SALT_CONFIRM, timedelta(days=confirm_days()))
    except ExpiredToken as exc:
        raise ExpiredToken(_confirm_request(exc.payload)) from None
    return _confirm_request(payload)


# --- the preference centre --------------------------------------------------------------------
def make_preferences_token(contact_id: int) -> str:
    return signing.dumps({"c": contact_id}, salt=SALT_PREFERENCES)


def read_preferences_token(token: str) -> int:
    """The contact id.  Raises ExpiredToken or BadToken."""
    payload = _loads(token, SALT_PREFERENCES, timedelta(days=preferences_days()))
    try:
        return int(payload["c"])
    except (KeyError, TypeError, ValueError):
        raise BadToken("the link is not valid") from None


# --- unsubscribing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class UnsubscribeRequest:
    contact_id: int
    list_id: int | None  # None: every list ("all")
    delivery_id: int | None = None  # the campaign delivery the link came in, when known


def make_unsubscribe_token(
    contact_id: int, list_id: int | None = None, delivery_id: int | None = None
) -> str:
    payload: dict[str, Any] = {"c": contact_id, "l": ALL_LISTS if list_id is None else list_id}
    if delivery_id is not None:
        payload["d"] = delivery_id
    # A plain Signer: no timestamp, so the link never expires (see the module's docstring).
    return signing.Signer(salt=SALT_UNSUBSCRIBE).sign_object(payload)


def read_unsubscribe_token(token: str) -> UnsubscribeRequest:
    try:
        payload = signing.Signer(salt=SALT_UNSUBSCRIBE).unsign_object(token)
        list_ref = payload["l"]
        return UnsubscribeRequest(
            contact_id=int(payload["c"]),
            list_id=None if list_ref == ALL_LISTS else int(list_ref),
            delivery_id=int(payload["d"]) if payload.get("d") is not None else None,
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadToken("the link is not valid") from None


# --- absolute links for emails ----------------------------------------------------------------
def absolute_url(path: str) -> str:
    """``path`` on this installation's public address (settings.TIDINGS_BASE_URL)."""
    return f"{settings.TIDINGS_BASE_URL.rstrip('/')}{path}"


def confirm_url(request: ConfirmRequest) -> str:
    return absolute_url(reverse("public:confirm", args=[make_confirm_token(request)]))


def preferences_url(contact) -> str:
    """The contact's personal preference centre (no login; the link is the key)."""
    return absolute_url(reverse("public:preferences", args=[make_preferences_token(contact.pk)]))


def unsubscribe_url(contact, mailing_list=None, delivery_id: int | None = None) -> str:
    """The one-click unsubscribe link: from ``mailing_list``, or from everything when None."""
    token = make_unsubscribe_token(
        contact.pk, mailing_list.pk if mailing_list is not None else None, delivery_id
    )
    return absolute_url(reverse("public:unsubscribe", args=[token]))


def unsubscribe_mailto_address(from_header: str = "") -> str:
    """The address of the List-Unsubscribe mailto for a message from ``from_header`` (default:
    the default From): ``TIDINGS_UNSUBSCRIBE_MAILTO``, or else ``unsubscribe@`` the From's domain.

    "" when the From has no real domain (``newsletter@localhost``, the default when
    ``TIDINGS_FROM_EMAIL`` is unset): no mailto is better than one nobody receives; the https
    one-click link is what mailbox providers use.
    """
    from email.utils import parseaddr

    from django.utils.encoding import punycode

    configured = getattr(settings, "TIDINGS_UNSUBSCRIBE_MAILTO", "")
    address = configured or parseaddr(from_header or settings.DEFAULT_FROM_EMAIL)[1]
    local, _, domain = address.rpartition("@")
    domain = domain.strip().rstrip(".").lower()
    if not domain.isascii():
        # An internationalised domain in its ASCII form (a header is ASCII), as the campaign
        # engine's Message-ID and List-Id have it (``campaigns.messages.ascii_domain``).
        try:
            domain = punycode(domain)
        except UnicodeError:
            return configured
    if configured:
        return f"{local}@{domain}"
    if "." not in domain or domain.endswith((".localhost", ".local", ".invalid", ".test")):
        return ""
    return f"unsubscribe@{domain}"


def list_unsubscribe_header(url: str, mailto: str) -> str:
    """The List-Unsubscribe value: the https link, and the mailto (token in its subject) when
    there is a mailto address."""
    if not mailto:
        return f"<{url}>"
    token = url.rstrip("/").rpartition("/")[2]
    return f"<{url}>, <mailto:{mailto}?subject={quote('unsubscribe ' + token)}>"


def list_unsubscribe_headers(
    contact, mailing_list=None, delivery_id: int | None = None, *, from_header: str = ""
) -> dict[str, str]:
    """The RFC 2369 + RFC 8058 headers for a message to ``contact`` from ``mailing_list``, sent
    from ``from_header`` (default: the default From).

    The https link unsubscribes at once on a POST of ``List-Unsubscribe=One-Click`` (what Gmail and
    Yahoo's unsubscribe buttons send); the mailto is the fallback for clients that only mail.  The
    token rides in the mailto's subject so a mailbox handler can act on it.
    """
    url = unsubscribe_url(contact, mailing_list, delivery_id)
    return {
        "List-Unsubscribe": list_unsubscribe_header(url, unsubscribe_mailto_address(from_header)),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
