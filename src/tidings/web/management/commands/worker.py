from django.core.management import call_command
from django.core.management.base import BaseCommand

from tidings.web.scheduler import SchedulerThread


class Command(BaseCommand):
    help = "Run background work: queued tasks (imports, exports...) and periodic jobs."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
        parser.add_argument("--batch", action="store_true", help="exit when the queue is empty")
        parser.add_argument(
            "--no-scheduler", action="store_true", help="do not enqueue periodic jobs"
        )

    def handle(self, *args, interval, batch, no_scheduler, **options):
        scheduler = None
        if not (batch or no_scheduler):
            scheduler = SchedulerThread()
            scheduler.start()
        try:
            # django-tasks-db's worker loop: claims task rows, runs them, records results.
            call_command(
                "db_worker", interval=interval, batch=batch, verbosity=options["verbosity"]
            )
        finally:
            if scheduler is not None:
                scheduler.stop()
