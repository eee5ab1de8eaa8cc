"""Open and click tracking: signed tokens, the machine-or-person rules, and the ingest rows.

A tracking URL carries ONE opaque token: ``base64url(delivery id · campaign id · link index ·
MAC)``, the MAC a 96-bit keyed BLAKE2b (a MAC by design, one C call: a few microseconds a message
for every link) under a key derived from SECRET_KEY — no address, contact id or list name.  The
campaign id is inside so a click resolves its link without a database query (the campaign's link
table is cached); the link index ``OPEN`` (65535) marks the open pixel.  Any change to a token
fails its MAC and the endpoint answers with a 404 page.

Machine or person — the rules (``machine=True`` events are shown apart and never count as
people):

At request time (``is_machine_request``):
1. **Privacy proxies that fetch images** — Apple Mail Privacy Protection (the pixel is fetched
   by Apple's proxy, whose user agent is a bare ``Mozilla/5.0`` with no platform or engine) and
   Gmail's image proxy (``GoogleImageProxy`` / ``ggpht.com``), Yahoo's (``YahooMailProxy``).
2. **HEAD requests** — a browser following a link sends GET; a link checker sends HEAD.
3. **Known scanner and bot agents** — security gateways (Barracuda, Mimecast, Proofpoint,
   Microsoft's link protection), HTTP libraries (python-requests, curl, Go's client, Java) and
   anything calling itself a bot, crawler, spider, scanner or preview.
   The user agent is read for this decision only; it is never stored.

At write time, on each batch (``classify_batch``):
4. **Too soon after delivery** — an open or click within ``SCANNER_SECONDS`` (10 s) of the
   message's ``sent_at``: people do not read that fast; gateways scan on arrival.
5. **Every link at once** — ``BURST_LINKS`` (3) or more different links of one message clicked
   within ``BURST_SECONDS`` (2 s): a scanner following every link.  All of that message's clicks
   in the burst are machine clicks.  (A burst split across two flushes is judged per flush.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings

OPEN = 0xFFFF  # the link index of the open pixel
# The smallest transparent GIF: 1x1, one palette entry; and the headers the endpoints send.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
}
SCANNER_SECONDS = 10
BURST_LINKS = 3
BURST_SECONDS = 2.0

_PAYLOAD = struct.Struct(">QIH")  # delivery id, campaign id, link index
_MAC_BYTES = 12
_TOKEN_BYTES = _PAYLOAD.size + _MAC_BYTES


@lru_cache(maxsize=4)
def _key_for(secret: str) -> bytes:
    return hashlib.sha256(b"tidings-tracking:" + secret.encode()).digest()


def _key() -> bytes:
    return _key_for(settings.SECRET_KEY)


def _mac(key: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(payload, key=key, digest_size=_MAC_BYTES).digest()


def make_token(delivery_id: int, campaign_id: int, link: int = OPEN) -> str:
    """The signed token for one message's pixel (``link=OPEN``) or one of its links."""
    payload = _PAYLOAD.pack(delivery_id, campaign_id, link)
    return base64.urlsafe_b64encode(payload + _mac(_key(), payload)).rstrip(b"=").decode()


class TokenSigner:
    """``make_token`` for one campaign, the key looked up once."""

    def __init__(self, campaign_id: int) -> None:
        self.campaign_id = campaign_id
        self._key = _key()

    def token(self, delivery_id: int, link: int = OPEN) -> str:
        payload = _PAYLOAD.pack(delivery_id, self.campaign_id, link)
        return base64.urlsafe_b64encode(payload + _mac(self._key, payload)).rstrip(b"=").decode()


def read_token(token: str) -> tuple[int, int, int] | None:
    """(delivery id, campaign id, link index) of a valid token; None for anything else."""
    if len(token) != 35:  # 26 bytes in unpadded base64url
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=")
    except ValueError:
        return None
    if len(raw) != _TOKEN_BYTES or base64.urlsafe_b64encode(raw)[:35].decode() != token:
        return None  # only the one canonical spelling: unused low bits changed is a forgery too
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if not hmac.compare_digest(mac, _mac(_key(), payload)):
        return None
    return _PAYLOAD.unpack(payload)


# --- machine or person ---------------------------------------------------------------------------
_PROXY = re.compile(r"googleimageproxy|ggpht\.com|yahoomailproxy")
_SCANNER = re.compile(
    r"bot\b|crawler|spider|scanner|preview|barracuda|mimecast|proofpoint|safelinks|"
    r"python-requests|python-urllib|aiohttp|httpx|curl/|wget/|go-http-client|java/|okhttp|"
    r"libwww|headlesschrome|phantomjs"
)


