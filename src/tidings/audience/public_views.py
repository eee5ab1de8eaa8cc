"""Public pages: sign-up forms, confirming a sign-up, the preference centre, unsubscribing.

Nobody signs in here: a sign-up form is public, and the other pages open from signed links in
emails (tokens.py), so the link is the key.  Every page works without JavaScript (there is none)
and without cookies, except where a page carries a form of ours that Django's CSRF protection
guards (confirm, preferences).  Each view: parse, one action, respond.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.http.request import RawPostDataException
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from tidings.lib.client_ip import client_ip
from tidings.lib.ratelimit import setting_limit, too_many, within_limit
from tidings.policy import get_policy
from tidings.policy.notice import rights_request_url

from .actions import (
    HELD_BACK,
    LIST_REFUSED,
    LIST_TO_CONFIRM,
    STILL_TO_CONFIRM,
    ConfirmResult,
    PreferenceChoices,
    SignupAnswer,
    do_confirm_signup,
    do_send_preferences_link,
    do_sign_up,
    do_unsubscribe_all,
    do_unsubscribe_request,
    do_update_preferences,
    pending_confirmed,
    pending_lines,
    pending_preferences,
)
from .consent import current_state, tracking_allowed
from .consent_records import mail_stopped
from .forms import (
    PreferencesLinkForm,
    build_preferences_form_class,
    preference_channel_label,
    signup_form_for,
)
from .models import (
    ConsentEvent,
    Contact,
    MailingList,
    PendingPreferences,
    SignupForm,
    Subscription,
)
from .tokens import (
    BadToken,
    ConfirmRequest,
    ExpiredToken,
    absolute_url,
    confirm_days,
    preferences_url,
    read_confirm_token,
    read_preferences_token,
    read_unsubscribe_token,
)

# --- rate limiting (tidings.lib.ratelimit) -------------------------------------------------------
SIGNUP_LIMIT = (5, 600)  # attempts per IP address, per seconds
LINK_REQUEST_LIMIT = (5, 600)


def _link_problem(
    request: HttpRequest, *, expired: bool, kind: str, signup_form: SignupForm | None = None
) -> HttpResponse:
    context = {
        "expired": expired,
        "kind": kind,
        "signup_form": signup_form,
        "confirm_days": confirm_days(),
        "link_form": PreferencesLinkForm() if kind == "preferences" else None,
    }
    status = 410 if expired else 404
    return render(request, "audience/public/link_problem.html", context, status=status)


# --- sign-up forms ----------------------------------------------------------------------------
def _signed_up(signup_form: SignupForm, answer: SignupAnswer = SignupAnswer.SENT) -> HttpResponse:
    """The answer to an accepted submission, the same whether or not the address is known: a
    redirect (Post/Redirect/Get), so that refreshing the thank-you page does not post the form
    again and send a second confirmation email.  The thank-you address names only the form and
    the answer's word (``?answer=recently``: an email went to the address recently, so no new
    one did), never what was typed into it."""
    if signup_form.redirect_url:
        return HttpResponseRedirect(signup_form.redirect_url, status=303)
    done = reverse("public:signup-done", kwargs={"slug": signup_form.slug})
    if answer == SignupAnswer.RECENTLY:
        done += f"?answer={answer}"
    return HttpResponseRedirect(done, status=303)


# CSRF exemption, for this view only: the embeddable snippet posts here from the operator's own
# web site, which cannot hold our CSRF token.  Nothing a forged post can do here hurts anyone: it
# can only ask for a confirmation email, and nothing is subscribed until the owner of the
# mailbox clicks the link in it.  The honeypot and the per-IP limit keep bots off.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest, slug: str) -> HttpResponse:
    signup_form = SignupForm.objects.filter(slug=slug, is_active=True).first()
    if signup_form is None:
        raise Http404("no such form")
    if request.method == "POST":
        limit = setting_limit("TIDINGS_SIGNUP_LIMIT", SIGNUP_LIMIT)
        if not within_limit(request, "signup", limit):
            return too_many(request, limit)
        form = signup_form_for(signup_form, request.POST)
        if form.honeypot_filled():
            return _signed_up(signup_form)  # a bot: it learns nothing either
        if form.is_valid():
            answer = do_sign_up(
                signup_form,
                form.contact_values(),
                list_ids=form.chosen_list_ids(),
                channels=form.chosen_channels(),
                wording_text=form.wording,
                ip=client_ip(request),
            )
            return _signed_up(signup_form, answer)
    else:
        form = signup_form_for(signup_form)
    context = {
        "signup_form": signup_form,
        "form": form,
        "privacy_url": absolute_url(reverse("policy:notice")),
    }
    return render(request, "audience/public/signup.html", context)


@require_http_methods(["GET", "HEAD"])
def signup_done(request: HttpRequest, slug: str) -> HttpResponse:
    """Where an accepted submission is sent: "check your inbox"."""
    signup_form = SignupForm.objects.filter(slug=slug, is_active=True).first()
    if signup_form is None:
        raise Http404("no such form")
    context = {
        "signup_form": signup_form,
        "recently": request.GET.get("answer") == SignupAnswer.RECENTLY,
        "confirm_days": confirm_days(),
    }
    return render(request, "audience/public/signup_done.html", context)


# --- confirming a sign-up ---------------------------------------------------------------------
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; only its POST confirms.  Mail providers' link scanners and security
    gateways open (GET) every link in an email before the person does: if a GET confirmed, every
    address anyone typed into a form would be "confirmed" without its owner."""
    try:
        confirm_request = read_confirm_token(token)
    except ExpiredToken as exc:
        form_id = exc.payload.form_id
        signup_form = SignupForm.objects.filter(pk=form_id, is_active=True).first()
        return _link_problem(request, expired=True, kind="confirm", signup_form=signup_form)
    except BadToken:
        return _link_problem(request, expired=False, kind="confirm")
    if request.method == "POST":
        result = do_confirm_signup(confirm_request, ip=client_ip(request))
        # Post/Redirect/Get, as the preference centre does: a refresh of the answer posts
        # nothing again.  The answer is a word in the address (never who, never a cookie); the
        # path is the link the person opened (its token is redacted in logs, and the
        # same-origin referrer policy keeps it from other sites).
        return HttpResponseRedirect(f"{request.path}?done={_confirm_outcome(result)}", status=303)
    done = request.GET.get("done")
    if done in CONFIRM_OUTCOMES and (answer := _confirm_done(request, confirm_request, done)):
        return answer
    lists = MailingList.objects.filter(
        pk__in=confirm_request.list_ids,
        closed_at__isnull=True,
        topic__in=get_policy().marketing.topics,
    )
    pending = _pending_of(confirm_request)
    to_join = list(lists.order_by("name"))
    if (
        confirm_request.pending_id is not None
        and pending is None
        and not confirm_request.channels
        and not _lists_to_join(confirm_request, to_join)
    ):
        # A preference-page link with nothing left to do: pressed before (its changes were
        # made), or its changes were replaced by a later save or taken back.  No button.
        made = pending_confirmed(confirm_request.contact_id, confirm_request.pending_id)
        answer = _confirm_done(request, confirm_request, "already" if made else "nothing")
        if answer is not None:
            return answer
    return render(
        request,
        "audience/public/confirm.html",
        {
            "lists": to_join,
            "channels": [preference_channel_label(c) for c in confirm_request.channels],
            "changes": pending_lines(pending),
            "action": request.path,
        },
    )


