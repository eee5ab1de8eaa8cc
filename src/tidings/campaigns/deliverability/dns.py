"""DNS look-ups for the domain checks: one wrapper around dnspython (and the resolver checkdmarc
is given), configurable so tests and air-gapped installations ask a server of their choosing.

``TIDINGS_DNS_RESOLVER`` names the server(s): ``127.0.0.1:5353`` or ``192.0.2.53`` (port 53), or
several separated by commas; blank means the system's resolvers (``/etc/resolv.conf``).
``TIDINGS_DNS_TIMEOUT`` (default 3 s) bounds each look-up.

A look-up ends in one of three ways, and the difference matters: an answer; "no such record"
(NXDOMAIN, or the name exists without that type), which is a fact a check can fail on; or "could
not ask" (a time-out, a server failure, no reachable server), which is ``DnsUnavailable`` and
makes a check "could not check" — never "failed", and never a reason to stop sending.  Only a
time-out stops the look-ups that would follow (each would wait as long again); a server failure
for one name (SERVFAIL from one broken zone) is quick, and the other checks are still made.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dns.exception
import dns.inet
import dns.nameserver
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.resolver
import dns.reversename
import dns.rrset
from django.conf import settings


class DnsUnavailable(Exception):
    """The DNS could not be asked (time-out, SERVFAIL, no server): "could not check"."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class DnsSettings:
    nameservers: tuple[tuple[str, int], ...]  # () = the system's resolvers
    timeout: float

    @classmethod
    def from_settings(cls) -> DnsSettings:
        return cls(
            nameservers=parse_resolvers(getattr(settings, "TIDINGS_DNS_RESOLVER", "") or ""),
            timeout=float(getattr(settings, "TIDINGS_DNS_TIMEOUT", None) or 3.0),
        )

    def nameserver_objects(self) -> list[dns.nameserver.Nameserver] | None:
        """What checkdmarc's ``nameservers=`` takes (None: the system's)."""
        if not self.nameservers:
            return None
        return [dns.nameserver.Do53Nameserver(host, port) for host, port in self.nameservers]

    def resolver(
        self, kind: type[dns.resolver.Resolver] = dns.resolver.Resolver
    ) -> dns.resolver.Resolver:
        if self.nameservers:
            resolver = kind(configure=False)
            resolver.nameservers = self.nameserver_objects() or []
        else:
            resolver = kind()
        resolver.timeout = min(1.0, self.timeout)  # per try; retried within the lifetime
        resolver.lifetime = self.timeout
        resolver.cache = None  # every check asks afresh: records change
        return resolver


class SpfResolver(dns.resolver.Resolver):
    """A resolver for checkdmarc's SPF look-ups that hands back every TXT record beginning with
    the SPF version tag, in whatever case it was published (``V=SPF1 …``), with the tag written
    ``v=spf1``; nothing else in the record changes, and its strings keep their boundaries.

    RFC 7208 §12 writes the version as the ABNF string "v=spf1", and ABNF strings are
    case-insensitive (RFC 5234 §2.3), so ``V=SPF1 include:… -all`` is a valid record and
    receivers honour it.  checkdmarc 6.0.4 (the newest) finds such a record (its look-up compares
    in lower case) but its grammar matches the tag case-sensitively and calls it a syntax error,
    also when the record is reached through ``include:`` or ``redirect=``, which checkdmarc
    follows itself.  Its ``resolver=`` argument is the one place every one of those look-ups
    passes through, so the tag is normalised here rather than by rewriting its parser."""

    def resolve(self, qname, rdtype=dns.rdatatype.A, *args, **kwargs):
        answer = super().resolve(qname, rdtype, *args, **kwargs)
        if answer.rrset is not None and answer.rdtype == dns.rdatatype.TXT:
            answer.rrset = _spf_tags_lowered(answer.rrset)
        return answer


def _spf_tags_lowered(rrset: dns.rrset.RRset) -> dns.rrset.RRset:
    lowered = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
    for rdata in rrset:
        joined = b"".join(rdata.strings)
        if (
            joined[:6].lower() == b"v=spf1"
            and joined[6:7] in (b"", b" ")
            and joined[:6] != b"v=spf1"
        ):
            joined = b"v=spf1" + joined[6:]
            strings, start = [], 0
            for part in rdata.strings:  # the same boundaries as published
                strings.append(joined[start : start + len(part)])
                start += len(part)
            rdata = dns.rdtypes.ANY.TXT.TXT(rdata.rdclass, rdata.rdtype, strings)
        lowered.add(rdata, rrset.ttl)
    return lowered


def parse_resolvers(value: str) -> tuple[tuple[str, int], ...]:
    """``"127.0.0.1:5353, [::1]:53, 192.0.2.1"`` → ((host, port), ...).  Raises ValueError."""
    found = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        host, port = part, 53
        if part.startswith("["):  # [IPv6]:port
            host, _, rest = part[1:].partition("]")
            if rest.startswith(":"):
                port = _port(rest[1:], part)
        elif part.count(":") == 1:
            host, raw = part.split(":")
            port = _port(raw, part)
        if not dns.inet.is_address(host):
            raise ValueError(f"TIDINGS_DNS_RESOLVER: {part!r} is not an IP address[:port]")
        found.append((host, port))
    return tuple(found)


