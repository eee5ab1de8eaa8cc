"""An SMTP sink for the cluster test (its own process): accepts every message and appends
"recipient<TAB>Message-ID" to a file, flushed every 0.2 s.

    python -m tests.cluster.sink PORT FILE
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]+>)")


class Recorder:
    def __init__(self, path: str) -> None:
        self.file = Path(path).open("a", encoding="ascii")  # noqa: SIM115 - open for the run
        self.lines: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        found = MESSAGE_ID.search(envelope.content[:8192])
        message_id = found.group(1).decode("ascii", "replace") if found else "-"
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.lines.append(f"{recipient}\t{message_id}\n")
        return "250 OK: queued"

    def flush_forever(self) -> None:
        while True:
            time.sleep(0.2)
            with self.lock:
                lines, self.lines = self.lines, []
            if lines:
                self.file.writelines(lines)
                self.file.flush()


def main() -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    port, path = int(sys.argv[1]), sys.argv[2]
    recorder = Recorder(path)
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    threading.Thread(target=recorder.flush_forever, daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
