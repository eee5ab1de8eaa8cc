"""`tidings serve --with-worker`'s background worker, started again when it dies.

The worker sends the campaigns, starts the scheduled ones and decides A/B tests.  Run beside the
web server as a child process, it used to be started once: when it died (a crash, the kernel's
out-of-memory killer, a ``kill -9``) the pages kept working and nothing was sent any more, with
no sign of it until someone restarted the server.  A thread now watches it and starts a new one
a few seconds later (rows the dead one had claimed are taken back by the new one when their
lease runs out, as after any crash).  An installation that runs ``tidings worker`` under its own
supervisor (systemd, a container runtime) does not need this.

Hand-written rather than a process manager (supervisord, honcho): one child process and a loop.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Sequence

logger = logging.getLogger(__name__)


class SupervisedProcess:
    """``command`` running in a child process, started again ``restart_after`` seconds after it
    exits, until ``stop()``."""

    def __init__(
        self, command: Sequence[str], *, restart_after: float = 5.0, poll: float = 1.0
    ) -> None:
        self.command = list(command)
        self.restart_after = restart_after
        self.poll = poll
        self.restarts = 0
        self._stopping = threading.Event()
        self.process = subprocess.Popen(self.command)  # noqa: S603 - our own command line
        self._thread = threading.Thread(target=self._watch, name="worker-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll):
            code = self.process.poll()
            if code is None:
                continue
            logger.warning(
                "the background worker stopped (exit status %s); starting it again in %g s",
                code,
                self.restart_after,
            )
            if self._stopping.wait(self.restart_after):
                return
            self.process = subprocess.Popen(self.command)  # noqa: S603 - our own command line
            self.restarts += 1

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching, then ask the worker to finish (SIGTERM: it finishes its batch)."""
        self._stopping.set()
        self._thread.join()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