def is_machine_request(method: str, user_agent: str) -> bool:
    """Rules 1–3 of the module docstring: a privacy proxy, a HEAD request or a scanner."""
    if method == "HEAD":
        return True
    agent = user_agent.strip()
    if agent in ("", "Mozilla/5.0"):  # Apple MPP's proxy sends the bare token; no agent: a tool
        return True
    agent = agent.lower()
    return bool(_PROXY.search(agent) or _SCANNER.search(agent))


def classify_batch(events: Sequence, sent_at: dict[int, datetime | None]) -> list:
    """Rules 4–5 of the module docstring, applied to a batch of ``events.NewEvent``."""
    from .events import EventKind

    soon = timedelta(seconds=SCANNER_SECONDS)
    out: list[Any] = []
    clicks: dict[int, list[int]] = defaultdict(list)  # delivery -> positions of its clicks
    for e in events:
        if e.kind in (EventKind.OPEN, EventKind.CLICK) and not e.machine:
            sent = sent_at.get(e.delivery_id)
            if sent is not None and e.at - sent < soon:
                e = replace(e, machine=True)
        if e.kind == EventKind.CLICK:
            clicks[e.delivery_id].append(len(out))
        out.append(e)
    for positions in clicks.values():
        if len(positions) < BURST_LINKS:
            continue
        positions.sort(key=lambda i: out[i].at)
        start = 0
        for end in range(len(positions)):
            while (
                out[positions[end]].at - out[positions[start]].at
            ).total_seconds() > BURST_SECONDS:
                start += 1
            window = positions[start : end + 1]
            if len({out[i].link for i in window}) >= BURST_LINKS:
                for i in window:
                    out[i] = replace(out[i], machine=True)
    return out


# --- rewriting a message -------------------------------------------------------------------------
MAX_LINKS = 1000  # links per campaign that are tracked; any further ones are left as they are
_STATIC_HREF = re.compile(r'href="(https?://[^"{}<>\s]+)"', re.I)
_PIXEL = (
    '<img src="{url}" width="1" height="1" alt="" '
    'style="display:block;border:0;width:1px;height:1px;overflow:hidden">'
)


def _own_personal_page(url: str) -> bool:
    """Links to our own preference centre, unsubscribe or sign-up pages are never rewritten."""
    from urllib.parse import urlsplit

    from django.urls import Resolver404, resolve

    from tidings.audience.tokens import absolute_url

    base = urlsplit(absolute_url("/"))
    parts = urlsplit(url)
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
        return False
    try:
        return resolve(parts.path).namespace == "public"
    except Resolver404:
        return False


def index_links(table: Any, make: Callable[[int, str], Any], html_source: str) -> dict[str, int]:
    """{address as it stands in the HTML: index} for ``html_source``'s static links, ``table``
    (a campaign's or a journey's link rows) extended by ``make(index, url)`` rows for addresses it
    has not seen.  Indexes never change once given: tokens already mailed keep pointing at the
    same address; two processes adding the same address at once keep the first row."""
    raw_links = static_links(html_source)
    known = dict(table.values_list("url", "index"))
    fresh = list(
        dict.fromkeys(html.unescape(raw) for raw in raw_links if html.unescape(raw) not in known)
    )
    if fresh:
        start = max(known.values(), default=-1) + 1
        table.model.objects.bulk_create(
            [make(start + i, url) for i, url in enumerate(fresh) if start + i < OPEN],
            ignore_conflicts=True,
        )
        known = dict(table.values_list("url", "index"))
    return {raw: known[html.unescape(raw)] for raw in raw_links if html.unescape(raw) in known}


def static_links(html_source: str) -> list[str]:
    """The addresses a compiled message links to that are the same for everyone, in order, as
    they stand in the HTML (``&amp;`` and all).

    Links made by the template (``{{ unsubscribe_url }}``, personalised addresses) are not among
    them, so they are never rewritten; nor are links to our own personal pages.
    """
    seen: dict[str, None] = {}
    for match in _STATIC_HREF.finditer(html_source):
        raw = match.group(1)
        if raw not in seen and not _own_personal_page(html.unescape(raw)):
            seen[raw] = None
    return list(seen)[:MAX_LINKS]


