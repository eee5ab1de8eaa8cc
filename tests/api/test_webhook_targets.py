"""Webhooks never reach inside the installation (SSRF): refused addresses, DNS rebinding,
redirects, and the setting that lets an installation post to its own network.

Name resolution is replaced at the socket level (``socket.getaddrinfo``), the way a DNS server
that lies would answer; connections go to a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from django.urls import reverse

from tests.operators import make_operator
from tidings import signals
from tidings.api.actions import EndpointInvalid, do_create_webhook_endpoint
from tidings.api.models import WebhookDelivery, WebhookEndpoint
from tidings.api.webhooks import send_due
from tidings.lib.outbound import refusal

from .test_webhooks import Receiver

pytestmark = pytest.mark.django_db

_real_getaddrinfo = socket.getaddrinfo


class LyingResolver:
    """``socket.getaddrinfo`` for made-up names: each answers its list of addresses in turn (the
    last one again once the list is used up); every other name goes to the real resolver."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        self.asked.append(name)
        turn = self.asked.count(name) - 1
        address = self.answers[name][min(turn, len(self.answers[name]) - 1)]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port or 0), 0, 0) if ":" in address else (address, int(port or 0))
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]


@pytest.fixture
def dns(monkeypatch) -> Iterator[LyingResolver]:
    resolver = LyingResolver({})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    yield resolver


@pytest.fixture
def connections(monkeypatch) -> list[tuple]:
    """Every TCP connection attempt's address; those off this machine fail at once, as they
    would without internet access, so the test never waits on a timeout."""
    attempts: list[tuple] = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        attempts.append(address)
        if address[0] not in {"127.0.0.1", "::1"}:
            raise ConnectionRefusedError(111, "Connection refused (test: no internet)")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def endpoint(url: str) -> WebhookEndpoint:
    return do_create_webhook_endpoint(url=url, events=["campaign.finished"], actor=None)


def announce() -> WebhookDelivery:
    signals.campaign_finished.send(sender=None, campaign_id=7)
    send_due()
    return WebhookDelivery.objects.get()


# --- which addresses ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 (an address refused, not bound)
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2001:db8::1",
    ],
)
def test_addresses_inside_or_off_the_public_internet_are_refused(address):
    assert refusal(address, allow_private=False) is not None


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address):
    assert refusal(address, allow_private=False) is None


def test_the_setting_lets_private_and_loopback_addresses_through_but_not_metadata_or_multicast():
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.10", "fd00::5", "::1", "100.64.1.1"):
        assert refusal(address, allow_private=True) is None, address
    for address in ("169.254.169.254", "fe80::1", "224.0.0.1", "0.0.0.0", "240.0.0.1"):  # noqa: S104
        assert refusal(address, allow_private=True) is not None, address


# --- registering -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0/",
        "http://0177.0.0.1/",  # octal
        "http://[fe80::1%25eth0]/",  # link-local with a zone the resolver does not know
    ],
)
def test_registering_an_internal_address_is_refused_with_the_reason(url):
    with pytest.raises(EndpointInvalid) as caught:
        endpoint(url)
    [problem] = caught.value.problems
    assert problem.startswith("url: ")
    assert "public internet addresses" in problem
    assert not WebhookEndpoint.objects.exists()


def test_a_public_name_that_resolves_to_loopback_is_refused_when_registered(dns):
    dns.answers["hooks.partner.example"] = ["127.0.0.1"]
    with pytest.raises(EndpointInvalid) as caught:
        endpoint("https://hooks.partner.example/in")
    assert "hooks.partner.example resolves to 127.0.0.1" in caught.value.problems[0]
    assert "loopback" in caught.value.problems[0]


