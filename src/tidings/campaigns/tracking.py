"""Open and click tracking: signed tokens, the machine-or-person rules, and the ingest rows.

A tracking URL carries ONE opaque token: ``base64url(delivery id · campaign id · link index ·
HMAC-SHA256 truncated to 96 bits)`` — no address, contact id or list name.  The campaign id is
inside so a click resolves its link without a database query (the campaign's link table is
cached); the link index ``OPEN`` (65535) marks the open pixel.  Any change to a token fails its
MAC and the endpoint answers with a 404 page.

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
import re
import struct
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings

OPEN = 0xFFFF  # the link index of the open pixel
SCANNER_SECONDS = 10
BURST_LINKS = 3
BURST_SECONDS = 2.0

_PAYLOAD = struct.Struct(">QIH")  # delivery id, campaign id, link index
_MAC_BYTES = 12
_TOKEN_BYTES = _PAYLOAD.size + _MAC_BYTES


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(b"tidings-tracking:" + secret.encode()).digest()


def _mac_prototype():
    return hmac.new(_key(settings.SECRET_KEY), digestmod=hashlib.sha256)


def make_token(delivery_id: int, campaign_id: int, link: int = OPEN) -> str:
    """The signed token for one message's pixel (``link=OPEN``) or one of its links."""
    payload = _PAYLOAD.pack(delivery_id, campaign_id, link)
    mac = _mac_prototype()
    mac.update(payload)
    return base64.urlsafe_b64encode(payload + mac.digest()[:_MAC_BYTES]).rstrip(b"=").decode()


class TokenSigner:
    """``make_token`` for one campaign, with the keyed HMAC state made once (the per-message
    cost is one ``copy()`` + ``update`` per link: a few microseconds)."""

    def __init__(self, campaign_id: int) -> None:
        self.campaign_id = campaign_id
        self._mac = _mac_prototype()

    def token(self, delivery_id: int, link: int = OPEN) -> str:
        payload = _PAYLOAD.pack(delivery_id, self.campaign_id, link)
        mac = self._mac.copy()
        mac.update(payload)
        return base64.urlsafe_b64encode(payload + mac.digest()[:_MAC_BYTES]).rstrip(b"=").decode()


def read_token(token: str) -> tuple[int, int, int] | None:
    """(delivery id, campaign id, link index) of a valid token; None for anything else."""
    if len(token) != 35:  # 26 bytes in unpadded base64url
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=")
    except ValueError:
        return None
    if len(raw) != _TOKEN_BYTES:
        return None
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    expected = _mac_prototype()
    expected.update(payload)
    if not hmac.compare_digest(mac, expected.digest()[:_MAC_BYTES]):
        return None
    return _PAYLOAD.unpack(payload)


# --- machine or person ---------------------------------------------------------------------------
_PROXY = re.compile(r"GoogleImageProxy|ggpht\.com|YahooMailProxy", re.I)
_SCANNER = re.compile(
    r"bot\b|crawler|spider|scanner|preview|barracuda|mimecast|proofpoint|safelinks|"
    r"python-requests|python-urllib|aiohttp|httpx|curl/|wget/|go-http-client|java/|okhttp|"
    r"libwww|headlesschrome|phantomjs",
    re.I,
)


def is_machine_request(method: str, user_agent: str) -> bool:
    """Rules 1–3 of the module docstring: a privacy proxy, a HEAD request or a scanner."""
    if method == "HEAD":
        return True
    agent = user_agent.strip()
    if agent in ("", "Mozilla/5.0"):  # Apple MPP's proxy sends the bare token; no agent: a tool
        return True
    return bool(_PROXY.search(agent) or _SCANNER.search(agent))


def classify_batch(events: Sequence, sent_at: dict[int, datetime | None]) -> list:
    """Rules 4–5 of the module docstring, applied to a batch of ``events.NewEvent``."""
    from .events import EventKind

    soon = timedelta(seconds=SCANNER_SECONDS)
    out = []
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


# --- what the endpoints hand to the ingest buffer --------------------------------------------
def submit_event(delivery_id: int, link: int, *, machine: bool) -> None:
    """Queue one open (``link == OPEN``) or click for the ``"tracking"`` sink; no DB write."""
    from tidings.web import ingest

    if link == OPEN:
        row = {"d": delivery_id, "k": "open", "l": None, "m": machine, "t": time.time()}
    else:
        row = {"d": delivery_id, "k": "click", "l": link, "m": machine, "t": time.time()}
    ingest.submit("tracking", row)
