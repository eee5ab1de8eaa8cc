"""Helpers for the bounce tests: the sample reports with the ids of a real row filled in, and
people who received a campaign."""

from __future__ import annotations

from pathlib import Path

from tests.campaigns.delivery_helpers import make_list, sending_campaign, subscribers
from tidings.campaigns.messages import message_id_for, verp_address
from tidings.campaigns.models import Delivery

SAMPLES = Path(__file__).parent / "bounce_samples"
DOMAIN = "example.co.uk"  # the From domain of sending_campaign's sender


def sample(
    name: str,
    *,
    recipient: str,
    row: tuple[str, int] | None = None,
    message_id: str | None = None,
    verp: bool = False,
) -> bytes:
    """Sample ``name`` as if it were about queue row ``row`` (("d", 12): Delivery 12)."""
    if message_id is None:
        message_id = message_id_for(row[0], row[1], DOMAIN) if row else "<other@elsewhere.example>"
    bounces = "bounces@example.co.uk"
    if verp and row:
        bounces = verp_address(bounces, row[0], row[1])
    text = (SAMPLES / name).read_text(encoding="utf-8")
    text = text.replace("{MESSAGE_ID}", message_id).replace("{RECIPIENT}", recipient)
    return text.replace("{VERP_OR_BOUNCES}", bounces).replace("\n", "\r\n").encode()


def delivered(count: int = 1, prefix: str = "reader"):
    """(campaign, [(contact, delivery)]): a sending campaign to ``count`` confirmed
    subscribers, each delivery marked sent."""
    news = make_list()
    people = subscribers(news, count, prefix=prefix)
    campaign = sending_campaign(news)
    Delivery.objects.filter(campaign=campaign).update(status="sent")
    rows = {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}
    return campaign, [(person, rows[person.pk]) for person in people]
