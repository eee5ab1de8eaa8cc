"""The website's contact form, ``/contact``: anyone may send us an enquiry.

It asks exactly the fields the policy's enquiry purpose collects (required ones required), and
says why and for how long we keep them; there is no consent box, because the basis is the
purpose's own (legitimate interests in the example policy).  It works without JavaScript, with
Django's CSRF protection on (the form is served by us, so it carries the token), a honeypot and
a per-IP limit.  Every accepted submission gets the same answer (a redirect to the thank-you
page), whether or not the address belongs to someone we know; a bot that fills the honeypot gets
it too, and learns nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from tidings.audience.actions import FieldNotAllowed
from tidings.audience.emails import InvalidEmail
from tidings.audience.public_views import within_limit
from tidings.policy import get_policy
from tidings.policy.plain import lawful_basis_text, retention_text
from tidings.policy.screening_forms import no_store, screen_field, warm_up

from .actions import ENQUIRY, WEB_FORM, FreeTextRejected, do_receive_enquiry, enquiry_channels
from .forms import PublicEnquiryForm

ENQUIRY_LIMIT = (5, 600)  # submissions per IP address, per seconds (TIDINGS_ENQUIRY_LIMIT)


def _offered() -> None:
    """The form exists only while the policy lists the web form as a source of enquiries."""
    if WEB_FORM not in enquiry_channels():
        raise Http404("no contact form")


def notice() -> dict[str, str]:
    """What the page says about the use of the details, from the policy."""
    policy = get_policy()
    basis, _ = lawful_basis_text(policy.purpose(ENQUIRY).lawful_basis)
    return {
        "purpose": policy.purpose(ENQUIRY).title,
        "basis": basis.lower(),
        "retention": retention_text(policy, ENQUIRY),
        "controller": policy.controller.name,
    }


def _sent() -> HttpResponse:
    return HttpResponseRedirect(reverse("crm_public:contact-sent"), status=303)


@require_http_methods(["GET", "HEAD", "POST"])
def contact(request: HttpRequest) -> HttpResponse:
    _offered()
    if request.method == "POST":
        limit = tuple(getattr(settings, "TIDINGS_ENQUIRY_LIMIT", ENQUIRY_LIMIT))
        if not within_limit(request, "enquiry", limit):
            minutes = max(1, limit[1] // 60)
            response = render(
                request, "audience/public/too_many.html", {"minutes": minutes}, status=429
            )
            response["Retry-After"] = str(limit[1])
            return response
        form = PublicEnquiryForm(request.POST)
        if form.honeypot_filled():
            return _sent()
        # Special-category data in the message: the person is told what was taken out and gets
        # the rest of their message back to send again; nothing is stored meanwhile.
        if form.is_valid() and not screen_field(form, "message"):
            try:
                do_receive_enquiry(
                    form.person_values(),
                    channel=WEB_FORM,
                    message=form.cleaned_data["message"],
                    actor_label="contact form",
                    acknowledge=True,
                    notify=True,
                )
            except FreeTextRejected as exc:
                form.add_error("message", str(exc))
            except (FieldNotAllowed, InvalidEmail):
                form.add_error(None, "Please check the details you entered.")
            else:
                return _sent()
    else:
        form = PublicEnquiryForm()
        warm_up()  # screening's engine loads while the person types
    return no_store(
        render(
            request,
            "crm/public/contact.html",
            {"form": form, "notice": notice(), "privacy_url": reverse("policy:notice")},
        )
    )


@require_http_methods(["GET", "HEAD"])
def contact_sent(request: HttpRequest) -> HttpResponse:
    _offered()
    return render(request, "crm/public/contact_sent.html", {"notice": notice()})
