"""Campaigns, templates, deliveries and the embedded outbox: one module per part."""

from .bounces import InboundReport
from .campaign import Campaign, Delivery, Sender
from .dmarc import DmarcRecord, DmarcReport
from .events import Event, EventCounter, EventKind, RecipientDomain, TrackedLink
from .outbox import OutboxMessage
from .outgoing import OutgoingMessage
from .system import SystemEmailTemplate
from .templates import Layout, Template
from .variants import ABTest, Variant
from .worker import DeliveryWorker, DomainDeferral

__all__ = [
    "ABTest",
    "Campaign",
    "Delivery",
    "DeliveryWorker",
    "DmarcRecord",
    "DmarcReport",
    "DomainDeferral",
    "Event",
    "EventCounter",
    "EventKind",
    "InboundReport",
    "Layout",
    "OutboxMessage",
    "OutgoingMessage",
    "RecipientDomain",
    "Sender",
    "SystemEmailTemplate",
    "Template",
    "TrackedLink",
    "Variant",
]