def _port(raw: str, part: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"TIDINGS_DNS_RESOLVER: {part!r} has no valid port")
    return int(raw)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what caused it (checkdmarc wraps dnspython's errors in its own)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "error", None)
        if isinstance(inner, BaseException) and inner is not current:
            current = inner
            continue
        current = current.__cause__ or current.__context__


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) means the DNS could not be asked, rather than
    that the record is missing or wrong."""
    for current in _causes(error):
        if isinstance(current, DnsUnavailable | dns.exception.Timeout | dns.resolver.NoNameservers):
            return True
    # checkdmarc raises some errors with only dnspython's message left in them.
    text = str(error).lower()
    return any(
        phrase in text
        for phrase in ("timed out", "lifetime expired", "servfail", "failed to answer")
    )


def timed_out(error: BaseException) -> bool:
    """True when the DNS did not answer in time (rather than answering with a failure, such as
    SERVFAIL from one broken zone, which is quick and says nothing about other names)."""
    for current in _causes(error):
        if isinstance(current, dns.exception.Timeout) or getattr(current, "timed_out", False):
            return True
    text = str(error).lower()
    return "timed out" in text or "lifetime expired" in text


class Lookup:
    """Plain look-ups through the configured resolver."""

    def __init__(self, config: DnsSettings | None = None) -> None:
        self.config = config or DnsSettings.from_settings()
        self.resolver = self.config.resolver()

    def _ask(self, name: str, rdtype: str) -> list:
        try:
            return list(self.resolver.resolve(name, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as exc:
            raise DnsUnavailable(f"{name} {rdtype}: {type(exc).__name__}", timed_out=True) from exc
        except dns.resolver.NoNameservers as exc:
            raise DnsUnavailable(f"{name} {rdtype}: {type(exc).__name__}") from exc
        except dns.exception.DNSException as exc:  # a malformed name, a broken answer
            raise DnsUnavailable(f"{name} {rdtype}: {exc}") from exc

    def txt(self, name: str) -> list[str]:
        """The TXT records at ``name``, each its strings joined (RFC 7208 §3.3)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._ask(name, "TXT")]

    def alias_end(self, name: str) -> tuple[str, bool] | None:
        """Where the CNAME chain starting at ``name`` ends, and whether that name exists:
        ``(target, exists)``, or None when ``name`` is no alias.  Read from the resolver's own
        answer (it follows the chain; RFC 6604: NXDOMAIN is about the chain's last name)."""
        try:
            answer = self.resolver.resolve(name, "TXT", search=False)
        except dns.resolver.NXDOMAIN as exc:
            end, exists = exc.canonical_name, False
        except dns.resolver.NoAnswer as exc:
            end, exists = exc.response().canonical_name(), True
        except dns.exception.Timeout as exc:
            raise DnsUnavailable(f"{name} TXT: {type(exc).__name__}", timed_out=True) from exc
        except dns.exception.DNSException as exc:
            raise DnsUnavailable(f"{name} TXT: {type(exc).__name__}") from exc
        else:
            end, exists = answer.canonical_name, True
        target = end.to_text().rstrip(".").lower()
        if target == name.rstrip(".").lower():
            return None
        return target, exists

    def mx(self, name: str) -> list[tuple[int, str]]:
        """The MX records at ``name``: (preference, host without the final dot; "" for RFC
        7505's null MX, whose host is the root)."""
        return [
            (r.preference, r.exchange.to_text().rstrip(".").lower()) for r in self._ask(name, "MX")
        ]

    def addresses(self, name: str) -> list[str]:
        return [r.address for kind in ("A", "AAAA") for r in self._ask(name, kind)]

    def ptr(self, address: str) -> list[str]:
        name = dns.reversename.from_address(address)
        return [r.target.to_text().rstrip(".").lower() for r in self._ask(str(name), "PTR")]


def sending_addresses_from(hosts: Sequence[str], lookup: Lookup) -> list[str]:
    """The IP addresses of ``hosts`` (names or addresses), loopback and local-network ones left
    out: a relay on this machine or the local network is not what receivers see."""
    found: list[str] = []
    for host in hosts:
        try:
            candidates = [str(ipaddress.ip_address(host))]
        except ValueError:
            candidates = lookup.addresses(host)
        for address in candidates:
            if _local(address):
                continue
            if address not in found:
                found.append(address)
    return found


# RFC 1918 and IPv6 unique-local networks.  Not ``is_private``: that also covers the
# documentation ranges (192.0.2.0/24...), which are what examples and tests use.
_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _local(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
        return True
    return any(ip in network for network in _LOCAL_NETWORKS if network.version == ip.version)