def _pending_of(confirm_request: ConfirmRequest) -> PendingPreferences | None:
    """The preference-page changes a confirmation link stands for, while they wait."""
    if confirm_request.pending_id is None:
        return None
    return PendingPreferences.objects.filter(
        pk=confirm_request.pending_id, contact_id=confirm_request.contact_id
    ).first()


def _lists_to_join(confirm_request: ConfirmRequest, lists: list[MailingList]) -> bool:
    """Is the link's person still to be confirmed on one of ``lists``?"""
    confirmed = Subscription.objects.filter(
        contact_id=confirm_request.contact_id,
        mailing_list__in=lists,
        status=Subscription.Status.CONFIRMED,
    ).count()
    return confirmed < len(lists)


# What a confirmation's answer page says, by the word in its address: "subscribed" (this
# click confirmed a list: a welcome email went), "already" (confirmed before), "changed" (no
# new list: the sign-up form's channels or the preference page's other changes are made),
# "refused" (mail to the address is stopped), "gone" (the contact no longer exists).  The
# page says what the link stands for as it is now: the lists the person is on, the channels
# granted, whether the preference page's changes were made.
CONFIRM_OUTCOMES = ("subscribed", "already", "changed", "refused", "gone")


def _confirm_outcome(result: ConfirmResult) -> str:
    if result.contact is None:
        return "gone"
    if result.refused:
        return "refused"
    if result.confirmed:
        return "subscribed"
    # Lists the person was on already do not make the click's other changes "subscribed".
    return "changed" if result.changed else "already"


