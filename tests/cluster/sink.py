"""An SMTP sink for the cluster test (its own process): accepts every message and appends
"recipient<TAB>Message-ID" to a file before it answers 250.

    python -m tests.cluster.sink PORT FILE

The line is written and flushed before the "250 OK" goes back, so a delivery that a worker
records as sent (it records only after the 250) is always in the file by then: the test may
read the file the moment the campaign is finished.  (An earlier version buffered lines and
flushed them every 0.2 s; on a loaded machine the last messages of the campaign were still in
the buffer when the test counted, and they looked lost.)
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]+>)")


class Recorder:
    def __init__(self, path: str) -> None:
        self.file = Path(path).open("a", encoding="ascii")  # noqa: SIM115 - open for the run

    async def handle_DATA(self, server, session, envelope):
        found = MESSAGE_ID.search(envelope.content[:8192])
        message_id = found.group(1).decode("ascii", "replace") if found else "-"
        # handle_DATA runs on the controller's one event-loop thread: no lock is needed.
        self.file.writelines(f"{recipient}\t{message_id}\n" for recipient in envelope.rcpt_tos)
        self.file.flush()
        return "250 OK: queued"


def main() -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Recorder(path), hostname="127.0.0.1", port=port)
    controller.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
