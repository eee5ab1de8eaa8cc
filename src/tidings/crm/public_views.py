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

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from tidings.audience.actions import FieldNotAllowed
from tidings.audience.emails import InvalidEmail
from tidings.lib.ratelimit import setting_limit, too_many, within_limit
from tidings.policy.screening_forms import no_store, screen_field, warm_up

from .actions import WEB_FORM, FreeTextRejected, do_receive_enquiry
from .forms import PublicEnquiryForm
from .queries import enquiry_notice, require_web_form

ENQUIRY_LIMIT = (5, 600)  # submissions per IP address, per seconds (TIDINGS_ENQUIRY_LIMIT)


def _sent() -> HttpResponse:
    return HttpResponseRedirect(reverse("crm_public:contact-sent"), status=303)


@require_http_methods(["GET", "HEAD", "POST"])
def contact(request: HttpRequest) -> HttpResponse:
    require_web_form()
    if request.method == "POST":
        limit = setting_limit("TIDINGS_ENQUIRY_LIMIT", ENQUIRY_LIMIT)
        if not within_limit(request, "enquiry", limit):
            return too_many(request, limit)
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
            {"form": form, "notice": enquiry_notice(), "privacy_url": reverse("policy:notice")},
        )
    )


@require_http_methods(["GET", "HEAD"])
def contact_sent(request: HttpRequest) -> HttpResponse:
    require_web_form()
    return render(request, "crm/public/contact_sent.html", {"notice": enquiry_notice()})
