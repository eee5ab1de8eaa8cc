"""Outgoing HTTP to addresses operators typed in (webhooks), without reaching the inside.

An owner who registers ``http://169.254.169.254/…`` or a public name that resolves to ``127.0.0.1``
must not make tidings post to the machine itself or to its private network (SSRF).  So:

* the host is resolved once, at send time, and *every* address it resolves to is checked: a name
  that answers one public and one private address is refused as a whole;
* loopback, private (RFC 1918, unique-local, carrier-grade NAT), link-local (cloud metadata),
  multicast, reserved, unspecified and every other non-global address are refused, for IPv4 and
  IPv6 alike, looking through IPv4-mapped (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``) and 6to4
  (``2002::/16``) addresses to the IPv4 address inside;
* the connection goes to exactly an address that was checked (the socket is opened on the IP,
  not the name), so a DNS server that answers differently on a second lookup (DNS rebinding)
  never gets that second lookup; the request still carries the name in ``Host`` and, for https,
  in SNI, and the certificate is verified against the name;
* redirects are answers, never followed;
* the whole exchange (connecting, sending, the answer's headers and body) has one deadline: a
  socket timeout alone bounds each read, so a receiver trickling a byte every few seconds held
  the worker for as long as it liked.

``TIDINGS_WEBHOOKS_ALLOW_PRIVATE`` lets an installation post to its own network (private and
loopback addresses); link-local, multicast, reserved and unspecified addresses stay refused.

Why not a library: requests/urllib3 re-resolve the name inside their connection pool, and the
ways to pin an address there (transport adapters, patched ``create_connection``) depend on their
internals; ``http.client`` opens its socket in one documented method, ``connect``, that a
subclass overrides.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Kinds of address TIDINGS_WEBHOOKS_ALLOW_PRIVATE lets through.
_PRIVATE_KINDS = frozenset({"loopback", "private", "shared"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")

_DESCRIPTIONS = {
    "unspecified": "the unspecified address",
    "loopback": "a loopback address (this machine)",
    "link-local": "a link-local address (such as a cloud metadata service)",
    "multicast": "a multicast address",
    "shared": "a carrier-grade NAT address (not on the public internet)",
    "private": "a private-network address",
    "reserved": "a reserved address",
    "non-global": "not a public internet address",
}


class TargetRefused(ValueError):
    """The address may not be posted to; ``str()`` says why, in words for the operator."""


def address_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public internet address (a key of ``_DESCRIPTIONS``), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner: ipaddress.IPv4Address | None = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is None and ip.teredo is not None:
            inner = ip.teredo[1]  # the client's address
        if inner is not None:
            inner_kind = address_kind(inner)
            if inner_kind is not None:
                return inner_kind
            if ip.ipv4_mapped is not None or ip in _NAT64:
                return None  # the IPv4 address inside is public, and that is where it goes
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-global"
    return None


def refusal(address: str, *, allow_private: bool, name: str = "") -> str | None:
    """The reason posting to ``address`` (an IP literal, which ``name`` resolved to, if given)
    is refused, or None if it is allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    kind = address_kind(ip)
    if kind is None or (allow_private and kind in _PRIVATE_KINDS):
        return None
    advice = (
        " (set TIDINGS_WEBHOOKS_ALLOW_PRIVATE=true to allow addresses on your own network)"
        if kind in _PRIVATE_KINDS
        else ""
    )
    what = f"{name} resolves to {ip}, which" if name else f"{ip}"
    return f"{what} is {_DESCRIPTIONS[kind]}; webhooks go only to public internet addresses{advice}"


@dataclass(frozen=True)
class Target:
    """Where a URL points, resolved and checked: connect only to ``addresses``."""

    scheme: str
    host: str  # the name as sent in Host and SNI (IDNA-encoded)
    port: int
    path: str  # path and query
    addresses: tuple[tuple[int, str], ...]  # (address family, IP), in resolver order


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL; ValueError (in words) when it is not one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise ValueError("must be an http(s) address")
    if parts.username or parts.password:
        raise ValueError("must not carry a user name or password")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValueError("has an invalid port") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError("has no host name")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("has an invalid host name") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port, path


def resolve(url: str, *, allow_private: bool) -> Target:
    """Look the URL's host up once and check every address.

    Raises ``TargetRefused`` (with the reason) for a refused address, ``ValueError`` for a URL
    that is not http(s), ``OSError`` (``socket.gaierror``) when the name does not resolve.
    """
    scheme, host, port, path = split_url(url)
    literal = _is_literal(host)
    if literal:  # an address is judged as written, even if it would not resolve
        reason = refusal(host.strip("[]"), allow_private=allow_private)
        if reason is not None:
            raise TargetRefused(reason)
    name = "" if literal else host
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[tuple[int, str]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        reason = refusal(address, allow_private=allow_private, name=name)
        if reason is not None:
            raise TargetRefused(reason)
        if (family, address) not in addresses:
            addresses.append((family, address))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "the name has no IPv4 or IPv6 address")
    return Target(scheme, host, port, path, tuple(addresses))


def check_url(url: str, *, allow_private: bool) -> str | None:
    """For a form: why this URL can never be posted to, or None.

    A name that does not resolve today is accepted (its DNS may not be set up yet); it is
    resolved and checked again before every delivery.
    """
    try:
        resolve(url, allow_private=allow_private)
    except (TargetRefused, ValueError) as exc:
        return str(exc)
    except OSError:
        return None
    return None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _open_socket(target: Target, deadline: float) -> socket.socket:
    """A TCP connection to the first checked address that answers (never a new lookup), before
    the ``deadline`` (``time.monotonic()``)."""
    error: OSError | None = None
    for family, ip in target.addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(left)
            sock.connect((ip, target.port))
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error or TimeoutError("no address answered in time")


class _PinnedHTTP(http.client.HTTPConnection):
    """http.client's connection with ``connect`` opening the socket on a checked address; the
    request line and ``Host`` header still name the host."""

    def __init__(self, target: Target, timeout: float, deadline: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target
        self.deadline = deadline

    def connect(self) -> None:
        self.sock = _open_socket(self.target, self.deadline)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """The same for https: TLS on the pinned socket, SNI and certificate check for the name."""

    def __init__(self, target: Target, timeout: float, deadline: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.target = target
        self.deadline = deadline

    def connect(self) -> None:
        sock = _open_socket(self.target, self.deadline)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.target.host)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes  # at most ``max_body`` bytes of it


def post(
    target: Target,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    max_body: int = 65536,
) -> Response:
    """POST ``body`` to a resolved ``target``; the answer's status, redirects included (never
    followed).  Raises ``OSError`` (and ``ssl.SSLError``, ``http.client.HTTPException``) when
    the exchange fails, ``TimeoutError`` when it is not over within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    connection: http.client.HTTPConnection = (
        _PinnedHTTPS(target, timeout, deadline)
        if target.scheme == "https"
        else _PinnedHTTP(target, timeout, deadline)
    )
    expired = threading.Event()

    def cut_off() -> None:
        # Shut the connection down under the reading thread: its read returns at once.  The
        # plain socket's shutdown, also for TLS (SSLSocket.shutdown would drop its state first).
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already: the exchange just ended
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, cut_off)
    watchdog.daemon = True
    watchdog.start()
    too_late = f"no complete answer within {timeout:g} s"
    try:
        connection.request("POST", target.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        answer = Response(response.status, response.read(max_body))
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise TimeoutError(too_late) from exc
        raise
    finally:
        watchdog.cancel()
        connection.close()
    if expired.is_set():  # cut off mid-headers, http.client takes the end of input as their end
        raise TimeoutError(too_late)
    return answer