def _confirm_done(
    request: HttpRequest, confirm_request: ConfirmRequest, done: str
) -> HttpResponse | None:
    """The answer page after the button's POST (a GET: it confirms nothing), or for a link
    with nothing left to confirm ("nothing").  None when the address claims more than is so
    (it was opened before the button was pressed): the page with the button then."""
    contact = Contact.objects.filter(pk=confirm_request.contact_id).first()
    if contact is None:
        done = "gone"
    lists: list[MailingList] = []
    granted: list[str] = []
    made = False  # the preference page's changes this link stands for were made
    if contact is not None and done in ("subscribed", "already", "changed"):
        lists = list(
            MailingList.objects.filter(
                pk__in=confirm_request.list_ids,
                subscriptions__contact=contact,
                subscriptions__status=Subscription.Status.CONFIRMED,
            ).order_by("name")
        )
        state = current_state(contact)
        granted = [
            preference_channel_label(c)
            for c in confirm_request.channels
            if state.channel_granted(c)
        ]
        if confirm_request.pending_id is not None:
            if _pending_of(confirm_request) is not None:
                return None  # not pressed yet: the page with the button
            made = pending_confirmed(contact.pk, confirm_request.pending_id)
        if done == "subscribed" and not lists:
            return None
        if not (lists or granted or made):
            return None
        if done == "changed" and not (granted or made):
            return None
    # The way back to the page the changes were asked for on: this mailbox's owner may have it.
    preferences_link = confirm_request.pending_id is not None
    back = preferences_url(contact) if contact is not None and preferences_link else ""
    return render(
        request,
        "audience/public/confirm_done.html",
        {
            "done": done,
            "lists": lists,
            "granted": granted,
            "made": made,
            # A preference-page link that joins no new list is about changes, not a
            # subscription: its page says "Your changes are made", whatever lists it names.
            "changes_only": preferences_link and done != "subscribed",
            "preferences_url": back,
        },
    )


# --- the preference centre --------------------------------------------------------------------
def preferences_wording() -> str:
    """The words above the preference centre's boxes (kept in the ledger with each grant)."""
    return (
        f"Tick what {get_policy().controller.name} may send you, and how. You can change this "
        "at any time on this page, or leave with the unsubscribe link in every email. How we use "
        f"your details: {absolute_url(reverse('policy:notice'))}"
    )


def _preference_lists(contact: Contact) -> tuple[list[MailingList], frozenset[int]]:
    """Public open lists of the policy's topics, plus any open list the contact is on (to leave
    it, whatever its topic); and which of them are pending."""
    statuses = dict(
        contact.subscriptions.filter(
            status__in=[Subscription.Status.PENDING, Subscription.Status.CONFIRMED]
        ).values_list("mailing_list_id", "status")
    )
    lists = MailingList.objects.filter(closed_at__isnull=True).filter(
        pk__in=list(statuses)
    ) | MailingList.objects.filter(
        closed_at__isnull=True, is_public=True, topic__in=get_policy().marketing.topics
    )
    pending = frozenset(k for k, v in statuses.items() if v == Subscription.Status.PENDING)
    return list(lists.distinct().order_by("name")), pending


