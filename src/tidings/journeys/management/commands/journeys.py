"""``tidings journeys export NAME`` / ``load FILE`` / ``simulate NAME --contact ADDRESS``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tidings.audience.emails import InvalidEmail, normalise_email
from tidings.audience.models import Contact
from tidings.journeys.files import JourneyFileError, export_journey, load_journey
from tidings.journeys.models import Journey
from tidings.journeys.simulate import simulate, timeline_text
from tidings.lib.arguments import days_ahead


class Command(BaseCommand):
    help = "Journeys as code: export one as TOML, load a file, simulate a person's way through."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="print a journey as TOML")
        export.add_argument("name")
        load = sub.add_parser("load", help="create or edit the journey a TOML file describes")
        load.add_argument("file")
        sim = sub.add_parser("simulate", help="what would happen to a person starting now")
        sim.add_argument("name")
        sim.add_argument("--contact", required=True, help="the person's email address")
        sim.add_argument(
            "--days",
            type=days_ahead,
            default=90,
            help="how far ahead to follow them: 1 to 365 days (default 90)",
        )

    def handle(self, *args, action, **options):
        if action == "export":
            self.stdout.write(export_journey(_journey(options["name"])), ending="")
        elif action == "load":
            self._load(options["file"])
        else:
            contact = _contact(options["contact"])
            moments = simulate(_journey(options["name"]), contact, days=options["days"])
            self.stdout.write(timeline_text(moments))

    def _load(self, file: str) -> None:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file}: cannot read it ({type(exc).__name__})") from None
        try:
            journey, created = load_journey(text)
        except JourneyFileError as exc:
            raise CommandError("\n".join(f"{file}: {p}" for p in exc.problems)) from None
        verb = "created" if created else "updated"
        self.stdout.write(f'Journey "{journey.name}" {verb} (version {journey.version}).')


def _journey(name: str) -> Journey:
    journey = Journey.objects.filter(name=name).first()
    if journey is None:
        raise CommandError(f'no journey is called "{name}"')
    return journey


def _contact(address: str) -> Contact:
    try:
        email = normalise_email(address)
    except InvalidEmail:
        raise CommandError("--contact: not an email address") from None
    contact = Contact.objects.with_email(email).first()
    if contact is None:
        raise CommandError("--contact: no contact has that address")
    return contact
