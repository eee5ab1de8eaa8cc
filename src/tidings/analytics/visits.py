"""From one request of the tracking script (or pixel) to one page-view row, or to a refusal.

Everything here is a plain function of the request's parts, testable without HTTP.  What is kept
(see models.PageView): the page's host and path (the query string goes, except the ``utm_*``
campaign parameters), the referring host, browser family and major version, OS family, device
class, and the day's visitor hash.  The user agent string and the IP address are used only for
the parsing and the hash, in memory, and never stored or logged.

Refusals, in the order they are checked: a site we do not count, a bot, a page the browser
loads ahead without showing it (``Sec-Purpose: prefetch``, ``Purpose: prefetch``, ``X-Moz:
prefetch``: prerendered by speculation rules, or prefetched), an operator's own visit,
a visitor who signals refusal (Global Privacy Control or Do Not Track), and, when the policy makes
statistics consent-based, a visitor without the banner's consent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

from ua_parser import parse as parse_user_agent

from tidings.lib.text import strip_format_characters
from tidings.policy import Policy
from tidings.policy.schema import CONSENT_COOKIE

from .consent import banner_texts, banner_version, parse_consent

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
DONT_COUNT_COOKIE = "tidings_dont_count"  # set from the operator UI on operators' browsers

# Automated clients ua-parser does not already call "Spider": tools, headless browsers, previews.
_BOT_FAMILIES = {
    "curl",
    "Wget",
    "Python Requests",
    "Python-urllib",
    "Go-http-client",
    "HeadlessChrome",
    "PhantomJS",
    "Apache-HttpClient",
    "okhttp",
    "Java",
}
_BOT_WORDS = re.compile(
    r"bot\b|crawl|spider|slurp|headless|preview|monitor|lighthouse|scan|fetch|http-?client|"
    r"archiver|feed|python|curl|wget",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Agent:
    browser: str
    browser_version: str
    os: str
    device: str  # desktop | mobile | tablet
    bot: bool


@lru_cache(maxsize=4096)
def parse_agent(user_agent: str) -> Agent:
    """Browser, OS and device class of a user agent; ``bot`` for anything automated.

    Cached: a site's visitors share a few hundred user agents, and parsing one takes ~0.4 ms.
    The cache holds user-agent strings in this process's memory only.
    """
    if not user_agent.strip():
        return Agent("", "", "", "", bot=True)
    result = parse_user_agent(user_agent)
    ua = result.user_agent
    os_family = result.os.family if result.os else ""
    device = result.device.family if result.device else ""
    browser = ua.family if ua else "Other"
    bot = (
        device == "Spider"
        or browser in _BOT_FAMILIES
        or bool(_BOT_WORDS.search(user_agent))
        or (browser == "Other" and not os_family)
    )
    if device == "iPad" or "Tablet" in (result.device.brand or "" if result.device else ""):
        kind = "tablet"
    elif "Mobi" in user_agent or device == "iPhone":
        kind = "mobile"
    elif os_family == "Android":
        kind = "tablet"  # Android without "Mobile" in its agent is a tablet (Google's rule)
    else:
        kind = "desktop"
    return Agent(
        browser=browser[:50],
        browser_version=(ua.major or "")[:10] if ua else "",
        os=(os_family if os_family != "Other" else "")[:50],
        device=kind,
        bot=bot,
    )


# Control characters (NUL, line breaks, DEL, C1) decoded from %00, %0A... in an address: never
# part of a real page's name, and PostgreSQL refuses NUL in text, which made the batch of page
# views the row was in fail on every retry (the ingest buffer keeps failed rows): one request
# with %00 in its address stopped the statistics.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    # And no invisible format characters (lib/text.py): a path or campaign name the dashboard
    # shows must read as it is stored, not "/\u202eevil" shown as "/live".
    return strip_format_characters(_CONTROL.sub("", text))


# An email address in a page's path or campaign parameters (a mailing tool that puts the
# subscriber's address in ``utm_term``, a page such as /unsubscribe/ada@example.com): statistics
# that identify nobody must not keep it.  Any name@host counts, dotted or not (ada@localhost,
# an intranet's ada@mail): a page path with an "@" between two names is rarer than an address.
_EMAIL = re.compile(r"[^\s/?#&=@]+@[^\s/?#&=@]+")
EMAIL_PLACEHOLDER = "(email)"
# A JSON Web Token (a sign-in or password-reset link's bearer credential, in a path or in
# utm_content): whoever holds it can act as the person.  Recognised by its shape alone (the
# base64 of '{"' begins both parts), so no page name is ever mistaken for one.  Other random
# tokens cannot be told from names reliably (tried: product names such as "iPhone15ProMaxCase"
# look as random as a short token), so a site whose paths carry secrets should not run the
# snippet on those pages.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
JWT_PLACEHOLDER = "(token)"
_DECODE_ROUNDS = 3  # %2540 is an "@" encoded twice: a link passed through a redirector or two


def _fully_unquoted(text: str) -> str:
    # Decoded until nothing changes (at most a few rounds): an address encoded twice
    # (ada%2540example.com) is still an address once a browser or a redirect decodes it.
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _without_emails(text: str) -> str:
    """``text`` decoded, with email addresses and secrets replaced by placeholders."""
    text = _EMAIL.sub(EMAIL_PLACEHOLDER, _fully_unquoted(text))
    return _JWT.sub(JWT_PLACEHOLDER, text)


@dataclass(frozen=True)
class Page:
    site: str
    path: str
    utm: dict[str, str]


def parse_page(url: str) -> Page | None:
    """Host, path and utm_* parameters of the visited page's address; None if it is not one."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    path = _printable(_without_emails(parts.path or "/"))[:500] or "/"
    utm = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if key in UTM_KEYS and key not in utm:
            utm[key] = _printable(_without_emails(value)).strip()[:100]
    site = _printable(parts.hostname).lower().removeprefix("www.")
    return Page(site=site, path=path, utm=utm) if site else None


