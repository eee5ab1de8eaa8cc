"""Tiny POP3 and IMAP servers on loopback for the bounce mailbox tests.

No maintained test-server library for these protocols exists on PyPI (pymap, an IMAP server, last
released in 2024 and is far more than a test needs), so these speak just the commands
``imaplib`` and ``poplib`` send when ``campaigns.bounces.mailbox`` reads a mailbox, over real
sockets, and keep the mailbox in memory: ``messages`` is what is still there.
"""

from __future__ import annotations

import re
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Mailbox:
    user: str = "bounces"
    password: str = "p@ss word"
    messages: list[bytes] = field(default_factory=list)
    logins: int = 0


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler, mailbox: Mailbox):
        super().__init__(("127.0.0.1", 0), handler)
        self.mailbox = mailbox
        self.lock = threading.Lock()


class _Running:
    def __init__(self, handler, mailbox: Mailbox):
        self.server = _Server(handler, mailbox)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# --- POP3 (RFC 1939) ----------------------------------------------------------------------------
class _Pop3Handler(socketserver.StreamRequestHandler):
    def send(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        box: Mailbox = self.server.mailbox
        deleted: set[int] = set()
        user = ""
        authorised = False
        self.send("+OK tiny POP3 ready")
        while line := self.rfile.readline():
            command, _, argument = line.decode().strip().partition(" ")
            command = command.upper()
            if command == "CAPA":
                self.send("+OK\r\nUSER\r\nUIDL\r\n.")
            elif command == "USER":
                user = argument
                self.send("+OK")
            elif command == "PASS":
                authorised = user == box.user and argument == box.password
                box.logins += authorised
                self.send("+OK logged in" if authorised else "-ERR [AUTH] invalid login")
            elif not authorised and command != "QUIT":
                self.send("-ERR log in first")
            elif command == "STAT":
                self.send(f"+OK {len(box.messages)} {sum(map(len, box.messages))}")
            elif command == "RETR":
                data = box.messages[int(argument) - 1]
                lines = [b"." + ln if ln.startswith(b".") else ln for ln in data.split(b"\r\n")]
                self.wfile.write(b"+OK\r\n" + b"\r\n".join(lines).rstrip(b"\r\n") + b"\r\n.\r\n")
            elif command == "DELE":
                deleted.add(int(argument) - 1)
                self.send("+OK marked")
            elif command == "QUIT":
                with self.server.lock:
                    box.messages[:] = [m for i, m in enumerate(box.messages) if i not in deleted]
                self.send("+OK bye")
                return
            else:
                self.send("-ERR unknown command")
        # Connection dropped without QUIT: nothing is deleted (RFC 1939's UPDATE state).


def pop3_server(mailbox: Mailbox) -> _Running:
    return _Running(_Pop3Handler, mailbox)


# --- IMAP (the part of RFC 3501 imaplib uses here) -----------------------------------------------
_ARGS = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


class _ImapHandler(socketserver.StreamRequestHandler):
    def send(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def handle(self) -> None:
        box: Mailbox = self.server.mailbox
        flagged: set[int] = set()  # uids marked \Deleted
        uids = list(range(1, len(box.messages) + 1))
        authorised = False
        self.send("* OK [CAPABILITY IMAP4rev1] tiny IMAP ready")
        while line := self.rfile.readline():
            tag, _, rest = line.decode().strip().partition(" ")
            words = [a or b for a, b in _ARGS.findall(rest)]
            command = words[0].upper() if words else ""
            if command == "UID":
                command = "UID " + words[1].upper()
                words = words[1:]
            if command == "CAPABILITY":
                self.send("* CAPABILITY IMAP4rev1")
                self.send(f"{tag} OK done")
            elif command == "LOGIN":
                authorised = words[1:3] == [box.user, box.password]
                box.logins += authorised
                self.send(f"{tag} OK logged in" if authorised else f"{tag} NO [AUTH] invalid")
            elif command == "LOGOUT":
                self.send("* BYE")
                self.send(f"{tag} OK bye")
                return
            elif not authorised:
                self.send(f"{tag} NO log in first")
            elif command == "SELECT":
                if words[1] != "INBOX":
                    self.send(f"{tag} NO no such folder")
                    continue
                self.send(f"* {len(box.messages)} EXISTS")
                self.send(r"* FLAGS (\Deleted \Seen)")
                self.send(f"{tag} OK [READ-WRITE] selected")
            elif command == "UID SEARCH":
                found = " ".join(str(u) for u in uids if u not in flagged)
                self.send(f"* SEARCH {found}".rstrip())
                self.send(f"{tag} OK done")
            elif command == "UID FETCH":
                uid = int(words[1])
                data = box.messages[uids.index(uid)]
                self.send(f"* {uids.index(uid) + 1} FETCH (UID {uid} BODY[] {{{len(data)}}}")
                self.wfile.write(data + b")\r\n")
                self.send(f"{tag} OK done")
            elif command == "UID STORE":
                flagged.add(int(words[1]))
                self.send(f"{tag} OK stored")
            elif command == "EXPUNGE":
                with self.server.lock:
                    for uid in sorted(flagged, reverse=True):
                        index = uids.index(uid)
                        del box.messages[index]
                        del uids[index]
                        self.send(f"* {index + 1} EXPUNGE")
                flagged.clear()
                self.send(f"{tag} OK expunged")
            elif command == "CLOSE":
                self.send(f"{tag} OK closed")
            else:
                self.send(f"{tag} BAD unknown command")


def imap_server(mailbox: Mailbox) -> _Running:
    return _Running(_ImapHandler, mailbox)
