"""Messages sent now, without the queue: an operator's test messages of a campaign.

The operator waits for the answer, and nobody's delivery row is involved, so these go straight
through a transport, built as the engine builds campaign mail (same From, Reply-To, envelope
sender, DKIM signature and MIME bytes).  Sits below ``samples.py`` (``do_test_send`` calls it)
and knows nothing of the engine.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass, field
from typing import Any

from .config import DeliveryConfig
from .dkim import signer_for
from .mail import sender_from_header
from .messages import MessageFactory, envelope_sender, wire_address
from .transports.base import Email, TransportError
from .transports.config import build_transport, transport_configs


@dataclass
class DirectResult:
    sent: int = 0
    errors: list[str] = field(default_factory=list)  # TransportError.describe(): no addresses


def send_test_messages(
    campaign: Any, addresses: list[str], rendered: Any, *, subject_prefix: str = "[Test] "
) -> DirectResult:
    """Send ``rendered`` (a campaign's message, rendered with inert links) to ``addresses`` now,
    through the transport the campaign would use (``Campaign.transport``, else the first), built
    as the engine builds campaign mail: the same From, Reply-To, envelope sender, DKIM signature
    and MIME bytes; marked ``X-Tidings-Test``, with no List-Unsubscribe (its links are inert).
    """
    configs = transport_configs()
    config = next((c for c in configs if campaign.transport and c.name == campaign.transport), None)
    transport = build_transport(config or configs[0])
    sender = campaign.sender
    from_header = sender_from_header(sender)
    reply_to = campaign.reply_to or (sender.reply_to if sender else "")
    headers = {"Reply-To": reply_to, "X-Tidings-Test": "yes"}
    factory = MessageFactory(
        from_header=from_header, headers=headers, signer=signer_for(from_header)
    )
    mail_from = envelope_sender(from_header, DeliveryConfig.from_settings().bounce_address)
    subject = f"{subject_prefix}{rendered.subject}"
    emails = []
    for address in addresses:
        recipient, smtputf8 = wire_address(address)
        message_id = f"<test.{uuid.uuid4().hex}@{factory.domain}>"
        email = Email(
            mail_from=mail_from,
            recipient=recipient,
            message_id=message_id,
            from_header=from_header,
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            headers={k: v for k, v in headers.items() if v},
            smtputf8=smtputf8,
        )
        if transport.wants_bytes:
            build = functools.partial(
                factory.build,
                to=recipient,
                subject=subject,
                text=rendered.text,
                html=rendered.html,
                message_id=message_id,
            )
            email.data = build(eight_bit=True)
            email.rebuild = build
        emails.append(email)

    result = DirectResult()

    async def send_all() -> None:
        try:
            for email in emails:
                await transport.limiter.acquire()
                try:
                    await transport.send(email, 0)
                except TransportError as exc:
                    result.errors.append(exc.describe())
                else:
                    result.sent += 1
        finally:
            await transport.close()

    asyncio.run(send_all())
    transport.commit()  # the outbox writes what it "sent" here
    return result
