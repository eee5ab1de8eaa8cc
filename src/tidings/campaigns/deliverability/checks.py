"""Domain health: will Gmail, Yahoo and Microsoft accept mail From this domain, sent from here?

``check_domain(domain)`` asks the DNS (``dns.py``: the configured resolver) and returns a
``DomainHealth``: one ``Check`` per requirement, each passed, failed, "could not check", or a
note, and for each one that is not passed one sentence saying what record to publish.

=============  ========  ===========================================================================
check          required  passes when
=============  ========  ===========================================================================
spf            yes       one ``v=spf1`` TXT record at the envelope domain, it parses, it needs at
                         most 10 DNS look-ups (RFC 7208 §4.6.4), and it authorises the addresses
                         mail leaves from, where those are known
dkim           yes       the one public key at ``<selector>._domainkey.<domain>`` is tidings'
                         own key (``tidings dkim keygen``) — or, for an ESP's selector, any key —
                         and an RSA key has at least 1024 bits (under 2048: a warning); a
                         CNAME with no key behind it is named with its target
dmarc          yes       a ``v=DMARC1`` record at ``_dmarc.<domain>`` (or its organisational
                         domain) that parses; ``p=none`` passes, as Gmail and Yahoo accept it
alignment      yes       the From domain aligns with DKIM (tidings signs as the From domain) or
                         with SPF (the envelope domain, strictly or relaxed as ``aspf`` says)
dmarc_rua      no        the DMARC record asks for aggregate reports (``rua``)
rdns           yes       every known sending address has a PTR name that resolves back to it
mx             no        the envelope (bounce) domain takes mail: an MX record, or an address
                         (RFC 5321's implicit MX), and no null MX (RFC 7505)
mta_sts        no        a ``v=STSv1`` record at ``_mta-sts.<domain>`` that parses (an ``id`` of
                         1–32 letters or digits, RFC 8461 §3.1)
tls_rpt        no        a ``v=TLSRPTv1`` record at ``_smtp._tls.<domain>``
bimi           no (note) a BIMI record at ``default._bimi.<domain>``
=============  ========  ===========================================================================

Parsing is checkdmarc's (SPF, DMARC, MTA-STS, TLS-RPT, BIMI) and dkimpy's (the DKIM tag list):
nothing here parses a record by hand.  What is ours is the judgement: which addresses an SPF
record authorises is read from the tree checkdmarc parsed (``_spf_authorises``), because neither
library evaluates a record for an address.  MTA-STS is judged by its TXT record; its policy file
(an HTTPS fetch from ``mta-sts.<domain>``) is not downloaded.

A look-up that timed out makes its check ``unknown`` ("could not check"), never ``fail``; the
public suffix list checkdmarc uses is the snapshot shipped inside ``publicsuffixlist`` (nothing
is fetched at run time).
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import checkdmarc.utils
from checkdmarc.bimi import BIMIError, query_bimi_record
from checkdmarc.dmarc import (
    DMARCError,
    MultipleDMARCRecords,
    parse_dmarc_record,
    query_dmarc_record,
)
from checkdmarc.mta_sts import (
    InvalidSTSTagValue,
    MTASTSError,
    parse_mta_sts_record,
    query_mta_sts_record,
)
from checkdmarc.smtp_tls_reporting import (
    SMTPTLSReportingError,
    query_smtp_tls_reporting_record,
)
from checkdmarc.spf import (
    MultipleSPFRTXTRecords,
    SPFError,
    SPFRecordNotFound,
    SPFSyntaxError,
    parse_spf_record,
    query_spf_record,
)
from cryptography.hazmat.primitives import serialization
from dkim.crypto import UnparsableKeyError, parse_public_key
from dkim.util import InvalidTagValueList, parse_tag_value

from .. import dkim as tidings_dkim
from .dns import (
    DnsSettings,
    DnsUnavailable,
    Lookup,
    SpfResolver,
    is_unavailable,
    sending_addresses_from,
    timed_out,
)
from .health import FAIL, INFO, NOT_APPLICABLE, PASS, UNKNOWN, WARN, Check, DomainHealth

MAX_SPF_LOOKUPS = 10


@dataclass
class _Context:
    domain: str
    envelope_domain: str
    selector: str
    esp_selector: bool
    sending_ips: list[str]
    ips_known_why: str
    dns: DnsSettings
    lookup: Lookup
    dmarc_tags: dict[str, Any] | None = None  # set by _dmarc, read by the alignment check
    dmarc_domain: str = ""  # where the DMARC record was found (the domain, or its org domain)
    # Once a look-up timed out, the rest are not tried: each would wait as long again, and the
    # answer ("could not check") would be the same.  A SERVFAIL does not set it: it is quick,
    # and another name's zone may answer.
    unavailable: bool = False

    def kwargs(self) -> dict[str, Any]:
        """What every checkdmarc call is given: our resolver and time-out."""
        return {"nameservers": self.dns.nameserver_objects(), "timeout": self.dns.timeout}

    def spf_kwargs(self) -> dict[str, Any]:
        """What checkdmarc's SPF calls are given: a resolver that reads ``V=SPF1`` as ``v=spf1``
        in every record they look up, the included and redirected ones too."""
        return {"resolver": self.dns.resolver(SpfResolver), "timeout": self.dns.timeout}


def check_domain(
    domain: str,
    *,
    selector: str = "",
    envelope_domain: str = "",
    sending_hosts: Iterable[str] | None = None,
    dns_settings: DnsSettings | None = None,
) -> DomainHealth:
    """Every check for mail From ``domain``.

    ``selector``: the DKIM selector (blank: tidings' own, ``TIDINGS_DKIM_SELECTOR``); a selector
    tidings holds no key for is taken to be an ESP's.  ``envelope_domain``: the MAIL FROM domain
    (blank: ``domain``).  ``sending_hosts``: names or addresses mail leaves from (None: from the
    settings, see ``sending_hosts()``).
    """
    domain = tidings_dkim.check_domain(domain)
    own_selector = tidings_dkim.default_selector()
    selector = tidings_dkim.check_selector(selector) if selector else own_selector
    has_key = tidings_dkim.key_path(domain, selector).exists()
    config = dns_settings or DnsSettings.from_settings()
    lookup = Lookup(config)
    # checkdmarc keeps answers for minutes in a process-wide cache; a check must see what is
    # published now (the daily re-check, an operator pressing "check again" after a fix).
    checkdmarc.utils.DNS_CACHE.clear()
    health = DomainHealth(domain=domain, selector=selector)
    ips: list[str] = []
    why = ""
    hosts = list(sending_hosts) if sending_hosts is not None else configured_sending_hosts()
    try:
        ips = sending_addresses_from(hosts, lookup)
    except DnsUnavailable as exc:
        why = "the sending server's name could not be looked up"
        unavailable = exc.timed_out
    else:
        unavailable = False
    if not ips and not why:
        why = (
            "the address mail leaves from is not known (no SMTP server outside this network is "
            "configured): set TIDINGS_SENDING_IPS to check it"
        )
    health.sending_ips = ips
    ctx = _Context(
        domain=domain,
        envelope_domain=(envelope_domain or domain).lower(),
        selector=selector,
        esp_selector=selector != own_selector and not has_key,
        sending_ips=ips,
        ips_known_why=why,
        dns=config,
        lookup=lookup,
        unavailable=unavailable,
    )
    steps: list[Callable[[_Context], Check]] = [
        _spf,
        _dkim,
        _dmarc,
        _rdns,
        _mx,
        _mta_sts,
        _tls_rpt,
    ]
    for step in steps:
        health.checks.append(_guarded(step, ctx))
    dmarc_tags = ctx.dmarc_tags
    health.checks.insert(3, _alignment(ctx, health, dmarc_tags))
    health.checks.insert(4, _dmarc_rua(ctx, dmarc_tags, health.get("dmarc")))
    health.checks.append(_guarded(_bimi, ctx))
    return health


_LABELS = {
    "spf": "SPF",
    "dkim": "DKIM",
    "dmarc": "DMARC",
    "alignment": "DMARC alignment",
    "dmarc_rua": "DMARC reports (rua)",
    "rdns": "Reverse DNS of the sending server",
    "mx": "Bounce domain takes mail (MX)",
    "mta_sts": "MTA-STS",
    "tls_rpt": "TLS reporting (TLS-RPT)",
    "bimi": "BIMI (brand logo)",
}
_REQUIRED = {"spf", "dkim", "dmarc", "alignment", "rdns"}


def _check(key: str, status: str, detail: str, fix: str = "") -> Check:
    return Check(key, _LABELS[key], status, key in _REQUIRED, detail, fix if status != PASS else "")


def _reason(exc: Exception) -> str:
    """A library's message as the middle of our sentence: without its own closing full stop."""
    return " ".join(str(exc).split()).rstrip(".")


def _guarded(step: Callable[[_Context], Check], ctx: _Context) -> Check:
    """Run one check; a DNS that could not be asked makes it "could not check"."""
    key = step.__name__.lstrip("_")
    if ctx.unavailable:
        return _check(key, UNKNOWN, _NO_ANSWER_IN_TIME)
    try:
        return step(ctx)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        if timed_out(exc):
            ctx.unavailable = True
            return _check(key, UNKNOWN, _NO_ANSWER_IN_TIME)
        # A quick failure (SERVFAIL from one broken zone): this check only; the others ask
        # other names.
        return _check(key, UNKNOWN, _SERVER_FAILED)


_NO_ANSWER_IN_TIME = (
    "Could not check: the DNS did not answer in time. Sending is not affected; it is checked "
    "again later."
)
_SERVER_FAILED = (
    "Could not check: the DNS answered with a server failure (SERVFAIL) for a record this check "
    "needs. Sending is not affected; it is checked again later."
)


def configured_sending_hosts() -> list[str]:
    """``TIDINGS_SENDING_IPS`` when set, else the host names of the SMTP transports."""
    from urllib.parse import urlsplit

    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    explicit = [p.strip() for p in (settings.TIDINGS_SENDING_IPS or "").split(",") if p.strip()]
    if explicit:
        return explicit
    from ..transports.config import transport_configs

    try:
        configs = transport_configs()
    except ImproperlyConfigured:
        return []
    return [urlsplit(c.url).hostname or "" for c in configs if c.kind == "smtp"]


# --- SPF ----------------------------------------------------------------------------------------
def _spf(ctx: _Context) -> Check:
    domain = ctx.envelope_domain
    suggestion = _spf_suggestion(ctx)
    try:
        record = query_spf_record(domain, **ctx.spf_kwargs())["record"]
    except MultipleSPFRTXTRecords:
        return _check(
            "spf",
            FAIL,
            f"{domain} has more than one SPF record, which makes SPF fail everywhere.",
            f"Merge them into one TXT record at {domain}, such as {suggestion}.",
        )
    except SPFRecordNotFound as exc:
        if is_unavailable(exc):
            raise
        return _check(
            "spf",
            FAIL,
            f"No SPF record at {domain}.",
            f"Publish a TXT record at {domain}: {suggestion}.",
        )
    try:
        parsed = parse_spf_record(record, domain, ignore_too_many_lookups=True, **ctx.spf_kwargs())
    except SPFSyntaxError as exc:
        return _check(
            "spf",
            FAIL,
            f"The SPF record at {domain} does not parse: {_reason(exc)}.",
            f"Replace it with a TXT record such as {suggestion}.",
        )
    except SPFError as exc:
        if is_unavailable(exc):
            raise
        return _check(
            "spf",
            FAIL,
            f"The SPF record at {domain} cannot be used: {_reason(exc)}.",
            f"Replace it with a TXT record such as {suggestion}.",
        )
    # A name the record needs (a:, mx:) that the DNS could not answer for is left out of the
    # parsed tree with only a warning; receivers would answer temperror, so neither pass nor
    # fail can be said.
    for warning in parsed.get("warnings") or []:
        if is_unavailable(Exception(warning)):
            raise DnsUnavailable(warning, timed_out=timed_out(Exception(warning)))
    lookups = int(parsed.get("dns_lookups") or 0)
    # Over a limit of RFC 7208 §4.6.4, checkdmarc (told to go on) says so in "error".  When the
    # limit is passed inside an included record, the count it returns stops at the include.
    limit = str(parsed.get("error") or "")
    if "void" in limit.lower():
        return _check(
            "spf",
            FAIL,
            f"The SPF record at {domain} (or a record it includes) looks up more than two names "
            "that do not exist; receivers stop there and treat it as an error (RFC 7208 "
            "§4.6.4).",
            f"Remove the a:, mx: and include: mechanisms that name domains which no longer "
            f"exist from the TXT record at {domain}, such as {suggestion}.",
        )
    if lookups > MAX_SPF_LOOKUPS or limit:
        needs = f"{lookups}" if lookups > MAX_SPF_LOOKUPS else f"more than {MAX_SPF_LOOKUPS}"
        return _check(
            "spf",
            FAIL,
            f"The SPF record at {domain} needs {needs} DNS look-ups, counting those of the "
            f"records it includes; receivers stop at {MAX_SPF_LOOKUPS} and treat it as an error.",
            f"Publish a shorter TXT record at {domain}: replace include: mechanisms you no "
            "longer use by ip4:/ip6: ranges, such as " + suggestion + ".",
        )
    if (parsed.get("parsed") or {}).get("all") == "pass":
        return _check(
            "spf",
            FAIL,
            f"The SPF record at {domain} ends in +all, which authorises every server on the "
            "internet to send as your domain; receivers treat it as no SPF at all.",
            f"Replace +all with ~all in the TXT record at {domain}, such as {suggestion}.",
        )
    if not ctx.sending_ips:
        return _check(
            "spf",
            PASS,
            f"SPF record found ({lookups} DNS look-ups): {record}. Whether it authorises the "
            f"sending server was not checked: {ctx.ips_known_why}.",
        )
    missing, unsure = [], []
    for ip in ctx.sending_ips:
        verdict = _spf_authorises(parsed["parsed"], ip, ctx)
        if verdict is None:
            unsure.append(ip)
        elif not verdict:
            missing.append(ip)
    if missing:
        mechanisms = " ".join(_mechanism_for(ip) for ip in missing)
        return _check(
            "spf",
            FAIL,
            f"The SPF record at {domain} does not authorise {', '.join(missing)}, where this "
            "server's mail leaves from.",
            f"Add {mechanisms} to the TXT record at {domain}, before its all: {record}.",
        )
    if unsure:
        return _check(
            "spf",
            WARN,
            f"SPF record found ({lookups} DNS look-ups), but whether it authorises "
            f"{', '.join(unsure)} depends on exists:/ptr: or macros that cannot be evaluated "
            "here.",
            f"Add {' '.join(_mechanism_for(ip) for ip in unsure)} to the TXT record at {domain}.",
        )
    return _check(
        "spf",
        PASS,
        f"SPF record found ({lookups} DNS look-ups), authorising {', '.join(ctx.sending_ips)}.",
    )


def _mechanism_for(ip: str) -> str:
    return f"ip{ipaddress.ip_address(ip).version}:{ip}"


def _spf_suggestion(ctx: _Context) -> str:
    mechanisms = " ".join(_mechanism_for(ip) for ip in ctx.sending_ips) or "ip4:<your server>"
    return f'"v=spf1 {mechanisms} ~all"'


def _spf_authorises(parsed: dict[str, Any], ip: str, ctx: _Context) -> bool | None:
    """Does the record checkdmarc parsed give ``ip`` a pass?  True, False, or None when it
    depends on mechanisms that cannot be evaluated without the message (exists, ptr, macros).

    Mechanisms are tried in order, as RFC 7208 §4.6.2 says: the first that matches decides;
    an include matches when the included record passes the address; then ``redirect``.
    """
    address = ipaddress.ip_address(ip)
    unsure = False
    for mechanism in parsed.get("mechanisms") or []:
        kind = mechanism.get("mechanism")
        passes = mechanism.get("action") == "pass"
        value = str(mechanism.get("value") or "")
        if "%{" in value:
            unsure = True
            continue
        matched: bool | None = False
        if kind in ("ip4", "ip6"):
            try:
                matched = address in ipaddress.ip_network(value, strict=False)
            except ValueError:
                matched = False
        elif kind == "a":
            matched = ip in (mechanism.get("addresses") or ctx.lookup.addresses(value))
        elif kind == "mx":
            hosts = [h.get("hostname", "") for h in mechanism.get("hosts") or []]
            matched = any(ip in ctx.lookup.addresses(h) for h in hosts if h)
        elif kind == "include":
            inner = mechanism.get("parsed")
            matched = _spf_authorises(inner, ip, ctx) if isinstance(inner, dict) else None
        else:  # exists, ptr: need the message or the connecting host
            matched = None
        if matched is None:
            unsure = True
        elif matched:
            return passes
    if parsed.get("all") == "pass":  # "+all": every address (an include of one passes too)
        return True
    redirect = parsed.get("redirect")
    if isinstance(redirect, dict) and isinstance(redirect.get("parsed"), dict):
        verdict = _spf_authorises(redirect["parsed"], ip, ctx)
        return verdict if verdict is not None or not unsure else None
    return None if unsure else False


# --- DKIM ---------------------------------------------------------------------------------------
def _dkim(ctx: _Context) -> Check:
    name = f"{ctx.selector}._domainkey.{ctx.domain}"
    own_record = None
    if not ctx.esp_selector:
        path = tidings_dkim.key_path(ctx.domain, ctx.selector)
        if not path.exists():
            return _check(
                "dkim",
                FAIL,
                f"tidings holds no DKIM key for {ctx.domain}, so its mail is not signed.",
                f"Run `tidings dkim keygen {ctx.domain}` and publish the TXT record it prints at "
                f"{name}.",
            )
        own_record = tidings_dkim.dns_record(ctx.domain, ctx.selector, path.read_bytes())[1]
    records = [r for r in ctx.lookup.txt(name) if "p=" in r]
    publish = (
        f"Publish a TXT record at {name}: {own_record}"
        if own_record
        else f"Publish the TXT (or CNAME) record your email provider gives you at {name}"
    )
    if not records:
        alias = ctx.lookup.alias_end(name)
        if alias is not None:
            return _dangling_dkim_alias(name, *alias, publish)
        return _check("dkim", FAIL, f"No DKIM key is published at {name}.", publish + ".")
    records = list(dict.fromkeys(records))  # the same record twice is one record
    if len(records) > 1:
        return _several_dkim_records(name, records, own_record)
    try:
        tags = parse_tag_value(records[0].encode("utf-8"))
    except InvalidTagValueList as exc:
        return _check(
            "dkim",
            FAIL,
            f"The DKIM record at {name} does not parse: {_reason(exc)}.",
            publish + ".",
        )
    public = tags.get(b"p", b"").replace(b" ", b"")
    if not public:
        return _check("dkim", FAIL, f"The DKIM key at {name} is revoked (empty p=).", publish + ".")
    if own_record is not None:
        own = own_record.partition("p=")[2].encode("ascii")
        if public != own:
            return _check(
                "dkim",
                FAIL,
                f"The key published at {name} is not the key tidings signs with, so every "
                "signature fails.",
                publish + " (replacing the old one).",
            )
    kind = tags.get(b"k", b"rsa").decode("ascii", "replace").lower()
    if kind != "rsa":
        return _check("dkim", PASS, f"A {kind} DKIM key is published at {name}.")
    try:
        bits = _rsa_bits(base64.b64decode(public))
    except (ValueError, UnparsableKeyError):
        return _check("dkim", FAIL, f"The DKIM key at {name} is not a usable RSA key.", publish)
    whose = "tidings' own key" if own_record else "a key (your email provider's selector)"
    if own_record is None:
        # An ESP's key is made by the ESP (Postmark's older keys are 1024 bits): tidings
        # cannot make it, and a key of ours would not be the one the ESP signs with.
        stronger = (
            "Ask your email provider for a 2048-bit DKIM key (most rotate to a new selector "
            "on request or in their settings), publish the record they give you, and set the "
            "new selector on this sender."
        )
    else:
        stronger = (
            f"Make a 2048-bit key (`tidings dkim keygen {ctx.domain} --selector NEW`) and "
            f"publish its TXT record at NEW._domainkey.{ctx.domain}."
        )
    if bits < 1024:
        return _check(
            "dkim",
            FAIL,
            f"The DKIM key at {name} has only {bits} bits; receivers ignore keys under 1024.",
            stronger,
        )
    if bits < 2048:
        return _check(
            "dkim",
            WARN,
            f"{whose.capitalize()} is published at {name}, {bits} bits; 2048 is recommended.",
            stronger,
        )
    return _check("dkim", PASS, f"{whose.capitalize()} is published at {name} ({bits} bits).")


def _dangling_dkim_alias(name: str, target: str, exists: bool, publish: str) -> Check:
    """The selector is a CNAME (as ESPs ask for) and no key is found behind it: say where it
    points, so the operator can see whose record is missing (a removed ESP key, a typo)."""
    what = "which does not exist" if not exists else "which has no DKIM key (no TXT record with p=)"
    return _check(
        "dkim",
        FAIL,
        f"{name} is a CNAME pointing to {target}, {what}, so receivers find no key and "
        "every signature fails.",
        f"Point the CNAME at {name} to the name your email provider gives you now (it points "
        f"to {target}), or remove it. {publish}.",
    )


def _several_dkim_records(name: str, records: list[str], own_record: str | None) -> Check:
    """More than one key at one selector: a receiver takes whichever its resolver returns
    first, so signatures made with the other key fail at random.  Each record is named by the
    end of its key (the start of every RSA key looks the same)."""
    own = own_record.partition("p=")[2] if own_record else ""
    keys = []
    for record in records:
        try:
            keys.append(parse_tag_value(record.encode("utf-8")).get(b"p", b"").decode("ascii"))
        except (InvalidTagValueList, UnicodeDecodeError):
            keys.append("")
    keys = [key.replace(" ", "") for key in keys]
    count = "two" if len(records) == 2 else str(len(records))
    detail = (
        f"{name} has {count} DKIM records: receivers may pick either, so signatures fail at random."
    )
    if own and own in keys:
        stale = [_key_end(key, record) for key, record in zip(keys, records, strict=True)]
        stale = [end for key, end in zip(keys, stale, strict=True) if key != own]
        return _check(
            "dkim",
            FAIL,
            f"{detail} The one whose key ends {_key_end(own, own)} is tidings' key; "
            f"the other ({', '.join(stale)}) is stale.",
            f"Delete the stale record at {name} (the key ending {', '.join(stale)}) and keep "
            "tidings' key.",
        )
    if own:
        return _check(
            "dkim",
            FAIL,
            f"{detail} None of them is the key tidings signs with.",
            f"Delete them and publish one TXT record at {name}: {own_record}.",
        )
    return _check(
        "dkim",
        FAIL,
        detail,
        f"Keep only the record your email provider gives you now at {name}; remove the stale one.",
    )


def _key_end(key: str, record: str) -> str:
    """How a record is told apart from another: its key's last characters (or the record's)."""
    return "…" + (key or record)[-16:]


def _rsa_bits(der: bytes) -> int:
    try:
        key = serialization.load_der_public_key(der)
        return key.key_size  # type: ignore[union-attr]
    except (ValueError, TypeError):
        return parse_public_key(der)["modulus"].bit_length()  # PKCS#1, as some publish


# --- DMARC --------------------------------------------------------------------------------------
def _dmarc(ctx: _Context) -> Check:
    suggestion = f'"v=DMARC1; p=none; rua=mailto:{_report_address(ctx)}"'
    try:
        found = query_dmarc_record(ctx.domain, **ctx.kwargs())
    except MultipleDMARCRecords:
        return _check(
            "dmarc",
            FAIL,
            f"_dmarc.{ctx.domain} has more than one DMARC record, so receivers ignore them all.",
            f"Keep one TXT record at _dmarc.{ctx.domain} and delete the others, such as "
            f"{suggestion}.",
        )
    except DMARCError as exc:
        if is_unavailable(exc):
            raise
        return _check(
            "dmarc",
            FAIL,
            f"No usable DMARC record for {ctx.domain}: {_reason(exc)}.",
            f"Publish a TXT record at _dmarc.{ctx.domain}: {suggestion}.",
        )
    try:
        parsed = parse_dmarc_record(found["record"], found["location"], **ctx.kwargs())
    except DMARCError as exc:
        if is_unavailable(exc):
            raise
        return _check(
            "dmarc",
            FAIL,
            f"The DMARC record at _dmarc.{found['location']} does not parse: {_reason(exc)}.",
            f"Replace it with a TXT record such as {suggestion}.",
        )
    tags = {name: value.get("value") for name, value in parsed["tags"].items()}
    ctx.dmarc_tags = tags
    where = found["location"]
    ctx.dmarc_domain = str(where).lower()
    inherited = "" if ctx.dmarc_domain == ctx.domain else f" (inherited from {where})"
    # RFC 7489 6.3, 6.6.3: mail from a subdomain that has no record of its own gets the
    # organisational domain's sp= (its p= when it has no sp=).
    tag = "sp" if inherited and parsed["tags"].get("sp", {}).get("explicit") else "p"
    policy = tags.get(tag) or "none"
    if tag == "sp":
        inherited = f" (inherited from {where}, whose sp= is the policy for {ctx.domain})"
    if policy == "none":
        return _check(
            "dmarc",
            PASS,
            f"DMARC record found{inherited}, policy {tag}=none: receivers only report. Once "
            f"the reports show all your mail passes, move to {tag}=quarantine.",
        )
    pct, testing = _sampling(str(found["record"]))
    lower = _LOWER_POLICY.get(policy, "none")
    if testing:
        return _check(
            "dmarc",
            PASS,
            f"DMARC record found{inherited}, policy {tag}={policy} with t=y (testing): "
            f"receivers apply {tag}={lower} instead, to all failing mail. Remove t=y to apply "
            f"{tag}={policy}.",
        )
    if pct < 100:
        share = (
            "none of the mail that fails DMARC"
            if pct == 0
            else f"{pct}% of the mail that fails DMARC"
        )
        rest = "all of it" if pct == 0 else "the rest"
        return _check(
            "dmarc",
            PASS,
            f"DMARC record found{inherited}, policy {tag}={policy} with pct={pct}: pct is the "
            f"share of failing mail the policy applies to, so {tag}={policy} applies to {share}; "
            f"receivers treat {rest} as {tag}={lower} (RFC 7489 6.6.4). Raise pct to 100 (or "
            "remove it) once the reports show all your mail passes.",
        )
    return _check("dmarc", PASS, f"DMARC record found{inherited}, policy {tag}={policy}.")


# RFC 7489 6.6.4: failing mail the pct sample leaves out gets the next less strict policy.
_LOWER_POLICY = {"reject": "quarantine", "quarantine": "none"}


def _sampling(record: str) -> tuple[int, bool]:
    """(pct, t=y) of a DMARC record: the share of failing mail its policy applies to (100 when
    absent or unreadable, as RFC 7489 says), and DMARCbis' testing flag.  Read from the record
    itself: the parser keeps neither."""
    pct, testing = 100, False
    for part in record.split(";"):
        name, _, value = part.partition("=")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "pct" and value.isdigit():
            pct = min(100, int(value))
        elif name == "t":
            testing = value == "y"
    return pct, testing


def _report_address(ctx: _Context) -> str:
    from django.conf import settings

    return settings.TIDINGS_BOUNCE_ADDRESS or f"dmarc-reports@{ctx.domain}"


def _dmarc_rua(ctx: _Context, tags: dict | None, dmarc: Check | None) -> Check:
    if tags is None:
        if dmarc is not None and dmarc.status == UNKNOWN:
            return _check(
                "dmarc_rua", UNKNOWN, "Could not check: the DMARC record could not be looked up."
            )
        return _check(
            "dmarc_rua",
            WARN,
            "No usable DMARC record, so no aggregate reports.",
            f"Add rua=mailto:{_report_address(ctx)} to the DMARC record at _dmarc.{ctx.domain}.",
        )
    rua = tags.get("rua") or []
    if not rua:
        return _check(
            "dmarc_rua",
            WARN,
            "The DMARC record asks for no aggregate reports, so you cannot see who sends as "
            "your domain.",
            f"Add rua=mailto:{_report_address(ctx)} to the DMARC record at _dmarc.{ctx.domain}.",
        )
    targets = ", ".join(f"{u.get('scheme', '')}:{u.get('address', '')}" for u in rua)
    try:
        refused = _unauthorised_destinations(ctx, rua)
    except DnsUnavailable:
        return _check(
            "dmarc_rua",
            UNKNOWN,
            f"Aggregate reports go to {targets}; whether the receiving domain accepts them "
            "could not be checked (the DNS did not answer).",
        )
    if refused:
        source = ctx.dmarc_domain or ctx.domain
        names = ", ".join(f"{source}._report._dmarc.{d}" for d in refused)
        return _check(
            "dmarc_rua",
            WARN,
            f"Aggregate reports are asked for at {targets}, but {', '.join(refused)} does not "
            f"say it accepts reports about {source}, so receivers will not send them there "
            "(RFC 7489 §7.1).",
            f'Publish a TXT record "v=DMARC1" at {names}, or send the reports to an address '
            f"at {source}.",
        )
    return _check("dmarc_rua", PASS, f"Aggregate reports go to {targets}.")


def _unauthorised_destinations(ctx: _Context, rua: list[dict[str, Any]]) -> list[str]:
    """The domains of ``rua``'s mailto addresses outside the DMARC domain's organisation that
    publish no authorisation record (``<domain>._report._dmarc.<destination>`` TXT
    "v=DMARC1"; a wildcard record answers for it too).  Raises DnsUnavailable."""
    source = ctx.dmarc_domain or ctx.domain
    base = checkdmarc.utils.get_base_domain
    refused: list[str] = []
    for uri in rua:
        if uri.get("scheme") != "mailto":
            continue
        destination = str(uri.get("address", "")).rpartition("@")[2].lower().rstrip(".")
        if not destination or destination in refused or base(destination) == base(source):
            continue
        records = ctx.lookup.txt(f"{source}._report._dmarc.{destination}")
        if not any(r.replace(" ", "").lower().startswith("v=dmarc1") for r in records):
            refused.append(destination)
    return refused


def _aligned(envelope: str, from_domain: str, mode: str) -> bool:
    if mode == "s":
        return envelope == from_domain
    base = checkdmarc.utils.get_base_domain
    return base(envelope) == base(from_domain)


def _alignment(ctx: _Context, health: DomainHealth, tags: dict | None) -> Check:
    dkim, spf, dmarc = health.get("dkim"), health.get("spf"), health.get("dmarc")
    aspf = (tags or {}).get("aspf", "r")
    # tidings signs with d= the From domain (dkim.signer_for), so a valid key is aligned.
    dkim_ok = dkim is not None and dkim.status in (PASS, WARN)
    spf_ok = (
        spf is not None
        and spf.status in (PASS, WARN)
        and _aligned(ctx.envelope_domain, ctx.domain, aspf)
    )
    if dkim_ok or spf_ok:
        how = " and ".join(part for part, ok in (("DKIM", dkim_ok), ("SPF", spf_ok)) if ok)
        return _check("alignment", PASS, f"The From domain {ctx.domain} aligns with {how}.")
    if any(c is not None and c.status == UNKNOWN for c in (dkim, spf, dmarc)):
        return _check(
            "alignment",
            UNKNOWN,
            "Could not check: a record it depends on could not be looked up.",
        )
    detail = f"Neither DKIM nor SPF passes for {ctx.domain}"
    if ctx.envelope_domain != ctx.domain and not _aligned(ctx.envelope_domain, ctx.domain, aspf):
        detail += f" (the envelope domain {ctx.envelope_domain} is not aligned with it)"
    return _check(
        "alignment",
        FAIL,
        detail + ", so DMARC fails and bulk mail is rejected.",
        f"Publish tidings' DKIM key for {ctx.domain} (see DKIM above); that alone aligns.",
    )


# --- reverse DNS --------------------------------------------------------------------------------
def _rdns(ctx: _Context) -> Check:
    if not ctx.sending_ips:
        return _check("rdns", NOT_APPLICABLE, f"Not checked: {ctx.ips_known_why}.")
    problems = []
    for ip in ctx.sending_ips:
        names = ctx.lookup.ptr(ip)
        if not names:
            problems.append(f"{ip} has no reverse DNS (PTR) name")
            continue
        if not any(ip in ctx.lookup.addresses(name) for name in names):
            problems.append(f"{ip} is named {names[0]}, which does not resolve back to it")
    if problems:
        return _check(
            "rdns",
            FAIL,
            "; ".join(problems) + ". Gmail and Microsoft refuse mail from such servers.",
            "Ask whoever runs the sending server to set its PTR record to a host name whose A "
            f"(or AAAA) record points back to it, such as mail.{ctx.domain}.",
        )
    return _check(
        "rdns",
        PASS,
        "Every sending address has a reverse DNS name that resolves back to it: "
        + ", ".join(f"{ip} → {ctx.lookup.ptr(ip)[0]}" for ip in ctx.sending_ips)
        + ".",
    )


# --- MX of the envelope domain ------------------------------------------------------------------
def _mx(ctx: _Context) -> Check:
    """Bounces go to the envelope (MAIL FROM) domain, and receivers that check the sender's
    domain (Postfix's reject_unknown_sender_domain, common at small providers) refuse mail from
    one that takes no mail.  RFC 7505 §4.2 lets them refuse a null MX ("0 .") outright."""
    domain = ctx.envelope_domain
    hosts = ctx.lookup.mx(domain)
    if hosts and all(host == "" for _, host in hosts):
        return _check(
            "mx",
            WARN,
            f'{domain} publishes a null MX ("0 .", RFC 7505): it says it takes no mail, so '
            "bounces cannot come back and some receivers refuse mail sent from it.",
            f"Remove the null MX at {domain} and publish the MX record of the server that "
            "receives your bounces (or use an envelope domain that has one).",
        )
    if hosts:
        names = ", ".join(h for _, h in sorted(hosts) if h)
        return _check("mx", PASS, f"{domain} takes mail (MX: {names}).")
    if ctx.lookup.addresses(domain):
        return _check(
            "mx",
            PASS,
            f"{domain} has no MX record but has an address, which takes mail in its place "
            "(RFC 5321 §5.1).",
        )
    return _check(
        "mx",
        WARN,
        f"{domain} has no MX record and no address, so bounces cannot come back and receivers "
        "that check the sender's domain refuse its mail.",
        f"Publish an MX record at {domain} for the server that receives your bounces "
        "(your email provider gives one for a custom MAIL FROM domain).",
    )


# --- MTA-STS, TLS-RPT, BIMI ---------------------------------------------------------------------
def _mta_sts(ctx: _Context) -> Check:
    try:
        record = query_mta_sts_record(ctx.domain, **ctx.kwargs())["record"]
    except MTASTSError as exc:
        if is_unavailable(exc):
            raise
        return _check(
            "mta_sts",
            WARN,
            f"No MTA-STS record for {ctx.domain}: mail to you may travel without TLS.",
            f'Publish a TXT record at _mta-sts.{ctx.domain}: "v=STSv1; id=1" and serve a policy '
            f"at https://mta-sts.{ctx.domain}/.well-known/mta-sts.txt.",
        )
    fix = (
        f'Replace it with a TXT record such as "v=STSv1; id={_sts_id()}" (change the id each '
        "time you change the policy file)."
    )
    try:
        parse_mta_sts_record(record)
    except InvalidSTSTagValue:
        # The only value checkdmarc judges is id (RFC 8461 §3.1: 1 to 32 letters or digits).
        return _check(
            "mta_sts",
            WARN,
            f"The MTA-STS record at _mta-sts.{ctx.domain} ({record}) has an invalid id: an id "
            "is 1 to 32 letters or digits (RFC 8461 §3.1), so senders ignore the record and "
            "mail to you may travel without TLS.",
            fix,
        )
    except MTASTSError as exc:
        return _check(
            "mta_sts",
            WARN,
            f"The MTA-STS record at _mta-sts.{ctx.domain} does not parse: {_reason(exc)}. "
            "Senders ignore it, so mail to you may travel without TLS.",
            fix,
        )
    return _check(
        "mta_sts",
        PASS,
        f"MTA-STS record found: {record} (the policy file itself is not fetched).",
    )


def _sts_id() -> str:
    """A valid MTA-STS id to suggest: today's date and time, digits only."""
    from django.utils import timezone

    return timezone.now().strftime("%Y%m%d%H%M")


def _tls_rpt(ctx: _Context) -> Check:
    try:
        record = query_smtp_tls_reporting_record(ctx.domain, **ctx.kwargs())["record"]
    except SMTPTLSReportingError as exc:
        if is_unavailable(exc):
            raise
        return _check(
            "tls_rpt",
            WARN,
            f"No TLS reporting record for {ctx.domain}.",
            f'Publish a TXT record at _smtp._tls.{ctx.domain}: "v=TLSRPTv1; '
            f'rua=mailto:tls-reports@{ctx.domain}".',
        )
    return _check("tls_rpt", PASS, f"TLS reporting record found: {record}.")


def _bimi(ctx: _Context) -> Check:
    try:
        record = query_bimi_record(ctx.domain, **ctx.kwargs())["record"]
    except BIMIError as exc:
        if is_unavailable(exc):
            raise
        return _check(
            "bimi",
            INFO,
            "No BIMI record (optional: it shows your logo in some inboxes, and needs a DMARC "
            "policy of quarantine or reject).",
        )
    if not record:
        return _check("bimi", INFO, "No BIMI record (optional).")
    return _check("bimi", INFO, f"BIMI record found: {record}.")