def _rights_link() -> str:
    return rights_request_url() or f"mailto:{get_policy().rights.contact}"


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        contact_id = read_preferences_token(token)
    except ExpiredToken:
        return _link_problem(request, expired=True, kind="preferences")
    except BadToken:
        return _link_problem(request, expired=False, kind="preferences")
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        return _link_problem(request, expired=False, kind="preferences")

    policy = get_policy()
    waiting = pending_preferences(contact)
    lists, pending = _preference_lists(contact)
    pending |= frozenset(waiting.list_ids if waiting else ())
    form_class = build_preferences_form_class(
        policy,
        lists,
        pending,
        waiting_channels=waiting.channels if waiting else (),
        waiting_tracking=bool(waiting and waiting.tracking),
    )
    wording_text = preferences_wording()
    if request.method == "POST":
        if request.POST.get("action") == "unsubscribe_all":
            do_unsubscribe_all(
                contact,
                source=ConsentEvent.Source.PREFERENCES,
                ip=client_ip(request),
                other_channels=True,
            )
            return HttpResponseRedirect(f"{request.path}?done=unsubscribed", status=303)
        form = form_class(request.POST)
        if form.is_valid():
            changes = do_update_preferences(
                contact,
                PreferenceChoices(
                    list_ids=frozenset(form.chosen_list_ids()),
                    channels=frozenset(form.chosen_channels()),
                    tracking=form.tracking_choice(),
                    values=form.contact_values(),
                ),
                offered_lists=form.offered_lists,
                offered_channels=form.offered_channels,
                wording_text=wording_text,
                ip=client_ip(request),
            )
            # Post/redirect/get, with the notice in the address rather than a cookie.
            return HttpResponseRedirect(f"{request.path}?done={_saved(changes)}", status=303)
    else:
        state = current_state(contact)
        confirmed = set(
            contact.subscriptions.filter(status=Subscription.Status.CONFIRMED).values_list(
                "mailing_list_id", flat=True
            )
        )
        # What waits for the person's confirmation shows as chosen: saving the page again
        # keeps it waiting, and unticking (or retyping) it takes it back.
        asked = waiting or PendingPreferences()
        initial: dict[str, object] = {
            name: getattr(contact, name, None) or contact.attributes.get(name, "")
            for name in form_class.contact_field_names
        }
        initial |= asked.values
        initial |= {f"list_{ml.pk}": ml.pk in confirmed or ml.pk in asked.list_ids for ml in lists}
        initial |= {
            f"channel_{c}": state.channel_granted(c) or c in asked.channels
            for c in form_class.offered_channels
        }
        if form_class.offers_tracking:
            initial["tracking"] = tracking_allowed(contact) or asked.tracking
        form = form_class(initial=initial)
    context = {
        "form": form,
        "wording": wording_text,
        "done": request.GET.get("done", ""),
        "waiting_lists": [ml for ml in lists if waiting and ml.pk in waiting.list_ids],
        "waiting_changes": pending_lines(waiting),
        "mail_stopped": mail_stopped(contact.email),
        "action": request.path,
        "rights_url": _rights_link(),
        "privacy_url": absolute_url(reverse("policy:notice")),
    }
    return render(request, "audience/public/preferences.html", context)


def _saved(changes: list[str]) -> str:
    """The word the saved page's address carries: "refused" (something needed a confirmation
    email, and mail to the address is stopped), "confirm" (one was sent), "held" (none was
    sent: several went to the address recently), "waiting" (what was asked for already waits
    for the one sent before), else "saved"."""
    for word, ending in (
        ("refused", LIST_REFUSED),
        ("confirm", LIST_TO_CONFIRM),
        ("held", HELD_BACK),
        ("waiting", STILL_TO_CONFIRM),
    ):
        if any(change.endswith(ending) for change in changes):
            return word
    return "saved"


@require_http_methods(["GET", "HEAD", "POST"])
def preferences_link(request: HttpRequest) -> HttpResponse:
    """Ask for a fresh preference-centre link by email.  The answer is the same whether or not
    the address is known."""
    form = PreferencesLinkForm(request.POST or None)
    if request.method == "POST":
        limit = setting_limit("TIDINGS_LINK_REQUEST_LIMIT", LINK_REQUEST_LIMIT)
        if not within_limit(request, "preferences-link", limit):
            return too_many(request, limit)
        if form.is_valid():
            do_send_preferences_link(form.cleaned_data["email"])
            # Post/Redirect/Get: a refresh of the answer sends no second email.
            return HttpResponseRedirect(reverse("public:preferences-link-sent"), status=303)
    return render(request, "audience/public/preferences_link.html", {"form": form})


