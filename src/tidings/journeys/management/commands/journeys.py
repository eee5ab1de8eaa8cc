"""``tidings journeys export NAME`` / ``load FILE`` / ``simulate NAME --contact ADDRESS`` /
``activate NAME`` / ``pause NAME`` / ``resume NAME``.

Every step is audited as ``cli``.  With ``TIDINGS_SEND_NEEDS_SECOND_OPERATOR`` nothing is
confirmed from here (the command line is no operator): ``activate`` and ``resume`` go ahead
only when a second operator confirmed the journey as it is on its page, and loading a file
that changes what a confirmed journey sends voids that confirmation (a running journey pauses).
``load --operator USERNAME`` records that operator as the journey's editor (its creator, for a
new one) and audits the load as theirs, so they cannot be the one who confirms it; with
four-eyes sending a load without ``--operator`` is refused, since a change by nobody could be
confirmed by its own author.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tidings.audience.emails import InvalidEmail, normalise_email
from tidings.audience.models import Contact
from tidings.journeys.actions import (
    InvalidTransition,
    JourneyNotReady,
    do_activate,
    do_pause,
    do_resume,
)
from tidings.journeys.files import JourneyFileError, export_journey, load_journey, read_toml
from tidings.journeys.models import Journey
from tidings.journeys.simulate import simulate, timeline_text
from tidings.lib.access import has_permission
from tidings.lib.arguments import days_ahead
from tidings.lib.four_eyes import enforced


class Command(BaseCommand):
    help = "Journeys as code: export one as TOML, load a file, simulate a person's way through."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="print a journey as TOML")
        export.add_argument("name")
        load = sub.add_parser("load", help="create or edit the journey a TOML file describes")
        load.add_argument("file")
        load.add_argument(
            "--operator",
            metavar="USERNAME",
            help="the operator who wrote the file: recorded as the journey's editor (required "
            "with TIDINGS_SEND_NEEDS_SECOND_OPERATOR, so they cannot also confirm it)",
        )
        sim = sub.add_parser("simulate", help="what would happen to a person starting now")
        sim.add_argument("name")
        sim.add_argument("--contact", required=True, help="the person's email address")
        sim.add_argument(
            "--days",
            type=days_ahead,
            default=90,
            help="how far ahead to follow them: 1 to 365 days (default 90)",
        )
        for name, text in (
            ("activate", "switch a draft or paused journey on (with four-eyes: once confirmed)"),
            ("pause", "nobody moves on or enters until it is resumed"),
            ("resume", "carry on a paused journey (with four-eyes: once confirmed)"),
        ):
            sub.add_parser(name, help=text).add_argument("name")

    def handle(self, *args, action, **options):
        if action == "export":
            self.stdout.write(export_journey(_journey(options["name"])), ending="")
        elif action == "load":
            self._load(options["file"], options.get("operator"))
        elif action in _BUTTONS:
            journey = _journey(options["name"])
            act, done = _BUTTONS[action]
            try:
                act(journey, actor=ACTOR)
            except InvalidTransition as exc:
                raise CommandError(f'journey "{journey.name}": {exc}') from None
            except JourneyNotReady as exc:
                reasons = "; ".join(p.message for p in exc.problems)
                raise CommandError(f'journey "{journey.name}" cannot run: {reasons}') from None
            self.stdout.write(f'Journey "{journey.name}": {done}')
        else:
            contact = _contact(options["contact"])
            moments = simulate(_journey(options["name"]), contact, days=options["days"])
            self.stdout.write(timeline_text(moments))

    def _load(self, file: str, username: str | None) -> None:
        actor = _operator(username) if username else ACTOR
        if username is None and enforced():
            raise CommandError(
                "--operator USERNAME is needed: sending needs a second operator here, and a "
                "journey loaded by nobody could be confirmed by whoever wrote it"
            )
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file}: cannot read it ({type(exc).__name__})") from None
        if username and not has_permission(actor, "send") and _started(text):
            raise CommandError(
                f'--operator: "{username}" may not change a journey that was started (it sends '
                "to whoever enters next: only an operator who may send can change it)"
            )
        try:
            journey, created = load_journey(text, actor=actor)
        except JourneyFileError as exc:
            raise CommandError("\n".join(f"{file}: {p}" for p in exc.problems)) from None
        verb = "created" if created else "updated"
        self.stdout.write(f'Journey "{journey.name}" {verb} (version {journey.version}).')
        if journey.paused_reason and journey.status == Journey.Status.PAUSED:
            self.stdout.write(f"It is paused: {journey.shown_paused_reason}.")


ACTOR = "cli"
_BUTTONS = {
    "activate": (do_activate, "active: people who trigger it now enter it."),
    "pause": (do_pause, "paused: nobody moves on or enters until you resume it."),
    "resume": (do_resume, "resumed."),
}


def _journey(name: str) -> Journey:
    journey = Journey.objects.filter(name=name).first()
    if journey is None:
        raise CommandError(f'no journey is called "{name}"')
    return journey


def _operator(username: str) -> Any:
    """The active operator called ``username`` who may edit journeys (the content permission)."""
    user = get_user_model().objects.filter(username=username, is_active=True, is_staff=True).first()
    if user is None:
        raise CommandError(f'--operator: no active operator is called "{username}"')
    if not has_permission(user, "content"):
        raise CommandError(
            f'--operator: "{username}" may not edit journeys (no content permission)'
        )
    return user


def _started(text: str) -> bool:
    """Whether the file names a journey that exists and is no longer a draft."""
    try:
        name = read_toml(text).get("name")
    except ValueError:
        return False  # load_journey says what is wrong with it
    if not isinstance(name, str):
        return False
    journey = Journey.objects.filter(name=name.strip()).first()
    return journey is not None and journey.status != Journey.Status.DRAFT


def _contact(address: str) -> Contact:
    try:
        email = normalise_email(address)
    except InvalidEmail:
        raise CommandError("--contact: not an email address") from None
    contact = Contact.objects.with_email(email).first()
    if contact is None:
        raise CommandError("--contact: no contact has that address")
    return contact
