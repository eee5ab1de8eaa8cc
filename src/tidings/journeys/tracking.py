"""Open and click tracking of journey mail, consent-aware exactly as campaign mail.

A journey mail is tracked when the policy tracks and the person allows it
(``audience.consent.tracking_allowed``, the campaign engine's rule).  Its HTML gets the open
pixel and its links (the same ones a campaign would rewrite: ``campaigns.tracking.static_links``)
go through ``/t/j/c/<token>``.  A token is ``base64url(enrolment id · step seq · journey id · link
index · MAC)`` under its own key (a journey token never reads as a campaign token nor the other
way round): no address, no contact id.

The endpoints decide machine or person with the campaigns' rules (``is_machine_request``) and
hand the event to the ``"journey_tracking"`` ingest sink; ``write_rows`` applies the write-time
rules (too soon after sending, every link at once: ``campaigns.tracking.classify_batch``) and
stores ``JourneyMailEvent`` rows against the step that sent the mail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import struct
import time
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from tidings.audience.consent import tracked_contact_ids
from tidings.campaigns.events import NewEvent
from tidings.campaigns.tracking import (
    OPEN,
    LinkTracker,
    TokenSigner,
    classify_batch,
    index_links,
)

from .actions import do_click_arrived
from .models import EnrolmentStep, Journey, JourneyLink, JourneyMailEvent

log = logging.getLogger("tidings.journeys.tracking")

_PAYLOAD = struct.Struct(">QIIH")  # enrolment id, step seq, journey id, link index
_MAC_BYTES = 12
_TOKEN_CHARS = 40  # 30 bytes in unpadded base64url
SINK = "journey_tracking"


@lru_cache(maxsize=4)
def _key_for(secret: str) -> bytes:
    return hashlib.sha256(b"tidings-journey-tracking:" + secret.encode()).digest()


def _mac(payload: bytes) -> bytes:
    return hashlib.blake2b(
        payload, key=_key_for(settings.SECRET_KEY), digest_size=_MAC_BYTES
    ).digest()


def make_token(enrolment_id: int, seq: int, journey_id: int, link: int = OPEN) -> str:
    payload = _PAYLOAD.pack(enrolment_id, seq, journey_id, link)
    return base64.urlsafe_b64encode(payload + _mac(payload)).rstrip(b"=").decode()


def read_token(token: str) -> tuple[int, int, int, int] | None:
    """(enrolment id, seq, journey id, link index) of a valid token; None for anything else."""
    if len(token) != _TOKEN_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(token)
    except ValueError:
        return None
    if base64.urlsafe_b64encode(raw).decode() != token:
        return None
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, _mac(payload)):
        return None
    return _PAYLOAD.unpack(payload)


class _StepSigner(TokenSigner):
    """The campaign tracker's signer, for one journey mail (``delivery_id`` is not used)."""

    def __init__(self, enrolment_id: int, seq: int, journey_id: int) -> None:
        self.key = (enrolment_id, seq, journey_id)

    def token(self, delivery_id: int, link: int = OPEN) -> str:
        return make_token(*self.key, link)


class JourneyTracker(LinkTracker):
    """``LinkTracker.apply`` (same pixel, same links) with journey tokens and endpoints."""

    def __init__(self, links: dict[str, int], enrolment_id: int, seq: int, journey_id: int):
        from django.urls import reverse

        from tidings.audience.tokens import absolute_url

        self.campaign_id = 0
        self.links = links
        self.journey_id = journey_id
        self.signer = _StepSigner(enrolment_id, seq, journey_id)
        self.open_prefix = absolute_url(reverse("journey-track:open", args=["T"]))[:-1]
        self.click_prefix = absolute_url(reverse("journey-track:click", args=["T"]))[:-1]


def journey_links(journey: Journey, html_source: str) -> dict[str, int]:
    """{address as it stands in the HTML: index} for a compiled step, the journey's link table
    extended with addresses it has not seen."""
    return index_links(
        JourneyLink.objects.filter(journey=journey),
        lambda index, url: JourneyLink(journey=journey, index=index, url=url),
        html_source,
    )


# A compiled step's link table, per process: stored once, then every send of the step reuses it
# (a link's index never changes, so a cached table is never wrong).  At most 64.
_step_links: dict[tuple[int, str], dict[str, int]] = {}


def step_tracker(journey: Journey, html_source: str) -> JourneyTracker:
    """A tracker for the mail of one compiled step (its link table stored once, its addresses
    resolved once); ``track_with`` applies it to each person's mail."""
    key = (journey.pk, html_source)
    links = _step_links.get(key)
    if links is None:
        links = journey_links(journey, html_source)
        if len(_step_links) >= 64:
            _step_links.clear()
        _step_links[key] = links
    return JourneyTracker(links, 0, 0, journey.pk)