@require_http_methods(["GET", "HEAD"])
def preferences_link_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "audience/public/preferences_link_sent.html")


# --- unsubscribing ----------------------------------------------------------------------------
ONE_CLICK = ("List-Unsubscribe", "One-Click")
# Form content types Django parses into request.POST; any other body is read here.
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_ONE_CLICK_BODY_MAX = 4096  # a one-click body is 26 bytes; nothing longer is read as text


def _one_click_requested(request: HttpRequest, form: QueryDict | None) -> bool:
    """Does the POST carry ``List-Unsubscribe=One-Click`` (RFC 8058)?

    Read with the leniency an unsubscribe deserves: a request that says it wants to stop the
    mail must not be refused over how it is spelt.  Names and values are compared without case
    and surrounding white space (a sender's body ending in CRLF gives "One-Click\r\n"), any of
    several values counts, and a body sent as text/plain or with no content type at all is
    read as a form, as RFC 8058 senders mean it (so is a form Django cannot parse: ``form``,
    from ``_posted_form``, is then None).  Nothing but the field is looked at."""
    name, value = (part.casefold() for part in ONE_CLICK)

    def says_one_click(pairs: Iterable[tuple[str, str]]) -> bool:
        return any(k.strip().casefold() == name and v.strip().casefold() == value for k, v in pairs)

    if form is not None:
        return says_one_click((k, v) for k, values in form.lists() for v in values)
    try:
        body = request.body[:_ONE_CLICK_BODY_MAX].decode("utf-8", "replace")
    except RawPostDataException:  # already read as a form that could not be parsed
        return False
    return says_one_click(parse_qsl(body.strip(), keep_blank_values=True))


def _posted_form(request: HttpRequest) -> QueryDict | None:
    """The posted form, or None when the body is not one Django can parse: another content
    type, or a form type it cannot read (multipart/form-data without a boundary), which is
    then read as text like any other odd body, instead of Django's "Request refused" page."""
    if request.method != "POST" or request.content_type not in _FORM_TYPES:
        return None
    try:
        return request.POST
    except MultiPartParserError:
        return None


# CSRF exemption, for this view only: RFC 8058 one-click unsubscribe is a POST from the mail
# provider's servers, with no cookies and no token but the one in the URL, which is the
# capability.  A forged cross-site POST would need that secret URL, and could then only do what
# the link's owner asked for: stop the mail.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page with a button (a GET never unsubscribes: link scanners open every link).
    POST with ``List-Unsubscribe=One-Click`` (RFC 8058; the button sends the same): unsubscribe at
    once, answer 200 with no redirect and no cookie.  The token never expires."""
    try:
        unsubscribe_request = read_unsubscribe_token(token)
    except BadToken:
        return _link_problem(request, expired=False, kind="unsubscribe")
    mailing_list = None
    if unsubscribe_request.list_id is not None:
        mailing_list = MailingList.objects.filter(pk=unsubscribe_request.list_id).first()
    form = _posted_form(request)
    from_page = form is not None and form.get("from") == "page"

    if request.method == "POST":
        if not _one_click_requested(request, form):
            return HttpResponse(
                "Expected List-Unsubscribe=One-Click in the request body (RFC 8058).\n",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        do_unsubscribe_request(
            unsubscribe_request, source=ConsentEvent.Source.UNSUBSCRIBE, ip=client_ip(request)
        )
        if not from_page:
            return HttpResponse("Unsubscribed.\n", content_type="text/plain; charset=utf-8")
        return render(
            request,
            "audience/public/unsubscribe_done.html",
            {"mailing_list": mailing_list, "everything": unsubscribe_request.list_id is None},
        )
    return render(
        request,
        "audience/public/unsubscribe.html",
        {
            "mailing_list": mailing_list,
            "everything": unsubscribe_request.list_id is None,
            "action": request.path,
            "field": ONE_CLICK,
        },
    )
