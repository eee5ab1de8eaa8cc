from django.core.management.base import BaseCommand, CommandError

from tidings.campaigns import engagement


class Command(BaseCommand):
    help = (
        "The contacts' engagement facts (latest open, click and campaign received) that the "
        "segments' opened_in(), clicked_in() and received_in() read: --rebuild recomputes them "
        "from the kept events and deliveries (after data was changed outside tidings)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true", help="recompute every contact's facts"
        )
        parser.add_argument(
            "--batch", type=int, default=50_000, help="contacts per transaction (default 50000)"
        )

    def handle(self, *args, rebuild: bool, batch: int, **options):
        if not rebuild:
            raise CommandError("nothing to do: give --rebuild")
        if batch < 1:
            raise CommandError("--batch must be at least 1")

        def progress(done: int, total: int) -> None:
            if options["verbosity"] > 1:
                self.stdout.write(f"{done:,} of {total:,} contacts")

        changed = engagement.rebuild(batch=batch, progress=progress)
        self.stdout.write(f"engagement facts rebuilt: {changed:,} contact(s) changed")