def tracking_prefixes() -> tuple[str, str]:
    """The open pixel's and the click redirect's addresses up to their token.  A builder
    process gets them in its campaign's recipe: resolving them itself would load every URL
    pattern of the site (and the views they import) into each builder, a second or two of CPU
    time and tens of MB per process, for two strings."""
    from django.urls import reverse

    from tidings.audience.tokens import absolute_url

    return (
        absolute_url(reverse("track:open", args=["T"]))[:-1],
        absolute_url(reverse("track:click", args=["T"]))[:-1],
    )


class LinkTracker:
    """Adds the open pixel and rewrites a campaign's links for one message at a time.

    Made once per campaign (``for_campaign`` stores the link table); ``apply`` costs one regular
    expression pass over the HTML and one HMAC per link (measured in ``bench/render.py``).  Only
    the HTML part is tracked: the plain-text part keeps the real addresses.
    """

    def __init__(
        self, campaign_id: int, links: dict[str, int], prefixes: tuple[str, str] | None = None
    ) -> None:
        """``links``: {address as it stands in the HTML: index in the link table};
        ``prefixes``: the open and click addresses up to their token (``tracking_prefixes``),
        when the caller has them already."""
        self.campaign_id = campaign_id
        self.links = links
        self.signer = TokenSigner(campaign_id)
        if not prefixes or not all(prefixes):
            prefixes = tracking_prefixes()
        self.open_prefix, self.click_prefix = prefixes

    @classmethod
    def for_campaign(cls, campaign, html_source: str) -> LinkTracker:
        """The tracker for ``campaign``, its link table stored (indexes never change once given:
        tokens already mailed keep pointing at the same address)."""
        from .models import TrackedLink

        links = index_links(
            TrackedLink.objects.filter(campaign=campaign),
            lambda index, url: TrackedLink(campaign=campaign, index=index, url=url),
            html_source,
        )
        return cls(campaign.pk, links)

    def apply(self, document: str, delivery_id: int) -> str:
        """``html`` with its campaign links going through ``/t/c/<token>`` and the pixel added.

        Scans with ``str.find`` for ``href="http`` (the sanitiser writes attributes in lower
        case, double-quoted): a regular expression over 10 KB costs ten times more."""
        links, signer, prefix = self.links, self.signer, self.click_prefix
        if links:
            parts: list[str] = []
            find = document.find
            done = 0
            at = find('href="http')
            while at != -1:
                start = at + 6
                end = find('"', start)
                if end == -1:
                    break
                index = links.get(document[start:end])
                if index is not None:
                    parts += (document[done:start], prefix, signer.token(delivery_id, index))
                    done = end
                at = find('href="http', end)
            if parts:
                parts.append(document[done:])
                document = "".join(parts)
        pixel = _PIXEL.format(url=self.open_prefix + signer.token(delivery_id, OPEN))
        end = document.rfind("</body>")
        if end == -1:
            return document + pixel
        return document[:end] + pixel + document[end:]


_link_cache: dict[int, dict[int, str]] = {}


def cached_link_url(campaign_id: int, index: int) -> str | None:
    """``link_url`` without the database: None when the campaign's links are not cached yet."""
    table = _link_cache.get(campaign_id)
    return table.get(index) if table is not None else None


def link_url(campaign_id: int, index: int) -> str | None:
    """The address of link ``index`` of the campaign, or None; cached per process (a stored link
    never changes).  A campaign whose links are not cached costs one query."""
    from .models import TrackedLink

    table = _link_cache.get(campaign_id)
    if table is None or index not in table:
        table = dict(
            TrackedLink.objects.filter(campaign_id=campaign_id).values_list("index", "url")
        )
        if len(_link_cache) >= 256:
            _link_cache.clear()
        _link_cache[campaign_id] = table
    return table.get(index)


def forget_links() -> None:
    """Empty this process's link cache (links are read again from the database when needed)."""
    _link_cache.clear()


# --- what the endpoints hand to the ingest buffer --------------------------------------------
def submit_event(delivery_id: int, link: int, *, machine: bool) -> None:
    """Queue one open (``link == OPEN``) or click for the ``"tracking"`` sink; no DB write."""
    from tidings.lib import ingest

    if link == OPEN:
        row = {"d": delivery_id, "k": "open", "l": None, "m": machine, "t": time.time()}
    else:
        row = {"d": delivery_id, "k": "click", "l": link, "m": machine, "t": time.time()}
    ingest.submit("tracking", row)
