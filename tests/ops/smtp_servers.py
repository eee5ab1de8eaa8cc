"""Real SMTP servers (aiosmtpd) for the doctor's checks: plain, STARTTLS, STARTTLS with AUTH."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.campaigns.delivery_helpers import free_port

USER, PASSWORD = "mailer", "s3cret-pass"


def self_signed(directory: Path) -> ssl.SSLContext:
    """A TLS context with a fresh self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class _Handler:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


class Server:
    """``with Server(tls=..., auth=...) as s: s.url(...)``"""

    def __init__(self, tmp: Path | None = None, *, tls: bool = False, auth: bool = False):
        self.port = free_port()
        options: dict = {}
        if tls:
            assert tmp is not None
            options.update(tls_context=self_signed(tmp), require_starttls=True)
        if auth:
            options.update(authenticator=_authenticate, auth_require_tls=tls)
        self.controller = Controller(_Handler(), hostname="127.0.0.1", port=self.port, **options)

    def __enter__(self) -> Server:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def url(self, *, user: str = "", password: str = "", tls: str = "none") -> str:
        credentials = f"{user}:{password}@" if user else ""
        verify = "&verify=no" if tls == "starttls" else ""
        return f"smtp://{credentials}127.0.0.1:{self.port}?tls={tls}{verify}"
