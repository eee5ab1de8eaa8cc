"""A real DNS server on loopback for the deliverability tests (dnslib), serving zones a test
writes, and a "black hole" address that never answers (for time-outs).

``LocalDNS(zone_text)`` serves the zone over UDP and TCP on one free port (answers longer than
512 bytes, such as a 2048-bit DKIM key, make resolvers retry over TCP); ``.address`` is the
``host:port`` to put into ``TIDINGS_DNS_RESOLVER``.  Names that exist with other record types
answer NOERROR with no data (NODATA), as a real server does; unknown names answer NXDOMAIN.
CNAMEs are followed to the end of their chain, as a recursive resolver does.
``fail(name)`` answers SERVFAIL for a name, ``stall(name)`` never answers for it (a time-out).
"""

from __future__ import annotations

import socket
import threading

from dnslib import QTYPE, RCODE, RR, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Zone(BaseResolver):
    def __init__(self, zone: str) -> None:
        self.records = list(RR.fromZone(zone))
        self.lock = threading.Lock()
        self.failing: set[str] = set()  # names answered with SERVFAIL
        self.stalled: set[str] = set()  # names never answered (the asker times out)

    def replace(self, zone: str) -> None:
        with self.lock:
            self.records = list(RR.fromZone(zone))

    def resolve(self, request, handler):
        reply = request.reply()
        qname = request.q.qname
        qtype = QTYPE[request.q.qtype]
        name = str(qname).rstrip(".").lower()
        if name in self.stalled:
            raise DNSError("stalled")  # dnslib sends no reply: the asker times out
        if name in self.failing:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        with self.lock:
            records = list(self.records)
        # As a recursive resolver answers: the CNAME chain followed to its end inside the
        # zone, and NXDOMAIN when it ends at a name that does not exist (RFC 6604 §2.1: the
        # rcode is the last name's), as when an ESP's DKIM key behind a CNAME was removed.
        name_asked, seen = qname, set()
        while True:
            found = [rr for rr in records if rr.rname == name_asked]
            if not found:
                reply.header.rcode = RCODE.NXDOMAIN
                break
            aliases = [rr for rr in found if QTYPE[rr.rtype] == "CNAME"]
            if aliases and qtype not in ("CNAME", "ANY"):
                reply.add_answer(aliases[0])
                name_asked = aliases[0].rdata.label
                if str(name_asked) in seen:  # a loop: what a resolver gives up on
                    reply.header.rcode = RCODE.SERVFAIL
                    break
                seen.add(str(name_asked))
                continue
            for rr in found:
                if QTYPE[rr.rtype] == qtype or qtype == "ANY":
                    reply.add_answer(rr)
            break
        return reply


class _Quiet(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data")


class LocalDNS:
    """A zone served on 127.0.0.1 (UDP and TCP, one port).  Use as a context manager."""

    def __init__(self, zone: str) -> None:
        self.resolver = _Zone(zone)
        for _ in range(20):
            udp = DNSServer(self.resolver, address="127.0.0.1", port=0, logger=_Quiet())
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    self.resolver, address="127.0.0.1", port=port, tcp=True, logger=_Quiet()
                )
            except OSError:
                udp.server.server_close()
                continue
            self.udp, self.tcp, self.port = udp, tcp, port
            break
        else:  # pragma: no cover - the machine has no free port pairs
            raise RuntimeError("no free port for a local DNS server")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serve(self, zone: str) -> None:
        """Serve another zone from now on (the daily re-check sees a changed record)."""
        self.resolver.replace(zone)

    def fail(self, *names: str) -> None:
        """Answer SERVFAIL for ``names`` from now on (a broken authoritative server)."""
        self.resolver.failing = {n.rstrip(".").lower() for n in names}

    def stall(self, *names: str) -> None:
        """Never answer in time for ``names`` from now on (an unreachable authoritative server)."""
        self.resolver.stalled = {n.rstrip(".").lower() for n in names}

    def __enter__(self) -> LocalDNS:
        self.udp.start_thread()
        self.tcp.start_thread()
        return self

    def __exit__(self, *exc) -> None:
        # Both at once: each shutdown waits for its loop's next poll (half a second).
        stops = [threading.Thread(target=s.server.shutdown) for s in (self.udp, self.tcp)]
        for stop in stops:
            stop.start()
        for stop in stops:
            stop.join()
        for server in (self.udp, self.tcp):
            server.server.server_close()


class BlackHole:
    """A UDP and TCP address that accepts queries and never answers: every look-up times out."""

    def __enter__(self) -> BlackHole:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def questions(self) -> set[tuple[str, str]]:
        """The (name, type) pairs asked so far, from the queries waiting unread on the socket."""
        asked = set()
        self.udp.setblocking(False)
        while True:
            try:
                data = self.udp.recv(4096)
            except BlockingIOError:
                return asked
            question = DNSRecord.parse(data).q
            asked.add((str(question.qname), QTYPE[question.qtype]))

    def __exit__(self, *exc) -> None:
        self.udp.close()
