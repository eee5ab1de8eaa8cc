"""``tidings rights``: the privacy requests queue from the command line.

For a request that arrives by post, by telephone or in a mailbox nobody forwards to the web form,
and for a privacy officer who works in a terminal: the same actions as the operator pages
(``rights/actions.py``), audited as ``cli``.  A person's address is shown only by ``show`` (the
list prints none, so its output can go to a log).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from tidings.audience.emails import InvalidEmail
from tidings.lib.models import AuditEntry
from tidings.rights.actions import (
    RightsError,
    do_create_rights_request,
    do_export_package,
    do_extend_rights_request,
    do_fulfil_rights_request,
    do_rectify_contact,
    do_refuse_rights_request,
    do_start_rights_request,
    do_verify_rights_request,
    urgency,
)
from tidings.rights.forms import RectifyForm
from tidings.rights.models import RightsRequest

ACTOR = "cli"
KINDS = {"access": "access", "rectify": "rectification", "erase": "erasure", "object": "objection"}
CHANNELS = ("email", "phone", "post", "web")
SHOW = {
    "open": Q(state__in=RightsRequest.OPEN_STATES),
    "closed": ~Q(state__in=RightsRequest.OPEN_STATES),
    "all": Q(),
}


class Command(BaseCommand):
    help = (
        "Privacy requests (access, rectification, erasure, objection): list, show, record one "
        "received by other means, verify, fulfil, rectify, extend, refuse, write a package."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="the queue, soonest due first (no addresses)")
        listing.add_argument("--show", choices=list(SHOW), default="open")
        show = sub.add_parser("show", help="one request, with its address while it is open")
        show.add_argument("id", type=int)
        new = sub.add_parser("new", help="record a request received by post, phone or email")
        new.add_argument("kind", choices=list(RightsRequest.Kind.values))
        new.add_argument("email", help="the person's email address")
        new.add_argument("--channel", choices=CHANNELS, default="email")
        new.add_argument(
            "--verified",
            action="store_true",
            help="you have checked the person's identity: no verification link is sent",
        )
        new.add_argument("--details", default="", help="what to correct (rectification)")
        for name, text in (
            ("verify", "you have checked the person's identity"),
            ("start", "mark a verified request in progress"),
            ("fulfil", "carry out a verified access, erasure or objection request"),
        ):
            sub.add_parser(name, help=text).add_argument("id", type=int)
        rectify = sub.add_parser("rectify", help="correct the details of a rectification request")
        rectify.add_argument("id", type=int)
        rectify.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            required=True,
            help="a corrected value (repeatable); the fields the policy lets people correct",
        )
        for name, text in (
            ("extend", "extend the deadline by up to two months (the person is told why)"),
            ("refuse", "refuse the request (the person is told why)"),
        ):
            with_reason = sub.add_parser(name, help=text)
            with_reason.add_argument("id", type=int)
            with_reason.add_argument("--reason", required=True)
        package = sub.add_parser(
            "package", help="write the access package (a ZIP) of a verified access request"
        )
        package.add_argument("id", type=int)
        package.add_argument("--output", "-o", required=True, type=Path, metavar="FILE")

    def handle(self, *args, action: str, **options):
        if action == "list":
            self.stdout.write(queue_text(options["show"]))
            return
        if action == "new":
            self._new(options)
            return
        request = _request(options["id"])
        try:
            if action == "show":
                self.stdout.write(request_text(request))
            elif action == "verify":
                do_verify_rights_request(request, actor=ACTOR)
                self.stdout.write(f"Request #{request.pk}: identity verified.")
            elif action == "start":
                do_start_rights_request(request, actor=ACTOR)
                self.stdout.write(f"Request #{request.pk}: in progress.")
            elif action == "fulfil":
                self._fulfil(request)
            elif action == "rectify":
                self._rectify(request, options["set"])
            elif action == "extend":
                request = do_extend_rights_request(request, options["reason"], actor=ACTOR)
                self.stdout.write(
                    f"Request #{request.pk}: due {request.due:%-d %B %Y}; the person has been "
                    "told why."
                )
            elif action == "refuse":
                do_refuse_rights_request(request, options["reason"], actor=ACTOR)
                self.stdout.write(f"Request #{request.pk}: refused; the person has been told why.")
            else:
                self._package(request, options["output"])
        except RightsError as exc:
            raise CommandError(f"request #{request.pk}: {exc}") from None

    def _new(self, options) -> None:
        try:
            created = do_create_rights_request(
                options["kind"],
                options["email"],
                details=options["details"],
                channel=options["channel"],
                verified=options["verified"],
                actor=ACTOR,
            )
        except InvalidEmail:
            raise CommandError("not an email address") from None
        except RightsError as exc:
            raise CommandError(str(exc)) from None
        then = (
            "identity verified"
            if options["verified"]
            else "a verification link has been emailed to the person"
        )
        self.stdout.write(
            f"Request #{created.pk} recorded ({KINDS[created.kind]}); {then}; due "
            f"{created.due:%-d %B %Y}."
        )

    def _fulfil(self, request: RightsRequest) -> None:
        if request.kind == RightsRequest.Kind.RECTIFY and request.contact_id is not None:
            raise RightsError(
                f"a rectification needs the corrected values: tidings rights rectify {request.pk} "
                "--set FIELD=VALUE"
            )
        request = do_fulfil_rights_request(request, actor=ACTOR)
        outcome = request.outcome or {}
        self.stdout.write(f"Request #{request.pk}: done.")
        for line in outcome.get("receipt", []):
            self.stdout.write(f"  {line}")
        for line in outcome.get("kept", []):
            self.stdout.write(f"  Kept: {line}")
        if request.kind == RightsRequest.Kind.ACCESS and outcome.get("emailed"):
            self.stdout.write("  The person has been emailed a link to download their copy.")
        elif outcome.get("emailed"):
            self.stdout.write("  The person has been emailed a receipt.")
        else:
            self.stdout.write("  No receipt could be emailed: the request has no address.")

    def _rectify(self, request: RightsRequest, assignments: list[str]) -> None:
        if request.kind != RightsRequest.Kind.RECTIFY:
            raise RightsError("not a rectification request")
        if request.contact is None:
            raise RightsError("we hold nobody under this address: fulfil it instead")
        values: dict[str, str] = {}
        for assignment in assignments:
            name, equals, value = assignment.partition("=")
            if not equals:
                raise CommandError(f"--set {name!r}: write FIELD=VALUE")
            values[name.strip()] = value
        form = RectifyForm(values)
        unknown = sorted(set(values) - set(form.fields))
        if unknown:
            allowed = ", ".join(form.fields) or "none"
            raise CommandError(
                f"--set: {', '.join(unknown)} cannot be corrected here (the policy allows: "
                f"{allowed})"
            )
        if not form.is_valid():
            name, errors = next(iter(form.errors.items()))
            raise CommandError(f"--set {name}: {' '.join(str(e) for e in errors)}")
        cleaned = {name: form.cleaned_data[name] for name in values}
        changed = do_rectify_contact(request.contact, cleaned, request=request, actor=ACTOR)
        said = ", ".join(changed) if changed else "nothing needed changing"
        self.stdout.write(f"Request #{request.pk}: corrected ({said}); a receipt has been sent.")

    def _package(self, request: RightsRequest, output: Path) -> None:
        try:
            # Personal data: readable by this user only, and never over an existing file.
            descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{output}: already exists") from None
        except OSError as exc:
            raise CommandError(f"{output}: cannot write it ({exc.strerror})") from None
        try:
            data = do_export_package(request, actor=ACTOR)
        except BaseException:
            os.close(descriptor)
            output.unlink(missing_ok=True)  # ours: O_EXCL made it a moment ago
            raise
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        self.stdout.write(
            f"Request #{request.pk}: package written to {output} ({len(data):,} bytes)."
        )


def _request(pk: int) -> RightsRequest:
    request = RightsRequest.objects.select_related("contact").filter(pk=pk).first()
    if request is None:
        raise CommandError(f"no request #{pk}")
    return request


def queue_text(show: str) -> str:
    requests = RightsRequest.objects.filter(SHOW[show]).order_by("due_on", "pk")
    today = timezone.localdate()
    lines = []
    for r in requests.iterator():
        flag = {"overdue": "  OVERDUE", "near-due": "  due soon"}.get(urgency(r, today), "")
        received = timezone.localtime(r.received_at)
        lines.append(
            f"#{r.pk:<6} {r.kind:<8} {r.state:<12} received {received:%Y-%m-%d}  "
            f"due {r.due:%Y-%m-%d}  by {r.channel}{flag}"
        )
    if not lines:
        return {"open": "No open requests.", "closed": "No closed requests."}.get(
            show, "No requests."
        )
    return "\n".join(lines)


def request_text(r: RightsRequest) -> str:
    received = timezone.localtime(r.received_at)
    lines = [
        f"Request #{r.pk}: {KINDS[r.kind]}",
        f"  State:     {r.get_state_display()}",
        f"  Received:  {received:%-d %B %Y %H:%M} by {r.channel}",
        f"  Due:       {r.due:%-d %B %Y}"
        + (f" (extended: {r.extension_reason})" if r.extended_to else ""),
        f"  Address:   {r.email or '(cleared when the request was closed)'}",
        f"  Contact:   {f'#{r.contact_id}' if r.contact_id else 'none held under this address'}",
    ]
    if r.details:
        lines.append(f"  Details:   {r.details}")
    if r.refusal_reason:
        lines.append(f"  Refused:   {r.refusal_reason}")
    for line in (r.outcome or {}).get("receipt", []):
        lines.append(f"  Receipt:   {line}")
    entries = AuditEntry.objects.filter(
        object_type=RightsRequest._meta.label_lower, object_id=str(r.pk)
    ).select_related("actor")
    for e in entries.order_by("at", "pk"):
        who = e.actor.get_username() if e.actor else e.actor_label
        lines.append(f"  {timezone.localtime(e.at):%Y-%m-%d %H:%M}  {e.action}  ({who})")
    return "\n".join(lines)
