import copy
import errno
import io
import logging
import socket
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tidings.lib import arguments, running
from tidings.lib.startup import require_usable_database
from tidings.web.demo import follow_serving_address, serving_base_url

# How long serve waits for its background worker to stop: deploy/systemd/tidings-worker.service's
# TimeoutStopSec (a task may take two minutes to finish).
WORKER_STOP_SECONDS = 150
# How long a web process may take to stop after Ctrl-C or SIGTERM (finishing the requests it is
# answering) before it is killed.  granian's default is to wait for ever, so one web process
# that never stopped kept `tidings serve` (and `systemctl stop`) waiting with it.
WEB_STOP_SECONDS = 30


def shared_counters_warning(workers: int, redis_url: str) -> str:
    """What to say when several web processes would each keep their own rate-limit counts
    (the cache is local memory without TIDINGS_REDIS_URL): every public form's limit, the cookie
    banner's and the API's become ``workers`` times looser, and a visitor is counted by
    whichever process answers.  Sign-in lockouts are not affected: they are in the database."""
    if workers <= 1 or redis_url:
        return ""
    return (
        f"warning: {workers} web processes without TIDINGS_REDIS_URL: each keeps its own "
        f"rate-limit counts, so the public forms', the cookie banner's and the API's limits "
        f"are up to {workers} times looser (sign-in lockouts are shared: they are in the "
        "database). Set TIDINGS_REDIS_URL, or serve with --workers 1."
    )


# granian's own loggers: "_granian" (its start, workers, shutdown; the name its Rust side logs
# under too) and "granian.access" (access lines; serve leaves them off).
GRANIAN_LOGGERS = ("_granian", "granian.access")

logger = logging.getLogger("tidings.serve")


def granian_log_config(logging_settings: dict) -> dict:
    """granian's ``log_dictconfig``: tidings' own ``LOGGING``, with granian's loggers sending
    their records up to the root logger's handler, so they are formatted as every other line
    (one JSON object per line with ``TIDINGS_LOG_FORMAT=json``), through the same filters.

    granian's default configuration gives its loggers a handler of their own that printed
    "[INFO] Starting granian" to stdout, plain text among the JSON lines.  granian merges this
    dict shallowly over its default (``loggers`` replaced whole) and applies it in the serving
    process and in each web worker process it starts."""
    config = copy.deepcopy(logging_settings)
    loggers = config.setdefault("loggers", {})
    for name in GRANIAN_LOGGERS:
        loggers[name] = {"handlers": [], "propagate": True}
    return config


def granian_log_level(logging_settings: dict):
    """granian sets its logger's level itself: TIDINGS_LOG_LEVEL's (the root logger's), so that
    WARNING quiets its start-up lines as it quiets ours."""
    from granian.log import LogLevels

    level = str(logging_settings.get("root", {}).get("level", "INFO")).lower()
    return LogLevels(level) if level in LogLevels._value2member_map_ else LogLevels.info


def port_in_use(host: str, port: int) -> str:
    """Why tidings cannot serve on ``host``:``port``, or "" when it can.

    granian binds with SO_REUSEPORT, so a second ``tidings serve`` on a port one already holds
    started without a word, and the kernel then shared the connections between the two: every
    other request, an API token included, went to the other installation.  A plain bind
    (without SO_REUSEPORT) fails on such a port; a port merely in TIME_WAIT does not stop it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use (another tidings serve?); stop it "
                "or choose another --port"
            )
        return ""  # anything else (no such address here) is granian's to report
    finally:
        probe.close()
    return ""


class Command(BaseCommand):
    help = "Serve tidings with granian (WSGI); --with-worker also runs a background worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", type=arguments.listen_address, default="127.0.0.1")
        parser.add_argument("--port", type=arguments.port, default=8000)
        parser.add_argument(
            "--workers", type=arguments.positive_int, default=1, help="web worker processes"
        )
        parser.add_argument(
            "--threads", type=arguments.positive_int, default=4, help="threads per web worker"
        )
        parser.add_argument(
            "--with-worker",
            action="store_true",
            help="also run `tidings worker` alongside, started again if it stops",
        )

    def handle(self, *args, host, port, workers, threads, with_worker, **options):
        from granian import Granian
        from granian.constants import Interfaces

        taken = port_in_use(host, port)
        if taken:
            raise CommandError(taken)
        # Links in pages and mail point where we serve, unless TIDINGS_BASE_URL is set.
        base_url = follow_serving_address(host, port)
        from django.conf import settings

        self.json_lines = settings.TIDINGS_LOG_FORMAT == "json"
        found, problems = io.StringIO(), io.StringIO()
        call_command("check", fail_level="ERROR", stdout=found, stderr=problems)
        self._say(logging.INFO, found.getvalue())
        self._say(logging.WARNING, problems.getvalue())
        require_usable_database()

        self._say(logging.WARNING, shared_counters_warning(workers, settings.TIDINGS_REDIS_URL))
        running.hold()  # `tidings restore --replace` refuses while we run (lib/running.py)
        # whitenoise serves from STATIC_ROOT in production; collecting takes well under a second.
        call_command("collectstatic", interactive=False, verbosity=0)
        worker = None
        if with_worker:
            # `tidings worker`, started again if it stops while we serve (web/worker_keeper.py)
            worker = subprocess.Popen([sys.executable, "-m", "tidings.web.worker_keeper"])
        self._say(
            logging.INFO,
            f"tidings is serving on {serving_base_url(host, port)}/  (Ctrl-C stops it); "
            f"links in pages and mail use {base_url}/",
        )
        try:
            Granian(
                "tidings.wsgi:application",
                address=host,
                port=port,
                interface=Interfaces.WSGI,
                websockets=False,  # WSGI has none (granian said so at every start)
                workers=workers,
                blocking_threads=threads,
                log_dictconfig=granian_log_config(settings.LOGGING),
                log_level=granian_log_level(settings.LOGGING),
                workers_kill_timeout=WEB_STOP_SECONDS,
            ).serve()
        finally:
            if worker is not None:
                self._stop_worker(worker)

    def _say(self, level: int, text: str) -> None:
        """What serve itself has to say: with ``TIDINGS_LOG_FORMAT=json`` a log record (one
        JSON line, as granian's and the application's), else plain text as before (warnings on
        standard error)."""
        text = text.strip()
        if not text:
            return
        if self.json_lines:
            logger.log(level, text)
        elif level >= logging.WARNING:
            self.stderr.write(text)
        else:
            self.stdout.write(text)

    def _stop_worker(self, keeper: subprocess.Popen) -> None:
        """The keeper passes SIGTERM on and waits for the worker, which finishes its task first
        (as long as systemd's TimeoutStopSec in deploy/ allows a worker); a second Ctrl-C stops
        waiting."""
        keeper.terminate()
        try:
            keeper.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            self.stdout.write("waiting for the background worker to finish its task…")
        try:
            keeper.wait(timeout=WORKER_STOP_SECONDS)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            keeper.kill()