def referrer_host(referrer: str, site: str) -> str:
    """The referring host, or "" for none, an unusable one, or the site itself (internal)."""
    if not referrer:
        return ""
    try:
        host = _printable(urlsplit(referrer.strip()).hostname or "").lower().removeprefix("www.")
    except ValueError:
        return ""
    return "" if host == site else host[:253]


@lru_cache(maxsize=8)
def _statistics_rules(policy: _Identity) -> tuple[bool, tuple[str, ...], str]:
    # Per policy, not per request (policies are immutable, hashed by identity here).
    purposes = tuple(key for key, p in policy.purposes.items() if p.record == "page_view")
    needs = any(key in purposes for key in policy.consent_purposes_on_website())
    return needs, purposes, banner_version(banner_texts(policy.policy))


def consent_required(policy: Policy) -> bool:
    """Whether the policy keeps website statistics only with the visitor's consent."""
    return _statistics_rules(_Identity(policy))[0]


def statistics_purposes(policy: Policy) -> list[str]:
    """The purposes whose records are page views (the example has one: "analytics")."""
    return list(_statistics_rules(_Identity(policy))[1])


class _Identity:
    """A policy as a cache key by identity (its pydantic model holds unhashable dicts)."""

    __slots__ = ("policy",)

    def __init__(self, policy: Policy):
        self.policy = policy

    def __hash__(self) -> int:
        return id(self.policy)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.policy is self.policy

    @property
    def purposes(self):
        return self.policy.purposes

    def consent_purposes_on_website(self) -> list[str]:
        return self.policy.consent_purposes_on_website()


@dataclass(frozen=True)
class Visit:
    """What a request tells us, before we decide; the strings live only in memory."""

    url: str
    referrer: str
    user_agent: str
    ip: str
    at: datetime
    cookies: dict[str, str]
    gpc: bool  # Sec-GPC: 1
    dnt: bool  # DNT: 1
    operator: bool  # a signed-in staff session came with the request
    consent_value: str = ""  # the consent cookie as the script copied it (cross-site setups)
    prefetch: bool = False  # Sec-Purpose / Purpose: prefetch (a page loaded ahead, unseen)


class Refused(Exception):
    """Not counted; ``reason`` is for tests and counters, never shown to the visitor."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def page_view_row(visit: Visit, policy: Policy, sites: frozenset[str], hash_visitor) -> dict:
    """The row to store for ``visit``, or ``Refused``.  ``hash_visitor(site, ip, ua)`` is
    salts.visitor_hash (passed in so this stays a pure function)."""
    page = parse_page(visit.url)
    if page is None:
        raise Refused("not a page address")
    if sites and page.site not in sites:
        raise Refused("site not counted")
    agent = parse_agent(visit.user_agent)
    if agent.bot:
        raise Refused("bot")
    if visit.prefetch:
        raise Refused("prefetch or prerender")
    if visit.operator or visit.cookies.get(DONT_COUNT_COOKIE):
        raise Refused("operator")
    if visit.gpc or visit.dnt:
        raise Refused("refused by the browser (GPC/DNT)")
    needs_consent, purposes, version = _statistics_rules(_Identity(policy))
    if needs_consent:
        # An answer to an earlier banner (the policy changed what it says) counts for nothing.
        choice = parse_consent(visit.cookies.get(CONSENT_COOKIE) or visit.consent_value, version)
        if not any(choice.get(key) for key in purposes):
            raise Refused("no consent")
    return {
        "created": visit.at,
        "site": page.site,
        "path": page.path,
        **{key: page.utm.get(key, "") for key in UTM_KEYS},
        "referrer": referrer_host(visit.referrer, page.site),
        "browser": agent.browser,
        "browser_version": agent.browser_version,
        "os": agent.os,
        "device": agent.device,
        "visitor": hash_visitor(page.site, visit.ip, visit.user_agent) if visit.ip else "",
    }
