# ruff: noqa: E501  (zone records as the providers publish them, one per line)
"""The domain checks against the DNS set-ups the common providers ask for (Google Workspace,
Microsoft 365, Amazon SES, Mailgun, Postmark, SendGrid), served by a real DNS server on
loopback: SPF through their include chains (and a Return-Path CNAME), DKIM keys behind CNAMEs,
a custom MAIL FROM subdomain aligned with the From domain.  Each must pass every required check
from an address in the provider's range; a provider's 1024-bit key is a warning whose advice is
to ask the provider, not to run tidings' keygen."""

from __future__ import annotations

import base64
import functools

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tidings.campaigns.deliverability.checks import check_domain

from .dns_helpers import LocalDNS
from .test_deliverability import txt

D = "example.co.uk"


@functools.cache
def keytxt(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def ptr(ip: str, host: str) -> list[str]:
    reverse = ".".join(reversed(ip.split("."))) + ".in-addr.arpa."
    return [f"{reverse} 300 IN PTR {host}.", f"{host}. 300 IN A {ip}"]


DMARC = f'_dmarc.{D}. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@{D}"'
ZONES = {
    "google": (
        [
            f'{D}. 300 IN TXT "v=spf1 include:_spf.google.com ~all"',
            f'{D}. 300 IN TXT "google-site-verification=abc123"',
            '_spf.google.com. 300 IN TXT "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all"',
            '_netblocks.google.com. 300 IN TXT "v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ip4:66.102.0.0/20 ip4:209.85.128.0/17 ~all"',
            '_netblocks2.google.com. 300 IN TXT "v=spf1 ip6:2001:4860:4000::/36 ~all"',
            '_netblocks3.google.com. 300 IN TXT "v=spf1 ip4:172.217.0.0/19 ~all"',
            f"google._domainkey.{D}. 300 IN TXT " + txt(keytxt()),
            f"{D}. 300 IN MX 1 smtp.google.com.",
            DMARC,
        ],
        "google",
        "",
        "209.85.220.41",
    ),
    "m365": (
        [
            f'{D}. 300 IN TXT "v=spf1 include:spf.protection.outlook.com -all"',
            f'{D}. 300 IN TXT "MS=ms12345678"',
            'spf.protection.outlook.com. 300 IN TXT "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/15 ip4:104.47.0.0/17 ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 include:spfd.protection.outlook.com -all"',
            'spfd.protection.outlook.com. 300 IN TXT "v=spf1 ip4:51.4.72.0/24 ip4:51.5.72.0/24 -all"',
            f"selector1._domainkey.{D}. 300 IN CNAME selector1-example-co-uk._domainkey.contoso.onmicrosoft.com.",
            "selector1-example-co-uk._domainkey.contoso.onmicrosoft.com. 300 IN TXT "
            + txt(keytxt()),
            f"{D}. 300 IN MX 0 example-co-uk.mail.protection.outlook.com.",
            DMARC,
        ],
        "selector1",
        "",
        "40.107.22.33",
    ),
    "ses": (
        [
            f'mail.{D}. 300 IN TXT "v=spf1 include:amazonses.com ~all"',
            f"mail.{D}. 300 IN MX 10 feedback-smtp.eu-west-2.amazonses.com.",
            'amazonses.com. 300 IN TXT "v=spf1 ip4:199.255.192.0/22 ip4:199.127.232.0/22 ip4:54.240.0.0/18 ip4:69.169.224.0/20 ip4:23.249.208.0/20 ip4:23.251.224.0/19 ip4:76.223.176.0/20 ip4:54.240.64.0/19 ip4:54.240.96.0/19 ip4:76.223.128.0/19 ip4:216.221.160.0/19 ip4:206.55.144.0/20 -all"',
            f"abcdefghijklmnop._domainkey.{D}. 300 IN CNAME abcdefghijklmnop.dkim.amazonses.com.",
            "abcdefghijklmnop.dkim.amazonses.com. 300 IN TXT " + txt(keytxt()),
            f'{D}. 300 IN TXT "v=spf1 -all"',
            DMARC,
        ],
        "abcdefghijklmnop",
        f"mail.{D}",
        "54.240.4.10",
    ),
    "mailgun": (
        [
            f'mg.{D}. 300 IN TXT "v=spf1 include:mailgun.org ~all"',
            'mailgun.org. 300 IN TXT "v=spf1 include:_spf.mailgun.org ~all"',
            '_spf.mailgun.org. 300 IN TXT "v=spf1 ip4:209.61.151.0/24 ip4:166.78.68.0/22 ip4:198.61.254.0/23 ip4:192.237.158.0/23 ip4:23.253.182.0/23 ip4:104.130.96.0/28 ip4:146.20.113.0/24 ip4:146.20.191.0/24 ip4:159.135.224.0/20 ip4:69.72.32.0/20 ~all"',
            f"pic._domainkey.{D}. 300 IN TXT " + txt(keytxt()),
            f"mg.{D}. 300 IN MX 10 mxa.eu.mailgun.org.",
            DMARC,
        ],
        "pic",
        f"mg.{D}",
        "159.135.228.10",
    ),
    "postmark": (
        [
            f"pm-bounces.{D}. 300 IN CNAME pm.mtasv.net.",
            "pm.mtasv.net. 300 IN MX 10 inbound.postmarkapp.com.",
            'pm.mtasv.net. 300 IN TXT "v=spf1 ip4:50.31.156.0/24 ip4:50.31.205.0/24 ip4:104.245.209.192/26 ip4:3.134.147.250 ip4:18.217.246.52 ~all"',
            f"20231201120000pm._domainkey.{D}. 300 IN TXT " + txt(keytxt(1024)),
            DMARC,
        ],
        "20231201120000pm",
        f"pm-bounces.{D}",
        "50.31.156.6",
    ),
    "sendgrid": (
        [
            f"em1234.{D}. 300 IN CNAME u1234567.wl.sendgrid.net.",
            "u1234567.wl.sendgrid.net. 300 IN MX 10 mx.sendgrid.net.",
            'u1234567.wl.sendgrid.net. 300 IN TXT "v=spf1 include:sendgrid.net ~all"',
            'sendgrid.net. 300 IN TXT "v=spf1 ip4:167.89.0.0/17 ip4:208.117.48.0/20 ip4:50.31.32.0/19 ip4:198.37.144.0/20 ip4:198.21.0.0/21 ip4:192.254.112.0/20 ip4:168.245.0.0/17 ip4:149.72.0.0/16 ip4:159.183.0.0/16 ~all"',
            f"s1._domainkey.{D}. 300 IN CNAME s1.domainkey.u1234567.wl.sendgrid.net.",
            "s1.domainkey.u1234567.wl.sendgrid.net. 300 IN TXT " + txt(keytxt()),
            f"s2._domainkey.{D}. 300 IN CNAME s2.domainkey.u1234567.wl.sendgrid.net.",
            DMARC,
        ],
        "s1",
        f"em1234.{D}",
        "149.72.10.10",
    ),
}

PTR = {
    "google": "mail-sor-f41.google.com",
    "m365": "mail-am6eur05on2033.outbound.protection.outlook.com",
    "ses": "a4-10.smtp-out.eu-west-2.amazonses.com",
    "mailgun": "m228-10.eu.mailgun.net",
    "postmark": "mta6.pm.mtasv.net",
    "sendgrid": "o1.ptr1234.sendgrid.net",
}


@pytest.mark.parametrize("name", list(ZONES))
def test_a_providers_set_up_passes_every_required_check(name, settings, tmp_path):
    records, selector, envelope, ip = ZONES[name]
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "dkim")
    settings.TIDINGS_DKIM_SELECTOR = "tidings"
    settings.TIDINGS_BOUNCE_ADDRESS = ""
    with LocalDNS("\n".join(records + ptr(ip, PTR[name]))) as server:
        settings.TIDINGS_DNS_RESOLVER = server.address
        settings.TIDINGS_DNS_TIMEOUT = 2.0
        health = check_domain(D, selector=selector, envelope_domain=envelope, sending_hosts=[ip])
    found = {c.key: (c.status, c.detail, c.fix) for c in health.checks}
    required = {
        k: v[0] for k, v in found.items() if k in ("spf", "dmarc", "alignment", "rdns", "mx")
    }
    assert required == dict.fromkeys(required, "pass"), found
    assert f"authorising {ip}" in found["spf"][1]
    if name == "postmark":  # Postmark's older keys are 1024 bits
        status, detail, fix = found["dkim"]
        assert status == "warn" and "1024 bits" in detail
        assert fix.startswith("Ask your email provider") and "keygen" not in fix
    else:
        assert found["dkim"][0] == "pass", found["dkim"]
