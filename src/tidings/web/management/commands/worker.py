import gc
import logging
import signal
import threading
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tidings.crm.inbound.lmtp import DEFAULT_LISTEN
from tidings.lib import arguments, running
from tidings.lib.startup import require_usable_database
from tidings.web.scheduler import SchedulerThread

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run background work: mail delivery (campaigns, confirmations), queued tasks (imports, "
        "exports...) and periodic jobs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval", type=arguments.seconds, default=1.0, help="seconds between polls"
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="run the queued tasks, send the mail that is due, and exit",
        )
        parser.add_argument(
            "--no-scheduler", action="store_true", help="do not enqueue periodic jobs"
        )
        parser.add_argument(
            "--lmtp",
            nargs="?",
            const=DEFAULT_LISTEN,
            default="",
            metavar="HOST:PORT|unix:PATH",
            help="also receive the support and bounce addresses' mail over LMTP, as `tidings "
            f"inbound serve` does (default {DEFAULT_LISTEN})",
        )
        sending = parser.add_mutually_exclusive_group()  # together they would do nothing
        sending.add_argument("--no-delivery", action="store_true", help="do not send mail")
        sending.add_argument(
            "--delivery-only",
            action="store_true",
            help="only send mail: no tasks, no periodic jobs (a dedicated sending process)",
        )

    def handle(
        self, *args, interval, batch, no_scheduler, no_delivery, delivery_only, lmtp, **options
    ):
        if lmtp and batch:
            raise CommandError("--lmtp receives mail until stopped: not with --batch")
        require_usable_database()
        running.hold()  # `tidings restore --replace` refuses while we run (lib/running.py)
        receiver = _start_lmtp(lmtp) if lmtp else None
        try:
            self._run(
                interval=interval,
                batch=batch,
                no_scheduler=no_scheduler,
                no_delivery=no_delivery,
                delivery_only=delivery_only,
                **options,
            )
        finally:
            if receiver is not None:
                receiver.stop()  # answers the messages in hand first

    def _run(self, *, interval, batch, no_scheduler, no_delivery, delivery_only, **options):
        from tidings.campaigns.engine import DeliveryThread, deliver_pending
        from tidings.web.task_worker import TaskHeartbeat

        if batch:
            if not delivery_only:
                from tidings.web.task_worker import requeue_orphaned_tasks

                requeue_orphaned_tasks()
                heartbeat = TaskHeartbeat()  # its tasks can be taken back from anywhere
                heartbeat.start()
                try:
                    call_command(
                        "db_worker", interval=interval, batch=True, verbosity=options["verbosity"]
                    )
                finally:
                    heartbeat.stop()
            if not no_delivery:
                deliver_pending(max_seconds=None)
            from tidings.lib.ingest import flush

            flush()
            return
        from django.conf import settings

        from tidings.lib.ingest import DrainThread

        # With Redis, tracking/analytics rows from every web process wait there for us.
        drain = DrainThread() if settings.TIDINGS_REDIS_URL and not delivery_only else None
        if drain is not None:
            drain.start()
        sender = None if no_delivery else DeliveryThread()
        if sender is not None:
            # What start-up made (modules, settings, URL patterns) lives as long as the process:
            # out of the collector's sight, a full collection no longer walks it all again.
            gc.freeze()
            sender.start()
        hurry = threading.Event()  # set by a second SIGTERM/Ctrl-C: stop now (task_worker.py)
        if delivery_only:
            self._wait_for_signal(sender, hurry)
            return
        scheduler = None
        if not no_scheduler:
            scheduler = SchedulerThread()
            scheduler.start()
        # Whether or not it sends mail, a heartbeat of its own: a worker on another machine can
        # tell when the task it was running is to run again (task_worker.py).
        heartbeat = TaskHeartbeat()
        try:
            heartbeat.start()
            # django-tasks-db's worker loop: claims task rows, runs them, records results.  On
            # SIGTERM it finishes its task and exits; then the senders finish their messages.
            # A second signal interrupts the task and puts it back in the queue.
            self._run_tasks(interval, hurry)
        finally:
            _on_signal(hurry.set)  # from now on any signal means: stop now
            heartbeat.stop()
            if scheduler is not None:
                scheduler.stop()
            if drain is not None:
                drain.stop()
            if sender is not None:
                sender.stop(hurry=hurry)

    def _run_tasks(self, interval: float, hurry: threading.Event) -> None:
        """django-tasks-db's loop, started again when it gave up on a locked database.

        It tolerates a lock while claiming a task, but not on opening the claim's transaction
        (SQLite's BEGIN IMMEDIATE, after the busy timeout): one long writer (a big import, a
        mail piped in) then ended the whole worker, and with it the sending of mail."""
        from django.db import OperationalError, close_old_connections
        from django.utils.crypto import get_random_string
        from django_tasks_db.utils import is_locked_database_exception

        from tidings.web.task_worker import run_tasks, worker_name

        # db_worker's random name, after where the process runs (its tasks can be taken back
        # when it is gone: task_worker.requeue_orphaned_tasks).
        worker_id = worker_name(get_random_string(12))
        while True:
            try:
                run_tasks(interval=interval, hurry=hurry, worker_id=worker_id)
                return
            except OperationalError as exc:
                if not is_locked_database_exception(exc):
                    raise
                logger.warning("worker: the database stayed locked; carrying on")
                close_old_connections()
                time.sleep(max(interval, 0.1))

    def _wait_for_signal(self, sender, hurry: threading.Event) -> None:
        stop = threading.Event()

        def handler() -> None:
            (hurry if stop.is_set() else stop).set()  # the second signal: stop now

        _on_signal(handler)
        while not stop.is_set() and sender is not None and sender.is_alive():
            stop.wait(0.5)
        if sender is not None:
            sender.stop(hurry=hurry)


def _start_lmtp(listen: str):
    """The LMTP server of `tidings inbound serve`, in a thread of this process: screening's
    engine is built once for it and for the mailbox fetches and tasks that screen."""
    from tidings.crm.inbound import lmtp

    try:
        address = lmtp.parse_listen(listen)
        lmtp.require_base_url()
        receiver = lmtp.Receiver(address)
        receiver.start()
    except lmtp.ListenError as exc:
        raise CommandError(str(exc)) from None
    logger.info("worker: receiving mail over LMTP on %s", receiver.address)
    return receiver


def _on_signal(action) -> None:
    """Call ``action()`` on SIGTERM and SIGINT (Ctrl-C)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: action())
