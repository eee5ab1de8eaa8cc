"""DKIM signing (dkimpy) with keys kept in the data directory.

A key for a domain lives at ``<TIDINGS_DKIM_DIR>/<domain>/<selector>.pem`` (the directory
defaults to ``<data dir>/dkim``; the selector to ``TIDINGS_DKIM_SELECTOR``, default
``tidings``).  ``tidings dkim keygen example.com`` makes one and prints the DNS record to publish;
from then on every message whose From address is at that domain is signed.  To rotate: make a key
with a new selector, publish its record, then set ``TIDINGS_DKIM_SELECTOR`` to it.

The signature covers From, To, Subject, Date, Message-ID, the MIME headers, List-Id, Feedback-ID,
List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 asks for both of the last two), each listed
once more than it occurs so nobody can add one later without breaking it.  Canonicalization is
relaxed/simple.

Signing costs one RSA private-key operation per message.  dkimpy does it in pure Python: ~7.5 ms
for a 2048-bit key on this machine, which alone would hold a worker to ~130 messages a second.
So the RSA step is done by OpenSSL (``cryptography``): ~0.3 ms.  For our own messages (CRLF line
ends) the rest is done here too, with dkimpy's folding and canonicalisation of the signature
header itself (``DkimSigner._sign_crlf`` says why); anything else goes through dkimpy whole.
PKCS#1 v1.5 signatures are deterministic, so either way the header is byte for byte what
dkimpy would have made (tests compare them, and have ``dkim.verify`` check them).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import time
from functools import cache
from pathlib import Path

import dkim as dkimpy
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from django.conf import settings
from dkim.canonicalization import Relaxed, Simple

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
)

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SELECTOR = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class DkimError(ValueError):
    pass


def keys_dir() -> Path:
    configured = getattr(settings, "TIDINGS_DKIM_DIR", "")
    return Path(configured) if configured else Path(settings.DATA_DIR) / "dkim"


def default_selector() -> str:
    return getattr(settings, "TIDINGS_DKIM_SELECTOR", "") or "tidings"


def check_domain(domain: str) -> str:
    """The domain as DNS and DKIM name it; an internationalised one (``bücher.example``, as a
    sender's address keeps it) in its ASCII form (``xn--bcher-kva.example``): the form its
    records are published under, the ``d=`` of its signatures (RFC 8616) and, as
    ``messages.wire_address`` writes it, the From domain on the wire.  Raises DkimError."""
    domain = domain.strip().lower().rstrip(".")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise DkimError(f"not a domain name: {domain!r}") from None
    if not _DOMAIN.match(domain):
        raise DkimError(f"not a domain name: {domain!r}")
    return domain


def check_selector(selector: str) -> str:
    selector = selector.strip().lower()
    if not _SELECTOR.match(selector):
        raise DkimError(f"a selector is letters, digits and hyphens: {selector!r}")
    return selector


def key_path(domain: str, selector: str | None = None) -> Path:
    return (
        keys_dir() / check_domain(domain) / f"{check_selector(selector or default_selector())}.pem"
    )


# What a header field's name may be made of (dkimpy's parser: [\x21-\x7e] up to the colon).
_NAME_CHARS = bytes(range(0x21, 0x7F)).replace(b":", b"")
_WSP = re.compile(rb"[\t ]+")


class DkimSigner:
    """Signs messages from one domain with one key."""

    def __init__(self, domain: str, selector: str, private_key_pem: bytes) -> None:
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.key = private_key_pem
        self._rsa: rsa.RSAPrivateKey | None = None  # loaded at the first signature

    def __getstate__(self) -> dict:
        # Sent to builder processes (in a campaign's recipe): OpenSSL's key object does not
        # pickle, and each process loads its own from the PEM.
        return {**self.__dict__, "_rsa": None}

    def sign(
        self, message: bytes, headers: tuple[bytes, ...] = SIGNED_HEADERS, *, crlf: bool = False
    ) -> bytes:
        """The DKIM-Signature header line (CRLF-terminated) to put in front of ``message``;
        ``crlf``: its lines are known to end with CRLF, every one (``MessageFactory``'s).

        Messages with CRLF line ends (all of ours) are signed by ``_sign_crlf``: dkimpy's own
        steps, without its general-purpose parsing (see there).  Any other form goes to dkimpy.
        """
        end = message.find(b"\r\n\r\n")
        if end >= 0 and (crlf or message.count(b"\n") == message.count(b"\r\n")):
            signed = self._sign_crlf(message, end, headers)
            if signed is not None:
                return signed
        signer = dkimpy.DKIM(message, linesep=b"\r\n")  # another form: dkimpy parses it all
        present = {name.lower() for name, _ in signer.headers}
        return signer.sign(
            self.selector,
            self.domain,
            self.key,
            include_headers=_included(headers, present),
            canonicalize=(b"relaxed", b"simple"),
        )

    def _sign_crlf(self, message: bytes, end: int, headers: tuple[bytes, ...]) -> bytes | None:
        """What ``dkimpy.sign`` returns for ``message`` (relaxed/simple, rsa-sha256), byte for
        byte (tests/campaigns/test_dkim.py compares them, and has ``dkim.verify`` check both),
        or None when its header block is not plain enough for this path.

        Written here for speed: dkimpy spends about as long in Python as OpenSSL spends on the
        RSA signature (0.16 against 0.28 ms a message on this machine): it splits the header
        block with a regular expression, canonicalises every header field with two more (26
        substitutions a message), selects the signed ones with a loop per name, and goes
        through its generic tag machinery.  A CRLF message needs none of that: the fields are
        split at CRLFs not followed by white space, only the signed ones are canonicalised
        (their white space compressed only when there is any to compress), and the steps that
        touch the signature header itself (folding, the empty ``b=``, its canonical form) are
        dkimpy's own functions, so the header comes out exactly as dkimpy writes it."""
        fields: list[list[bytes]] = []
        for line in message[:end].split(b"\r\n"):
            if line[:1] in (b" ", b"\t"):
                if not fields:
                    return None
                fields[-1][1] += line + b"\r\n"
                continue
            name, colon, value = line.partition(b":")
            if not colon or not name or name.translate(None, _NAME_CHARS):
                return None  # dkimpy would refuse it, or skip an mbox "From " line: let it
            fields.append([name, value + b"\r\n"])
        canonical: dict[bytes, list[bytes]] = {}
        for name, value in fields:
            key = name.lower().rstrip()
            canonical.setdefault(key, []).append(value)
        include = _included(headers, canonical.keys())
        hasher = hashlib.sha256()
        taken: dict[bytes, int] = {}
        for key in include:  # each name's instances from the bottom up, as dkimpy selects
            instances = canonical[key]
            left = taken.get(key, len(instances))
            if left == 0:
                continue
            taken[key] = left - 1
            value = instances[left - 1].replace(b"\r\n", b"")
            if b"\t" in value or b"  " in value:
                value = _WSP.sub(b" ", value)
            hasher.update(key + b":" + value.strip() + b"\r\n")
        body = Simple.canonicalize_body(message[end + 4 :])
        fields_of_signature = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", b"relaxed/simple"),
            (b"d", self.domain),
            (b"i", b"@" + self.domain),
            (b"q", b"dns/txt"),
            (b"s", self.selector),
            (b"t", str(int(time.time())).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", base64.b64encode(hashlib.sha256(body).digest())),
            (b"b", b"0" * 60),
        ]
        name = b"DKIM-Signature"
        unsigned = b"; ".join(b"=".join(x) for x in fields_of_signature)
        unsigned = dkimpy.RE_BTAG.sub(b"\\1", dkimpy.fold(unsigned, namelen=len(name)))
        ((_, canonical_self),) = Relaxed.canonicalize_headers([(name, b" " + unsigned)])
        hasher.update(b"dkim-signature:" + canonical_self.rstrip())
        if self._rsa is None:
            loaded = serialization.load_pem_private_key(self.key, password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                return None
            self._rsa = loaded
        signature = self._rsa.sign(
            hasher.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
        )
        fields_of_signature[-1] = (b"b", base64.b64encode(signature))
        signed = b"; ".join(b"=".join(x) for x in fields_of_signature) + b"\r\n"
        return name + b": " + dkimpy.fold(signed, namelen=len(name), linesep=b"\r\n")


def _included(headers: tuple[bytes, ...], present) -> list[bytes]:
    """The h= list: each signed header present, and again (but To and Date) so that nobody can
    add one later without breaking the signature."""
    return [name for name in headers if name in present] + [
        name for name in headers if name not in (b"to", b"date") and name in present
    ]


@cache
def _signer(domain: str, selector: str, path: str, mtime: float) -> DkimSigner | None:
    return DkimSigner(domain, selector, Path(path).read_bytes())


def signer_for(from_address: str) -> DkimSigner | None:
    """The signer for mail from ``from_address``, or None when its domain has no key."""
    try:
        domain = check_domain(from_address.rpartition("@")[2].strip(" >"))
        path = key_path(domain)
    except DkimError:
        return None
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return _signer(domain, default_selector(), str(path), mtime)


def generate_key(domain: str, selector: str | None = None, *, bits: int = 2048, force=False):
    """Make an RSA key for ``domain``, store it (0600), and return (path, DNS record name, TXT
    value)."""
    path = key_path(domain, selector)
    if path.exists() and not force:
        raise DkimError(f"{path} exists already (a new selector rotates keys; or --force)")
    pem = _generate_rsa_pem(bits)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fp:
        fp.write(pem)
    name, value = dns_record(domain, selector, pem)
    return path, name, value


def dns_record(domain: str, selector: str | None, pem: bytes) -> tuple[str, str]:
    """(name, TXT value) of the record that publishes the public half of ``pem``."""
    public = _public_key_der(pem)
    name = f"{check_selector(selector or default_selector())}._domainkey.{check_domain(domain)}"
    return name, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"


def _generate_rsa_pem(bits: int) -> bytes:
    """A new RSA private key, PKCS#1 PEM (the form dkimpy reads)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _public_key_der(pem: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER of an RSA private key in PEM (what DNS publishes)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimError(f"not a usable private key: {exc}") from None
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- the RSA step, by OpenSSL -----------------------------------------------------------------
_pure_python_sign = dkimpy.RSASSA_PKCS1_v1_5_sign


@functools.lru_cache(maxsize=32)
def _openssl_key(n: int, e: int, d: int, p: int, q: int, dp: int, dq: int, qi: int):
    public = rsa.RSAPublicNumbers(e, n)
    return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()


def _rsa_sign_with_openssl(hash, private_key) -> bytes:
    """dkimpy's ``RSASSA_PKCS1_v1_5_sign`` (EMSA-PKCS1-v1_5 and the RSA operation) done by
    OpenSSL for SHA-256; anything else goes to dkimpy's own."""
    if hash.name.lower() != "sha256":
        return _pure_python_sign(hash, private_key)
    key = _openssl_key(
        private_key["modulus"],
        private_key["publicExponent"],
        private_key["privateExponent"],
        private_key["prime1"],
        private_key["prime2"],
        private_key["exponent1"],
        private_key["exponent2"],
        private_key["coefficient"],
    )
    return key.sign(hash.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


# dkimpy looks these up in its module at each signature: the one place where it can be given
# others.  Only signing changes, and only its speed: the RSA step by OpenSSL, and the key parsed
# once rather than for every message (~0.2 ms of ASN.1 in Python).
dkimpy.RSASSA_PKCS1_v1_5_sign = _rsa_sign_with_openssl
dkimpy.parse_pem_private_key = functools.lru_cache(maxsize=32)(dkimpy.parse_pem_private_key)