def track_with(tracker: JourneyTracker, document: str, enrolment_id: int, seq: int) -> str:
    """``document`` (one person's rendered HTML) with the pixel and rewritten links."""
    tracker.signer = _StepSigner(enrolment_id, seq, tracker.journey_id)
    return tracker.apply(document, 0)


def track(document: str, journey: Journey, html_source: str, enrolment_id: int, seq: int) -> str:
    """``document`` (one person's rendered HTML) with the pixel and rewritten links."""
    return track_with(step_tracker(journey, html_source), document, enrolment_id, seq)


_link_cache: dict[int, dict[int, str]] = {}


def link_url(journey_id: int, index: int) -> str | None:
    table = _link_cache.get(journey_id)
    if table is None or index not in table:
        table = dict(JourneyLink.objects.filter(journey_id=journey_id).values_list("index", "url"))
        if len(_link_cache) >= 256:
            _link_cache.clear()
        _link_cache[journey_id] = table
    return table.get(index)


def forget_links() -> None:
    """Empty this process's link tables (they are read again from the database when needed)."""
    _step_links.clear()
    _link_cache.clear()


def submit_event(enrolment_id: int, seq: int, journey_id: int, link: int, *, machine: bool) -> None:
    """Queue one open (``link == OPEN``) or click for the sink; no database write."""
    from tidings.lib import ingest

    kind = "open" if link == OPEN else "click"
    row = {
        "e": enrolment_id,
        "s": seq,
        "j": journey_id,
        "k": kind,
        "l": None if link == OPEN else link,
        "m": machine,
        "t": time.time(),
    }
    ingest.submit(SINK, row)


def write_rows(rows: list[dict]) -> None:
    """The ``"journey_tracking"`` ingest sink.  A row whose step is gone (the person's
    enrolment deleted) is dropped; malformed rows are dropped and counted in the log."""
    parsed: list[tuple[tuple[int, int], str, int | None, bool, datetime, int]] = []
    bad = 0
    for row in rows:
        try:
            kind = row["k"]
            if kind not in JourneyMailEvent.Kind.values:
                raise ValueError
            link = row.get("l")
            parsed.append(
                (
                    (int(row["e"]), int(row["s"])),
                    kind,
                    None if link is None else int(link),
                    bool(row.get("m")),
                    datetime.fromtimestamp(float(row["t"]), tz=UTC),
                    int(row.get("j") or 0),
                )
            )
        except (KeyError, TypeError, ValueError):
            bad += 1
    if bad:
        log.warning("journey tracking ingest: dropped %d malformed rows", bad)
    if not parsed:
        return
    keys = {p[0] for p in parsed}
    where = Q()
    for enrolment_id, seq in keys:
        where |= Q(enrolment_id=enrolment_id, seq=seq)
    steps: dict[tuple[int, int], tuple[int, datetime | None]] = {}
    contact_of: dict[tuple[int, int], int | None] = {}
    for pk, enrolment_id, seq, step_sent_at, contact_id in EnrolmentStep.objects.filter(
        where
    ).values_list("pk", "enrolment_id", "seq", "message__sent_at", "enrolment__contact_id"):
        steps[(enrolment_id, seq)] = (pk, step_sent_at)
        contact_of[(enrolment_id, seq)] = contact_id
    # A person who refused tracking after this mail was sent: its pixel and links still reach
    # us, but nothing about them is recorded (and their click moves no journey on).
    # (An enrolment anonymised by erasure has no one left to ask: kept, as campaigns do.)
    allowed = tracked_contact_ids({c for c in contact_of.values() if c is not None})
    kept = [
        p
        for p in parsed
        if p[0] in steps and (contact_of[p[0]] is None or contact_of[p[0]] in allowed)
    ]
    events = [
        NewEvent(delivery_id=steps[key][0], kind=kind, at=at, link=link, machine=machine)
        for key, kind, link, machine, at, _ in kept
    ]
    sent_at = dict(steps.values())
    events = classify_batch(events, sent_at)  # same order, machine rules 4-5 applied
    JourneyMailEvent.objects.bulk_create(
        [
            JourneyMailEvent(
                step_id=e.delivery_id, kind=e.kind, link=e.link, machine=e.machine, at=e.at
            )
            for e in events
        ]
    )
    # A person's click moves them on from a wait_click step (machines' clicks never do).
    for (key, *_, journey_id), e in zip(kept, events, strict=True):
        if e.kind == JourneyMailEvent.Kind.CLICK and not e.machine and e.link is not None:
            url = link_url(journey_id, e.link)
            if url is not None:
                with transaction.atomic():
                    do_click_arrived(key[0], url)
