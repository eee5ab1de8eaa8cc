"""Helpers for the delivery engine's tests: a real SMTP server (aiosmtpd) that records what it
accepts and answers as a test tells it to, and campaigns with subscribers ready to send.

Plain functions and classes rather than fixtures, so the test modules stay independent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller

from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.audience.models import Contact, MailingList
from tidings.campaigns.models import Campaign, Sender

_numbers = itertools.count(1)
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    recipient: str
    data: bytes

    @property
    def message(self):
        return BytesParser(policy=policy.default).parsebytes(self.data)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class SmtpSink:
    """An SMTP server on loopback (aiosmtpd in a thread).  ``answers[address]`` is a list of
    replies ("454 4.7.0 Throttling", "550 5.1.1 No such user") given to that recipient's next
    attempts, one per attempt; once it is empty the message is accepted.  ``refuse_all`` makes
    every DATA fail with that reply.  ``hold_after``: once that many messages have arrived, each
    further DATA waits for its answer until the limit is raised or cleared (None), so a test can
    keep senders from getting ahead while it does something slow."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refuse_all: str = ""
    options: dict = field(default_factory=dict)  # for aiosmtpd: TLS, authentication
    # Offer PIPELINING (RFC 2920), as Postfix, Exim and every large provider do: the sender
    # then writes MAIL, RCPT and DATA at once.  False: a server without it (commands in step).
    pipelining: bool = True
    # MAIL commands that arrived with their RCPT and DATA already behind them (pipelined).
    pipelined: int = 0
    hold_after: int | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **self.options)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # What had arrived behind the MAIL line when it is answered: aiosmtpd reads a line at a
        # time from its StreamReader, so a pipelined group's RCPT and DATA wait in its buffer.
        waiting = bytes(server._reader._buffer)
        if b"RCPT TO:" in waiting and b"DATA" in waiting:
            with self.lock:
                self.pipelined += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.attempts[address] += 1
            queued = self.answers.get(address)
            if queued and queued[0].startswith("5") and "5.1.1" in queued[0]:
                return queued.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        while True:
            with self.lock:
                if self.hold_after is None or len(self.received) < self.hold_after:
                    return self._answer_data(envelope)
            await asyncio.sleep(0.02)

    def _answer_data(self, envelope) -> str:
        if self.refuse_all:
            return self.refuse_all
        for address in envelope.rcpt_tos:
            queued = self.answers.get(address)
            if queued:
                return queued.pop(0)
        for address in envelope.rcpt_tos:
            self.received.append(Received(envelope.mail_from, address, envelope.content))
        self.arrived.notify_all()
        return "250 OK: queued"

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` messages have arrived (False: not within ``timeout`` seconds)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.received) >= count, timeout)

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.recipient == address]


def transports_for(*sinks_or_urls, rate: str = "", concurrency: int = 4) -> dict:
    """A TIDINGS_TRANSPORTS value: one SMTP transport per sink (the first is "default")."""
    result = {}
    for index, item in enumerate(sinks_or_urls):
        url = item.url if isinstance(item, SmtpSink) else item
        name = "default" if index == 0 else f"smtp{index}"
        result[name] = {"url": url, "concurrency": concurrency, "rate": rate}
    return result


def fast_retries(settings) -> None:
    """Retries within a test's time: configuration, not a switch."""
    settings.TIDINGS_RETRY_BASE_SECONDS = 0.05


def make_list(name: str = "Product news", topic: str = "product news") -> MailingList:
    return MailingList.objects.get_or_create(name=name, defaults={"topic": topic})[0]


def subscribers(mailing_list: MailingList, count: int, prefix: str = "reader") -> list[Contact]:
    people = []
    for _ in range(count):
        n = next(_numbers)
        contact, _ = do_create_contact(
            {"name": f"Reader Number{n}", "email": f"{prefix}{n}@example.org"},
            purpose="newsletter",
        )
        do_subscribe(contact, mailing_list, source="form", wording_text="Yes", confirmed=True)
        people.append(contact)
    return people


def sending_campaign(mailing_list: MailingList, **fields) -> Campaign:
    """A campaign to ``mailing_list``, its queue populated, in state sending."""
    from tidings.campaigns.queue import populate_deliveries
    from tidings.campaigns.targeting import audience_for

    sender, _ = Sender.objects.get_or_create(
        email="news@example.co.uk", defaults={"name": "Example News", "verified": True}
    )
    values = {
        "name": f"Campaign {next(_numbers)}",
        "subject": "News for {{ contact.name }}",
        "body": "Hello {{ contact.name }},\n\nWe shipped the thing you asked for.",
        "topic": mailing_list.topic,
        "status": Campaign.Status.SENDING,
        "sender": sender,
        **fields,
    }
    if "layout" not in values:
        values["layout"] = default_layout()
    campaign = Campaign.objects.create(**values)
    campaign.lists.set([mailing_list])
    populate_deliveries(campaign, audience_for(campaign))
    return campaign


def default_layout():
    from tidings.campaigns import rendering

    ensure = getattr(rendering, "ensure_default_layout", None)
    if ensure is not None:
        return ensure()
    from tidings.campaigns.models import Layout

    return Layout.objects.get_or_create(
        name="Plain",
        defaults={
            "html": "<html><body>{{ content }}<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a>"
            "</p></body></html>",
            "text": "{{ content }}\n\nUnsubscribe: {{ unsubscribe_url }}",
        },
    )[0]