def test_the_form_says_why_an_internal_address_is_refused(client):
    client.force_login(make_operator("olga", "owner"))
    response = client.post(
        reverse("api_settings:webhooks"),
        {"url": "http://169.254.169.254/latest/", "events": ["campaign.finished"]},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["url"]
    assert any("link-local" in e and "public internet" in e for e in errors)
    assert "link-local" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_name_that_does_not_resolve_yet_can_be_registered_and_is_checked_when_sending(
    dns, connections
):
    # The DNS record may not exist yet when the endpoint is set up.
    made = endpoint("https://not-yet.partner.example/in")
    dns.answers["not-yet.partner.example"] = ["10.9.8.7"]
    delivery = announce()
    assert delivery.last_status_code is None
    assert "refused: not-yet.partner.example resolves to 10.9.8.7" in delivery.last_error
    assert connections == []
    assert made.pk == delivery.endpoint_id


# --- sending -----------------------------------------------------------------------------------
def test_an_endpoint_whose_name_now_resolves_to_loopback_gets_nothing(dns, receiver, connections):
    dns.answers["hooks.partner.example"] = ["93.184.215.14"]
    endpoint(f"http://hooks.partner.example:{receiver.server.server_port}/hook")
    dns.answers["hooks.partner.example"] = ["127.0.0.1"]
    dns.asked.clear()

    delivery = announce()

    assert receiver.received == []
    assert connections == []
    assert delivery.status == "pending"  # retried later: the record may be fixed
    assert "refused" in delivery.last_error and "loopback" in delivery.last_error


def test_a_name_with_one_public_and_one_private_address_is_refused(monkeypatch, receiver):
    def both(host, port, *args, **kwargs):
        if host != "split.partner.example":
            return _real_getaddrinfo(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", both)
    with pytest.raises(EndpointInvalid):
        endpoint(f"http://split.partner.example:{receiver.server.server_port}/")


def test_dns_rebinding_does_not_reach_loopback(dns, receiver, connections):
    """The name answers a public address on the first lookup and 127.0.0.1 on every later one:
    the post goes to the address that was checked, and the name is looked up only once."""
    host = "rebind.partner.example"
    url = f"http://{host}:{receiver.server.server_port}/hook"
    dns.answers[host] = ["93.184.215.14"]
    endpoint(url)  # registering looks it up (public)
    dns.answers[host] = ["93.184.215.14", "127.0.0.1"]
    dns.asked.clear()

    delivery = announce()

    assert dns.asked == [host], "the name must be looked up exactly once per attempt"
    assert connections == [("93.184.215.14", receiver.server.server_port)]
    assert receiver.received == []
    assert delivery.last_status_code is None
    assert "ConnectionRefusedError" in delivery.last_error


def test_the_request_names_the_host_while_connecting_to_the_checked_address(
    dns, receiver, settings, connections
):
    settings.TIDINGS_WEBHOOKS_ALLOW_PRIVATE = True
    host = "hooks.internal.example"
    dns.answers[host] = ["127.0.0.1"]
    endpoint(f"http://{host}:{receiver.server.server_port}/in?x=1")

    delivery = announce()

    assert delivery.status == "succeeded"
    [(headers, _body)] = receiver.received
    assert headers["host"] == f"{host}:{receiver.server.server_port}"
    assert connections == [("127.0.0.1", receiver.server.server_port)]


def make_ca_and_certificate(folder, name: str):
    """A certificate authority (written to ``folder/ca.pem``) and a server certificate for
    ``name`` that it signed (``folder/server.pem``, ``folder/server.key``)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def build(subject, issuer, key, signer, *, ca: bool, san: str | None = None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        if san:  # Python 3.13's default context is strict: SAN and AKI required
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("tidings test CA", "tidings test CA", ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    server = build(name, "tidings test CA", key, ca_key, ca=False, san=name)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


class TlsReceiver:
    """An https server on 127.0.0.1 with the given certificate; records the SNI names and the
    requests it gets."""

    def __init__(self, folder) -> None:
        import ssl

        self.names: list[str | None] = []
        self.received: list[dict[str, str]] = []
        receiver = self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "server.pem", folder / "server.key")
        context.sni_callback = lambda sock, name, ctx: receiver.names.append(name)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("certificate_for", ["tls.internal.example", "someone-else.example"])
def test_https_goes_to_the_checked_address_with_the_name_in_sni_and_the_certificate_check(
    certificate_for, dns, settings, connections, tmp_path, monkeypatch
):
    """The socket is opened on 127.0.0.1, yet TLS speaks to the name: SNI carries it and the
    certificate must be for it (a trusted certificate for another name is refused)."""
    settings.TIDINGS_WEBHOOKS_ALLOW_PRIVATE = True
    make_ca_and_certificate(tmp_path, certificate_for)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # OpenSSL's trust store
    server = TlsReceiver(tmp_path)
    host = "tls.internal.example"
    dns.answers[host] = ["127.0.0.1"]
    try:
        endpoint(f"https://{host}:{server.port}/in")
        delivery = announce()
    finally:
        server.close()

    assert connections == [("127.0.0.1", server.port)]
    assert server.names == [host]
    if certificate_for == host:
        assert delivery.status == "succeeded", delivery.last_error
        assert server.received[0]["host"] == f"{host}:{server.port}"
    else:
        assert delivery.last_status_code is None
        assert "SSLCertVerificationError" in delivery.last_error
        assert "someone-else.example" in delivery.last_error or "match" in delivery.last_error
        assert server.received == []


def test_a_redirect_is_recorded_and_not_followed(receiver, settings):
    settings.TIDINGS_WEBHOOKS_ALLOW_PRIVATE = True
    receiver.status = 302
    endpoint(receiver.url)
    delivery = announce()
    assert delivery.last_status_code == 302
    assert "not followed" in delivery.last_error
    assert len(receiver.received) == 1


def test_without_the_setting_a_local_receiver_is_never_posted_to(receiver, settings):
    settings.TIDINGS_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint(receiver.url)  # registered while the setting was on
    settings.TIDINGS_WEBHOOKS_ALLOW_PRIVATE = False
    delivery = announce()
    assert receiver.received == []
    assert delivery.last_status_code is None
    assert "TIDINGS_WEBHOOKS_ALLOW_PRIVATE" in delivery.last_error


def test_the_reason_for_a_name_reads_as_one_sentence(dns):
    dns.answers["hooks.partner.example"] = ["127.0.0.1"]
    with pytest.raises(EndpointInvalid) as caught:
        endpoint("https://hooks.partner.example/in")
    assert caught.value.problems[0] == (
        "url: hooks.partner.example resolves to 127.0.0.1, which is a loopback address (this "
        "machine); webhooks go only to public internet addresses (set "
        "TIDINGS_WEBHOOKS_ALLOW_PRIVATE=true to allow addresses on your own network)"
    )


def test_a_receiver_answering_garbage_is_recorded_in_one_clean_line(settings, caplog):
    """A receiver that does not speak HTTP: the error names what went wrong in one line — its
    garbage (with its line ending and control characters) is neither stored nor logged."""
    import socketserver
    import threading

    class Garbage(socketserver.StreamRequestHandler):
        def handle(self):
            self.rfile.readline()
            self.wfile.write(b"SSH-2.0-OpenSSH_9.2\x1b[31m\r\n")

    server = socketserver.TCPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.TIDINGS_WEBHOOKS_ALLOW_PRIVATE = True
        endpoint(f"http://127.0.0.1:{server.server_address[1]}/in")
        with caplog.at_level("INFO", logger="tidings.api.webhooks"):
            delivery = announce()
    finally:
        server.shutdown()
        server.server_close()
    assert delivery.last_status_code is None
    assert delivery.last_error == "the receiver did not answer in HTTP (no status line)"
    assert "OpenSSH" not in caplog.text and "\x1b" not in caplog.text
