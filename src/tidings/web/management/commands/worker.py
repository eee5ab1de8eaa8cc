from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run background work: queued tasks (imports, exports, scheduled jobs)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
        parser.add_argument("--batch", action="store_true", help="exit when the queue is empty")

    def handle(self, *args, interval, batch, **options):
        # django-tasks-db's worker loop: claims task rows, runs them, records results.
        call_command("db_worker", interval=interval, batch=batch, verbosity=options["verbosity"])
