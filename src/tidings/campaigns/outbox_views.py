"""The embedded outbox: the messages the outbox transport kept instead of sending (the demo, and
installations testing their templates), listed and shown as a recipient would see them."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from tidings.lib.access import operator_required

from .models import OutboxMessage

PAGE_SIZE = 50

# Headers shown above a message, in this order, when it has them.
SHOWN_HEADERS = (
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "DKIM-Signature",
)


@operator_required(perm="people")
def outbox_index(request: HttpRequest) -> HttpResponse:
    messages = OutboxMessage.objects.only("pk", "created_at", "to", "subject").order_by(
        "-created_at", "-pk"
    )
    page = Paginator(messages, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "campaigns/outbox/index.html", {"page": page})


@operator_required(perm="people")
def outbox_message(request: HttpRequest, message_id: int) -> HttpResponse:
    stored = OutboxMessage.objects.filter(pk=message_id).first()
    if stored is None:
        raise Http404("No such message in the outbox.")
    parsed = stored.parsed()
    headers = [(name, str(parsed[name])) for name in SHOWN_HEADERS if parsed[name] is not None]
    html_part = parsed.get_body(preferencelist=("html",))
    text_part = parsed.get_body(preferencelist=("plain",))
    return render(
        request,
        "campaigns/outbox/message.html",
        {
            "stored": stored,
            "headers": headers,
            "html": html_part.get_content() if html_part is not None else "",
            "text": text_part.get_content() if text_part is not None else "",
            "size": len(bytes(stored.message)),
        },
    )
