"""Sender domain health against a real DNS server (dnslib on loopback): a good domain passes
every check, and each broken record fails its own check with a sentence saying what to publish.
A DNS that does not answer is "could not check", never "failed"."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tidings.campaigns import dkim
from tidings.campaigns.deliverability.checks import check_domain
from tidings.campaigns.deliverability.dns import DnsSettings, parse_resolvers

from .dns_helpers import BlackHole, LocalDNS

DOMAIN = "example.co.uk"
SENDING_IP = "192.0.2.25"


@pytest.fixture
def key(settings, tmp_path):
    """tidings' DKIM key for the domain (2048 bits), and the TXT value that publishes it."""
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "dkim")
    settings.TIDINGS_DKIM_SELECTOR = "tidings"
    _, _, value = dkim.generate_key(DOMAIN)
    return value


def txt(value: str) -> str:
    """A TXT value as zone text, split into strings of at most 255 characters."""
    parts = [value[i : i + 250] for i in range(0, len(value), 250)]
    return " ".join(f'"{p}"' for p in parts)


def good_records(dkim_value: str) -> dict[str, str]:
    return {
        "spf": f'{DOMAIN}. 300 IN TXT "v=spf1 ip4:{SENDING_IP} include:_spf.example.net ~all"',
        "spf-include": '_spf.example.net. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"',
        "dkim": f"tidings._domainkey.{DOMAIN}. 300 IN TXT {txt(dkim_value)}",
        "dmarc": f'_dmarc.{DOMAIN}. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}"',
        "mta-sts": f'_mta-sts.{DOMAIN}. 300 IN TXT "v=STSv1; id=20260101"',
        "tls-rpt": f'_smtp._tls.{DOMAIN}. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls@{DOMAIN}"',
        "host": f"mail.{DOMAIN}. 300 IN A {SENDING_IP}",
        "ptr": f"25.2.0.192.in-addr.arpa. 300 IN PTR mail.{DOMAIN}.",
        "mx": f"{DOMAIN}. 300 IN MX 10 mail.{DOMAIN}.",
    }


def zone(records: dict[str, str]) -> str:
    return "\n".join(r for r in records.values() if r)


@pytest.fixture
def dns_server(settings, key):
    """A DNS server serving the good zone; tests change records with ``serve``."""
    with LocalDNS(zone(good_records(key))) as server:
        settings.TIDINGS_DNS_RESOLVER = server.address
        settings.TIDINGS_DNS_TIMEOUT = 2.0
        settings.TIDINGS_SENDING_IPS = f"mail.{DOMAIN}"
        settings.TIDINGS_BOUNCE_ADDRESS = ""
        yield server


def check_with(server: LocalDNS, key: str, **changes: str):
    records = good_records(key)
    records.update(changes)
    server.serve(zone(records))
    return check_domain(DOMAIN)


def statuses(health) -> dict[str, str]:
    return {c.key: c.status for c in health.checks}


# --- the good domain ----------------------------------------------------------------------------
def test_a_good_domain_passes_every_required_check(dns_server):
    health = check_domain(DOMAIN)
    assert health.status == "pass", [(c.key, c.detail) for c in health.checks]
    assert statuses(health) == {
        "spf": "pass",
        "dkim": "pass",
        "dmarc": "pass",
        "alignment": "pass",
        "dmarc_rua": "pass",
        "rdns": "pass",
        "mx": "pass",
        "mta_sts": "pass",
        "tls_rpt": "pass",
        "bimi": "info",
    }
    assert health.sending_ips == [SENDING_IP]
    assert "2048 bits" in health.get("dkim").detail
    assert all(not c.fix for c in health.checks if c.status == "pass")


def test_the_resolver_setting_takes_a_port_and_several_servers():
    assert parse_resolvers("127.0.0.1:5353, [::1]:53,192.0.2.1") == (
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("192.0.2.1", 53),
    )
    with pytest.raises(ValueError, match="not an IP address"):
        parse_resolvers("dns.example:53")
    with pytest.raises(ValueError, match="no valid port"):
        parse_resolvers("127.0.0.1:99999")


# --- each broken record -------------------------------------------------------------------------
def test_a_missing_spf_record_fails_and_says_what_to_publish(dns_server, key):
    health = check_with(dns_server, key, spf="")
    spf = health.get("spf")
    assert spf.status == "fail" and spf.required
    assert spf.fix == f'Publish a TXT record at {DOMAIN}: "v=spf1 ip4:{SENDING_IP} ~all".'
    assert health.status == "fail"
    # DKIM still aligns the From domain, so DMARC alignment holds on its own.
    assert health.get("alignment").status == "pass"


def test_an_spf_record_that_does_not_parse_fails(dns_server, key):
    health = check_with(
        dns_server, key, spf=f'{DOMAIN}. 300 IN TXT "v=spf1 ip4:{SENDING_IP} bogus:x ~all"'
    )
    assert health.get("spf").status == "fail"
    assert "does not parse" in health.get("spf").detail
    assert health.get("spf").fix.startswith("Replace it with a TXT record such as")


def test_two_spf_records_fail(dns_server, key):
    records = good_records(key)
    second = f'{DOMAIN}. 300 IN TXT "v=spf1 ip4:198.51.100.7 -all"'
    dns_server.serve(zone(records) + "\n" + second)
    spf = check_domain(DOMAIN).get("spf")
    assert spf.status == "fail"
    assert "more than one SPF record" in spf.detail
    assert spf.fix.startswith(f"Merge them into one TXT record at {DOMAIN}")


def test_an_spf_record_over_ten_lookups_fails(dns_server, key):
    includes = " ".join(f"include:s{n}.example.net" for n in range(11))
    records = good_records(key)
    records["spf"] = f"{DOMAIN}. 300 IN TXT " + txt(f"v=spf1 ip4:{SENDING_IP} {includes} ~all")
    for n in range(11):
        records[f"s{n}"] = f's{n}.example.net. 300 IN TXT "v=spf1 ip4:198.51.100.{n} -all"'
    dns_server.serve(zone(records))
    spf = check_domain(DOMAIN).get("spf")
    assert spf.status == "fail"
    assert "needs 11 DNS look-ups" in spf.detail


def test_an_spf_record_that_does_not_authorise_the_sending_server_fails(dns_server, key):
    health = check_with(
        dns_server, key, spf=f'{DOMAIN}. 300 IN TXT "v=spf1 include:_spf.example.net -all"'
    )
    spf = health.get("spf")
    assert spf.status == "fail"
    assert f"does not authorise {SENDING_IP}" in spf.detail
    assert spf.fix.startswith(f"Add ip4:{SENDING_IP} to the TXT record at {DOMAIN}")


def test_spf_authorises_through_includes_a_and_mx(dns_server, key):
    via_include = check_with(
        dns_server,
        key,
        spf=f'{DOMAIN}. 300 IN TXT "v=spf1 include:_spf.example.net -all"',
        **{"spf-include": f'_spf.example.net. 300 IN TXT "v=spf1 ip4:{SENDING_IP} -all"'},
    )
    assert via_include.get("spf").status == "pass"
    via_mx = check_with(dns_server, key, spf=f'{DOMAIN}. 300 IN TXT "v=spf1 mx -all"')
    assert via_mx.get("spf").status == "pass"
    # A "-" (fail) mechanism that matches first decides: not authorised.
    refused = check_with(
        dns_server, key, spf=f'{DOMAIN}. 300 IN TXT "v=spf1 -ip4:{SENDING_IP} mx ~all"'
    )
    assert refused.get("spf").status == "fail"


def test_an_spf_record_ending_in_plus_all_fails_saying_anyone_may_send(dns_server, key):
    # "+all" authorises every address: it said "does not authorise 192.0.2.25" and advised
    # adding ip4: before the +all.
    for record in ("v=spf1 +all", "v=spf1 mx all"):
        spf = check_with(dns_server, key, spf=f'{DOMAIN}. 300 IN TXT "{record}"').get("spf")
        assert spf.status == "fail"
        assert "ends in +all, which authorises every server" in spf.detail
        assert "does not authorise" not in spf.detail
        assert spf.fix.startswith(f"Replace +all with ~all in the TXT record at {DOMAIN}")
    # An include of a +all record passes the address (it does authorise it).
    included = check_with(
        dns_server,
        key,
        spf=f'{DOMAIN}. 300 IN TXT "v=spf1 include:_spf.example.net -all"',
        **{"spf-include": '_spf.example.net. 300 IN TXT "v=spf1 +all"'},
    )
    assert included.get("spf").status == "pass"


def test_a_missing_dkim_key_fails_with_the_record_to_publish(dns_server, key):
    health = check_with(dns_server, key, dkim="")
    check = health.get("dkim")
    assert check.status == "fail"
    assert check.fix == f"Publish a TXT record at tidings._domainkey.{DOMAIN}: {key}."


def test_a_dkim_key_that_is_not_tidings_key_fails(dns_server, key, tmp_path):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = other.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    wrong = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    check = check_with(
        dns_server, key, dkim=f"tidings._domainkey.{DOMAIN}. 300 IN TXT {txt(wrong)}"
    ).get("dkim")
    assert check.status == "fail"
    assert "not the key tidings signs with" in check.detail


def test_an_esp_selector_needs_a_key_of_at_least_1024_bits(dns_server, key, settings):
    # A 512-bit RSA public key (only its size matters here).
    weak = rsa.RSAPublicNumbers(65537, (1 << 511) | 0x2F).public_key()
    der = weak.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    medium = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    der_1024 = medium.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    records = good_records(key)
    records["esp-weak"] = (
        f'weak._domainkey.{DOMAIN}. 300 IN TXT "v=DKIM1; p={base64.b64encode(der).decode()}"'
    )
    records["esp-1024"] = f"s1._domainkey.{DOMAIN}. 300 IN TXT " + txt(
        f"v=DKIM1; k=rsa; p={base64.b64encode(der_1024).decode()}"
    )
    dns_server.serve(zone(records))
    weak_check = check_domain(DOMAIN, selector="weak").get("dkim")
    assert weak_check.status == "fail"
    assert "only 512 bits" in weak_check.detail
    # An ESP's key is the ESP's to make (Postmark's older keys are 1024 bits): the advice is
    # to ask them, never to run tidings' keygen, whose key the ESP would not sign with.
    assert "Ask your email provider for a 2048-bit DKIM key" in weak_check.fix
    assert "keygen" not in weak_check.fix
    ok = check_domain(DOMAIN, selector="s1").get("dkim")
    assert ok.status == "warn"  # passes, with the advice to use 2048
    assert "1024 bits; 2048 is recommended" in ok.detail
    assert ok.fix.startswith("Ask your email provider for a 2048-bit DKIM key")
    missing = check_domain(DOMAIN, selector="k9").get("dkim")
    assert missing.status == "fail"
    assert "k9._domainkey" in missing.fix


def test_no_tidings_key_says_to_make_one(dns_server, key, settings, tmp_path):
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "empty")
    check = check_domain(DOMAIN).get("dkim")
    assert check.status == "fail"
    assert check.fix.startswith(f"Run `tidings dkim keygen {DOMAIN}`")


def test_a_missing_dmarc_record_fails(dns_server, key):
    health = check_with(dns_server, key, dmarc="")
    check = health.get("dmarc")
    assert check.status == "fail"
    assert check.fix.startswith(f'Publish a TXT record at _dmarc.{DOMAIN}: "v=DMARC1; p=none;')
    assert health.get("dmarc_rua").status == "warn"


def test_a_dmarc_record_that_does_not_parse_fails(dns_server, key):
    check = check_with(
        dns_server, key, dmarc=f'_dmarc.{DOMAIN}. 300 IN TXT "v=DMARC1; p=sometimes"'
    ).get("dmarc")
    assert check.status == "fail"


def test_two_dmarc_records_fail_and_the_fix_says_to_delete_one(dns_server, key):
    """The fix used to say "Publish a TXT record at _dmarc…": following it made three."""
    second = f'_dmarc.{DOMAIN}. 300 IN TXT "v=DMARC1; p=none"'
    records = good_records(key)
    dns_server.serve(zone(records) + "\n" + second)
    check = check_domain(DOMAIN).get("dmarc")
    assert check.status == "fail"
    assert check.detail == (
        f"_dmarc.{DOMAIN} has more than one DMARC record, so receivers ignore them all."
    )
    assert check.fix.startswith(
        f"Keep one TXT record at _dmarc.{DOMAIN} and delete the others, such as "
    )


def test_a_record_that_does_not_parse_says_why_in_one_sentence(dns_server, key):
    spf = f'{DOMAIN}. 300 IN TXT "v=spf1 ip4:300.1.1.1 ~all"'
    detail = check_with(dns_server, key, spf=spf).get("spf").detail
    assert (
        detail == f"The SPF record at {DOMAIN} does not parse: 300.1.1.1 is not a valid IPv4 value."
    )


def test_dmarc_without_rua_passes_with_a_recommendation(dns_server, key):
    health = check_with(dns_server, key, dmarc=f'_dmarc.{DOMAIN}. 300 IN TXT "v=DMARC1; p=none"')
    assert health.get("dmarc").status == "pass"
    assert "p=none" in health.get("dmarc").detail
    rua = health.get("dmarc_rua")
    assert rua.status == "warn" and not rua.required
    assert rua.fix.startswith("Add rua=mailto:")
    assert health.status == "pass"


def test_reports_to_another_domain_need_its_authorisation_record(dns_server, key):
    # RFC 7489 §7.1: receivers send reports to another organisation's address only when it
    # publishes <domain>._report._dmarc.<its domain> "v=DMARC1"; without it none ever arrive.
    external = f'_dmarc.{DOMAIN}. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:agg@dmarc.example.org"'
    rua = check_with(dns_server, key, dmarc=external).get("dmarc_rua")
    assert rua.status == "warn"
    assert "dmarc.example.org does not say it accepts reports about example.co.uk" in rua.detail
    assert rua.fix.startswith(
        f'Publish a TXT record "v=DMARC1" at {DOMAIN}._report._dmarc.dmarc.example.org'
    )
    authorised = f'{DOMAIN}._report._dmarc.dmarc.example.org. 300 IN TXT "v=DMARC1"'
    rua = check_with(dns_server, key, dmarc=external, authorisation=authorised).get("dmarc_rua")
    assert rua.status == "pass"
    # The same organisation (another subdomain of it) needs no record.
    own = f'_dmarc.{DOMAIN}. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:agg@reports.{DOMAIN}"'
    assert check_with(dns_server, key, dmarc=own).get("dmarc_rua").status == "pass"


def test_alignment_fails_when_neither_dkim_nor_spf_aligns(dns_server, key, settings):
    settings.TIDINGS_BOUNCE_ADDRESS = "bounces@mailer.example.net"
    records = good_records(key)
    records["dkim"] = ""
    records["mailer-spf"] = f'mailer.example.net. 300 IN TXT "v=spf1 ip4:{SENDING_IP} -all"'
    dns_server.serve(zone(records))
    health = check_domain(DOMAIN, envelope_domain="mailer.example.net")
    assert health.get("spf").status == "pass"  # SPF passes, for another domain
    alignment = health.get("alignment")
    assert alignment.status == "fail"
    assert "not aligned" in alignment.detail
    # The same with a subdomain of the From domain as envelope: relaxed alignment holds.
    records["bounce-spf"] = f'bounce.{DOMAIN}. 300 IN TXT "v=spf1 ip4:{SENDING_IP} -all"'
    dns_server.serve(zone(records))
    relaxed = check_domain(DOMAIN, envelope_domain=f"bounce.{DOMAIN}")
    assert relaxed.get("alignment").status == "pass"
    assert "SPF" in relaxed.get("alignment").detail


def test_a_sending_server_without_reverse_dns_fails(dns_server, key):
    check = check_with(dns_server, key, ptr="").get("rdns")
    assert check.status == "fail"
    assert f"{SENDING_IP} has no reverse DNS" in check.detail
    assert check.fix.startswith("Ask whoever runs the sending server to set its PTR record")


def test_reverse_dns_that_does_not_resolve_back_fails(dns_server, key):
    check = check_with(
        dns_server, key, ptr="25.2.0.192.in-addr.arpa. 300 IN PTR elsewhere.example.net."
    ).get("rdns")
    assert check.status == "fail"
    assert "does not resolve back" in check.detail


def test_missing_mta_sts_and_tls_rpt_are_recommendations(dns_server, key):
    health = check_with(dns_server, key, **{"mta-sts": "", "tls-rpt": ""})
    assert health.get("mta_sts").status == "warn" and not health.get("mta_sts").required
    assert health.get("mta_sts").fix.startswith(f"Publish a TXT record at _mta-sts.{DOMAIN}")
    assert health.get("tls_rpt").status == "warn"
    assert health.status == "pass"


def test_unknown_sending_address_is_not_checked_rather_than_failed(dns_server, key, settings):
    settings.TIDINGS_SENDING_IPS = ""
    settings.TIDINGS_TRANSPORTS = {"default": {"url": "outbox://"}}
    health = check_domain(DOMAIN)
    assert health.get("rdns").status == "na"
    assert "TIDINGS_SENDING_IPS" in health.get("rdns").detail
    assert health.get("spf").status == "pass"
    assert health.status == "pass"


# --- time-outs ----------------------------------------------------------------------------------
def test_a_dns_that_does_not_answer_is_could_not_check_never_failed(settings, key):
    with BlackHole() as hole:
        settings.TIDINGS_DNS_RESOLVER = hole.address
        settings.TIDINGS_DNS_TIMEOUT = 0.5
        settings.TIDINGS_SENDING_IPS = SENDING_IP
        health = check_domain(DOMAIN)
        asked = hole.questions()
    assert health.status == "unknown"
    assert not health.failed
    required = [c for c in health.checks if c.required and c.key != "alignment"]
    assert {c.status for c in required} == {"unknown"}
    assert "Could not check" in health.get("spf").detail
    # Not "No DMARC record … add rua=": nothing is known about the record.
    rua = health.get("dmarc_rua")
    assert rua.status == "unknown" and rua.fix == ""
    assert rua.detail == "Could not check: the DMARC record could not be looked up."
    # After the first time-out the other look-ups are not tried (each would wait as long): the
    # server was asked only the first check's questions (the SPF record: TXT, and the old SPF
    # type), however often they were retried; never DMARC, DKIM or MX.
    spf = {(f"{DOMAIN}.", "TXT"), (f"{DOMAIN}.", "SPF")}
    assert asked and asked <= spf, asked


# --- the command --------------------------------------------------------------------------------
def test_the_command_exits_1_when_a_required_check_fails(dns_server, key, capsys):
    call_command("deliverability", "check", DOMAIN)
    assert "every required check passed" in capsys.readouterr().out
    dns_server.serve(zone({**good_records(key), "dmarc": ""}))
    with pytest.raises(CommandError) as failed:
        call_command("deliverability", "check", DOMAIN)
    assert failed.value.returncode == 1
    assert "1 required check(s) failed: DMARC" in str(failed.value)
    out = capsys.readouterr().out
    assert f"To fix: Publish a TXT record at _dmarc.{DOMAIN}" in out


def test_the_command_refuses_a_bad_domain_and_a_bad_resolver(dns_server, settings):
    with pytest.raises(CommandError, match="not a domain name"):
        call_command("deliverability", "check", "not a domain")
    with pytest.raises(CommandError, match="not a domain name: 'bad dom'"):
        call_command("deliverability", "check", DOMAIN, "--envelope-domain", "bad dom")
    settings.TIDINGS_DNS_RESOLVER = "resolver.example"
    with pytest.raises(CommandError, match="TIDINGS_DNS_RESOLVER"):
        call_command("deliverability", "check", DOMAIN)


def test_dns_settings_read_from_the_environment_settings(settings):
    settings.TIDINGS_DNS_RESOLVER = "127.0.0.1:5353"
    settings.TIDINGS_DNS_TIMEOUT = 1.5
    config = DnsSettings.from_settings()
    assert config.nameservers == (("127.0.0.1", 5353),)
    assert config.resolver().lifetime == 1.5


# --- senders: verified means the checks passed --------------------------------------------------
@pytest.mark.django_db
def test_a_sender_whose_checks_pass_is_verified_and_a_regression_emails_the_owners(
    dns_server, key, owner, mailoutbox, django_capture_on_commit_callbacks
):
    from tidings.campaigns.deliverability.senders import check_senders_task, do_check_sender
    from tidings.campaigns.models import Sender
    from tidings.lib.models import AuditEntry

    sender = Sender.objects.create(name="News", email=f"news@{DOMAIN}")
    do_check_sender(sender)
    sender.refresh_from_db()
    assert sender.verified and sender.verified_by == "checks"
    assert sender.health_status == "pass"
    assert AuditEntry.objects.filter(action="sender.verified", object_id=str(sender.pk)).exists()
    # The daily job sees the DMARC record gone: a regression, so the owners hear of it.
    dns_server.serve(zone({**good_records(key), "dmarc": ""}))
    with django_capture_on_commit_callbacks(execute=True):
        check_senders_task.call()
    sender.refresh_from_db()
    assert not sender.verified and sender.health_status == "fail"
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["owner@example.co.uk"]
    assert "DMARC" in mail.subject
    assert f"To fix it: Publish a TXT record at _dmarc.{DOMAIN}" in mail.body
    # Failing again is no news: no second mail.
    with django_capture_on_commit_callbacks(execute=True):
        check_senders_task.call()
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_a_dns_time_out_never_unverifies_a_sender(settings, key, owner, mailoutbox):
    from tidings.campaigns.deliverability.senders import do_check_sender
    from tidings.campaigns.models import Sender

    sender = Sender.objects.create(
        name="News", email=f"news@{DOMAIN}", verified=True, verified_by="checks"
    )
    with BlackHole() as hole:
        settings.TIDINGS_DNS_RESOLVER = hole.address
        settings.TIDINGS_DNS_TIMEOUT = 0.3
        settings.TIDINGS_SENDING_IPS = SENDING_IP
        health = do_check_sender(sender)
    sender.refresh_from_db()
    assert health.status == "unknown"
    assert sender.verified and sender.health_status == "unknown"
    assert mailoutbox == []


@pytest.mark.django_db
def test_an_owner_vouches_for_a_failing_sender_and_it_is_audited(dns_server, key, owner_client):
    from tidings.campaigns.models import Sender
    from tidings.lib.models import AuditEntry

    dns_server.serve(zone({**good_records(key), "spf": ""}))
    owner_client.post(
        reverse("campaigns:senders"),
        {"name": "News", "email": f"news@{DOMAIN}", "reply_to": "", "dkim_selector": ""},
    )
    sender = Sender.objects.get()
    response = owner_client.post(reverse("campaigns:sender-check", args=[sender.pk]), follow=True)
    page = response.content.decode()
    assert "1 required check(s) failed" in page
    assert f"Publish a TXT record at {DOMAIN}" in page
    sender.refresh_from_db()
    assert not sender.verified
    owner_client.post(reverse("campaigns:sender-verify", args=[sender.pk]), {"verified": "1"})
    sender.refresh_from_db()
    assert sender.verified and sender.verified_by == "owner"
    entry = AuditEntry.objects.get(action="sender.verified", object_id=str(sender.pk))
    assert entry.details == {"by": "owner", "override": True, "checks": "fail"}
    # The next check still fails, but the owner's word stands.
    owner_client.post(reverse("campaigns:sender-check", args=[sender.pk]))
    sender.refresh_from_db()
    assert sender.verified and sender.health_status == "fail"
    # One sentence, without a space before its full stop ("…although its checks fail .").
    page = " ".join(owner_client.get(reverse("campaigns:senders")).content.decode().split())
    assert "an owner vouched for it, although its checks fail. DKIM selector" in page


@pytest.mark.django_db
def test_adding_a_sender_queues_its_check_and_refuses_a_bad_selector(
    owner_client, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    from tidings.campaigns.models import Sender

    bad = owner_client.post(
        reverse("campaigns:senders"),
        {"name": "N", "email": "news@example.co.uk", "reply_to": "", "dkim_selector": "a b"},
    )
    assert "a selector is letters, digits and hyphens" in bad.content.decode()
    assert not Sender.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            reverse("campaigns:senders"),
            {"name": "N", "email": "news@example.co.uk", "reply_to": "", "dkim_selector": "s1"},
        )
    assert Sender.objects.get().dkim_selector == "s1"
    assert DBTaskResult.objects.filter(task_path__endswith="check_sender_task").count() == 1


@pytest.mark.django_db
def test_doctor_findings_summarise_each_sender_domain(dns_server, key):
    from tidings.campaigns.deliverability.senders import do_check_sender, doctor_findings
    from tidings.campaigns.models import Sender

    sender = Sender.objects.create(name="News", email=f"news@{DOMAIN}")
    Sender.objects.create(name="Other", email="a@never-checked.example")
    dns_server.serve(zone({**good_records(key), "ptr": ""}))
    do_check_sender(sender)
    findings = {f["name"]: f for f in doctor_findings()}
    assert findings[f"sender-dns:{DOMAIN}"]["status"] == "fail"
    assert "Reverse DNS" in findings[f"sender-dns:{DOMAIN}"]["summary"]
    assert findings["sender-dns:never-checked.example"]["status"] == "warn"


# --- nothing is fetched from the internet --------------------------------------------------------
@pytest.mark.django_db
def test_checks_and_dmarc_parsing_reach_nothing_but_the_configured_resolver(
    dns_server, key, monkeypatch
):
    """checkdmarc and parsedmarc use their bundled public suffix lists and maps: every packet
    goes to the local DNS server (a guard records each socket's destination)."""
    import gzip
    import socket

    from tests.campaigns.test_dmarc import report_xml
    from tidings.campaigns.deliverability.dmarc import do_record_dmarc_report

    destinations: list[tuple] = []
    connect, sendto = socket.socket.connect, socket.socket.sendto

    def guarded_connect(self, address):
        destinations.append(address)
        return connect(self, address)

    def guarded_sendto(self, data, *args):
        if self.getsockname()[1] != dns_server.port:  # not the local server's own answers
            destinations.append(args[-1])
        return sendto(self, data, *args)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "sendto", guarded_sendto)
    assert check_domain(DOMAIN).status == "pass"
    assert do_record_dmarc_report(gzip.compress(report_xml()), source="file").status == "processed"
    assert destinations, "the guard saw no DNS traffic at all"
    assert {address[0] for address in destinations} == {"127.0.0.1"}
    assert {address[1] for address in destinations} == {dns_server.port}


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (
            "v=DMARC1; p=reject; pct=0",
            "policy p=reject with pct=0: pct is the share of failing mail the policy applies to, "
            "so p=reject applies to none of the mail that fails DMARC; receivers treat all of it "
            "as p=quarantine",
        ),
        (
            "v=DMARC1; p=quarantine; pct=0",
            "so p=quarantine applies to none of the mail that fails DMARC; receivers treat all "
            "of it as p=none",
        ),
        (
            "v=DMARC1; p=reject; pct=25",
            "so p=reject applies to 25% of the mail that fails DMARC; receivers treat the rest "
            "as p=quarantine",
        ),
        ("v=DMARC1; p=reject; t=y", "p=reject with t=y (testing): receivers apply p=quarantine"),
    ],
)
def test_dmarc_pct_and_testing_mode_say_what_the_policy_really_does(dns_server, key, record, words):
    """pct=0 used to be reported as "policy p=reject", as if it applied: it applies to none."""
    check = check_with(dns_server, key, dmarc=f'_dmarc.{DOMAIN}. 300 IN TXT "{record}"').get(
        "dmarc"
    )
    assert check.status == "pass"
    assert words in check.detail


def test_dmarc_at_pct_100_is_the_policy_itself(dns_server, key):
    record = f'_dmarc.{DOMAIN}. 300 IN TXT "v=DMARC1; p=reject; pct=100"'
    check = check_with(dns_server, key, dmarc=record).get("dmarc")
    assert check.detail == "DMARC record found, policy p=reject."


def test_a_sender_at_an_internationalised_domain_is_checked_under_its_ascii_name(
    settings, owner_client, tmp_path
):
    """Addresses keep an IDN domain as Unicode (news@bücher.example); its records are
    published under the ASCII form, which the checks ask for and DKIM signs as (d=).  "Check
    now" was a 500 (DkimError) and such a sender could never be verified by its checks."""
    from tidings.campaigns.models import Sender

    ascii_name = "xn--bcher-kva.example"
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "dkim")
    settings.TIDINGS_DKIM_SELECTOR = "tidings"
    _, _, value = dkim.generate_key("bücher.example")  # stored under the ASCII name
    records = {
        name: record.replace(DOMAIN, ascii_name) for name, record in good_records(value).items()
    }
    with LocalDNS(zone(records)) as server:
        settings.TIDINGS_DNS_RESOLVER = server.address
        settings.TIDINGS_DNS_TIMEOUT = 2.0
        settings.TIDINGS_SENDING_IPS = f"mail.{ascii_name}"
        settings.TIDINGS_BOUNCE_ADDRESS = ""
        owner_client.post(
            reverse("campaigns:senders"),
            {"name": "News", "email": "news@bücher.example", "reply_to": "", "dkim_selector": ""},
        )
        sender = Sender.objects.get()
        response = owner_client.post(
            reverse("campaigns:sender-check", args=[sender.pk]), follow=True
        )
    assert response.status_code == 200
    assert "every required check passed" in response.content.decode()
    sender.refresh_from_db()
    assert sender.verified and sender.health_status == "pass"
    signer = dkim.signer_for("News <news@bücher.example>")
    assert signer is not None and signer.domain == ascii_name.encode()


# --- findings of an outside tester --------------------------------------------------------------
def test_an_spf_record_with_an_upper_case_version_tag_is_read_as_spf(dns_server, key):
    """SPF's version tag and mechanisms are case-insensitive (RFC 7208 §4.5, §12): checkdmarc's
    grammar matched "v=spf1" case-sensitively and the record was a parse error."""
    record = f'{DOMAIN}. 300 IN TXT "V=SPF1 IP4:{SENDING_IP} INCLUDE:_spf.example.net -ALL"'
    spf = check_with(dns_server, key, spf=record).get("spf")
    assert spf.status == "pass", spf.detail
    assert spf.detail == f"SPF record found (1 DNS look-ups), authorising {SENDING_IP}."
    # Read, not merely accepted: a record that does not authorise the server still fails.
    record = f'{DOMAIN}. 300 IN TXT "V=SPF1 include:_spf.example.net -all"'
    spf = check_with(dns_server, key, spf=record).get("spf")
    assert spf.status == "fail"
    assert f"does not authorise {SENDING_IP}" in spf.detail


def test_an_mta_sts_record_with_an_invalid_id_is_a_problem(dns_server, key):
    """RFC 8461 §3.1: id is 1 to 32 letters or digits; "id=!!" passed as "record found"."""
    record = f'_mta-sts.{DOMAIN}. 300 IN TXT "v=STSv1; id=!!"'
    health = check_with(dns_server, key, **{"mta-sts": record})
    check = health.get("mta_sts")
    assert check.status == "warn" and not check.required
    assert check.detail == (
        f"The MTA-STS record at _mta-sts.{DOMAIN} (v=STSv1; id=!!) has an invalid id: an id is "
        "1 to 32 letters or digits (RFC 8461 §3.1), so senders ignore the record and mail to "
        "you may travel without TLS."
    )
    assert check.fix.startswith('Replace it with a TXT record such as "v=STSv1; id=')
    too_long = f'_mta-sts.{DOMAIN}. 300 IN TXT "v=STSv1; id={"a" * 33}"'
    assert check_with(dns_server, key, **{"mta-sts": too_long}).get("mta_sts").status == "warn"
    no_id = f'_mta-sts.{DOMAIN}. 300 IN TXT "v=STSv1;"'
    missing = check_with(dns_server, key, **{"mta-sts": no_id}).get("mta_sts")
    assert missing.status == "warn"
    assert "missing the required id tag" in missing.detail


def _other_dkim_value() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = other.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def test_two_dkim_records_at_one_selector_say_so_and_name_tidings_key(dns_server, key):
    """Two keys at one selector were reported as "not the key tidings signs with" (when the
    stale one came first): the problem is the second record, which the fix must name."""
    stale = _other_dkim_value()
    name = f"tidings._domainkey.{DOMAIN}"
    records = good_records(key)
    own_end, stale_end = "…" + key[-16:], "…" + stale[-16:]
    for first, second in ((stale, key), (key, stale)):  # whichever the DNS returns first
        records["dkim"] = f"{name}. 300 IN TXT {txt(first)}\n{name}. 300 IN TXT {txt(second)}"
        dns_server.serve(zone(records))
        check = check_domain(DOMAIN).get("dkim")
        assert check.status == "fail"
        assert check.detail == (
            f"{name} has two DKIM records: receivers may pick either, so signatures fail at "
            f"random. The one whose key ends {own_end} is tidings' key; the other "
            f"({stale_end}) is stale."
        )
        assert check.fix == (
            f"Delete the stale record at {name} (the key ending {stale_end}) and keep tidings' key."
        )
    # Neither is tidings' key: delete both, publish ours.
    records["dkim"] = f"{name}. 300 IN TXT {txt(stale)}"
    dns_server.serve(zone(records) + f"\n{name}. 300 IN TXT {txt(_other_dkim_value())}")
    check = check_domain(DOMAIN).get("dkim")
    assert check.detail.endswith("None of them is the key tidings signs with.")
    assert check.fix == f"Delete them and publish one TXT record at {name}: {key}."


@pytest.mark.parametrize("how", ["include:", "redirect="])
def test_an_upper_case_spf_record_reached_through_include_or_redirect_is_read(dns_server, key, how):
    """An ESP's record written "V=SPF1 …" (valid: the tag is case-insensitive, RFC 7208 §12)
    made the sender's own record "does not parse" when reached through include: or redirect=:
    checkdmarc follows those itself, and the version tag was only lowered for the top record."""
    top = f'{DOMAIN}. 300 IN TXT "v=spf1 {how}_spf.example.net' + (
        ' -all"' if how == "include:" else '"'
    )
    # Split over two strings, as long records are published.
    esp = f'_spf.example.net. 300 IN TXT "V=SPF1 IP4:{SENDING_IP} " "ip4:198.51.100.0/24 -ALL"'
    spf = check_with(dns_server, key, spf=top, **{"spf-include": esp}).get("spf")
    assert spf.status == "pass", spf.detail
    assert spf.detail == f"SPF record found (1 DNS look-ups), authorising {SENDING_IP}."
    # Read, not merely accepted: an included record that leaves the server out still fails.
    esp = '_spf.example.net. 300 IN TXT "V=SPF1 ip4:198.51.100.0/24 -all"'
    spf = check_with(dns_server, key, spf=top, **{"spf-include": esp}).get("spf")
    assert spf.status == "fail", spf.detail
    assert f"does not authorise {SENDING_IP}" in spf.detail


def test_an_included_record_over_ten_lookups_fails_even_when_the_server_is_listed(dns_server, key):
    """RFC 7208 §4.6.4 counts the look-ups of included records too.  When one included record
    alone needed more than 10, the count stopped at the include and the check passed (the
    sending address is listed first), while receivers answer permerror for the whole record."""
    records = good_records(key)
    records["spf"] = f'{DOMAIN}. 300 IN TXT "v=spf1 ip4:{SENDING_IP} include:_spf.example.net -all"'
    includes = " ".join(f"include:s{n}.example.net" for n in range(11))
    records["spf-include"] = "_spf.example.net. 300 IN TXT " + txt(f"v=spf1 {includes} -all")
    for n in range(11):
        records[f"s{n}"] = f's{n}.example.net. 300 IN TXT "v=spf1 ip4:198.51.100.{n} -all"'
    dns_server.serve(zone(records))
    spf = check_domain(DOMAIN).get("spf")
    assert spf.status == "fail", spf.detail
    assert spf.detail == (
        f"The SPF record at {DOMAIN} needs more than 10 DNS look-ups, counting those of the "
        "records it includes; receivers stop at 10 and treat it as an error."
    )


def test_an_included_record_naming_three_domains_that_do_not_exist_fails(dns_server, key):
    """More than two look-ups that find nothing is a permerror (RFC 7208 §4.6.4), in an
    included record too; there it passed (the sending address is listed first)."""
    top = f'{DOMAIN}. 300 IN TXT "v=spf1 ip4:{SENDING_IP} include:_spf.example.net -all"'
    gone = " ".join(f"a:gone{n}.example.net" for n in range(3))
    esp = f'_spf.example.net. 300 IN TXT "v=spf1 {gone} -all"'
    spf = check_with(dns_server, key, spf=top, **{"spf-include": esp}).get("spf")
    assert spf.status == "fail", spf.detail
    assert "looks up more than two names that do not exist" in spf.detail
    assert spf.fix.startswith("Remove the a:, mx: and include: mechanisms that name domains")
    # Two are tolerated, as receivers do.
    gone = " ".join(f"a:gone{n}.example.net" for n in range(2))
    esp = f'_spf.example.net. 300 IN TXT "v=spf1 {gone} -all"'
    spf = check_with(dns_server, key, spf=top, **{"spf-include": esp}).get("spf")
    assert spf.status == "pass", spf.detail


def test_a_server_failure_for_one_record_leaves_the_other_checks_made(dns_server, key):
    """SERVFAIL from one broken zone (the reverse zone, the DKIM key's) is a quick answer, not a
    time-out: it made every later check "could not check: the DNS did not answer in time" —
    DMARC, MTA-STS, TLS-RPT, BIMI, whose records answer fine."""
    dns_server.fail(f"tidings._domainkey.{DOMAIN}")
    health = check_domain(DOMAIN)
    dkim_check = health.get("dkim")
    assert dkim_check.status == "unknown" and dkim_check.fix == ""
    assert dkim_check.detail.startswith(
        "Could not check: the DNS answered with a server failure (SERVFAIL)"
    )
    assert "in time" not in dkim_check.detail
    assert statuses(health) == {
        "spf": "pass",
        "dkim": "unknown",
        "dmarc": "pass",
        "alignment": "pass",  # SPF aligns on its own
        "dmarc_rua": "pass",
        "rdns": "pass",
        "mx": "pass",
        "mta_sts": "pass",
        "tls_rpt": "pass",
        "bimi": "info",
    }
    assert health.status == "unknown" and not health.failed
    # The reverse zone failing: reverse DNS only.
    dns_server.fail("25.2.0.192.in-addr.arpa")
    health = check_domain(DOMAIN)
    assert {c.key for c in health.checks if c.status == "unknown"} == {"rdns"}
    # The sending server's own name failing: what needs its address is not checked; the rest is.
    dns_server.fail(f"mail.{DOMAIN}")
    health = check_domain(DOMAIN)
    assert health.get("rdns").status == "na"
    assert "the sending server's name could not be looked up" in health.get("spf").detail
    assert {c.key: c.status for c in health.checks if c.key in ("dkim", "dmarc")} == {
        "dkim": "pass",
        "dmarc": "pass",
    }


def test_a_record_that_times_out_still_stops_the_look_ups_after_it(dns_server, key, settings):
    """A time-out (unlike a SERVFAIL) is slow: the checks after it are not asked."""
    settings.TIDINGS_DNS_TIMEOUT = 0.5
    dns_server.stall(f"_dmarc.{DOMAIN}", DOMAIN)
    health = check_domain(DOMAIN)
    assert health.get("dmarc").detail.startswith("Could not check: the DNS did not answer in time")
    assert {c.key for c in health.checks if c.status == "unknown"} >= {"dmarc", "mta_sts", "bimi"}
    assert not health.failed


def test_a_subdomain_sender_is_told_the_sp_policy_that_applies_to_it(dns_server, key):
    """A sender at news.<domain> with no DMARC record of its own gets the organisational
    record's sp= (RFC 7489 6.6.3): "p=reject; sp=none" was reported as "policy p=reject" while
    receivers only report on its mail."""
    sub = f"news.{DOMAIN}"
    _, _, sub_key = dkim.generate_key(sub)
    records = good_records(key)
    records["sub-spf"] = f'{sub}. 300 IN TXT "v=spf1 ip4:{SENDING_IP} -all"'
    records["sub-dkim"] = f"tidings._domainkey.{sub}. 300 IN TXT {txt(sub_key)}"
    org = f"_dmarc.{DOMAIN}. 300 IN TXT"
    records["dmarc"] = f'{org} "v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@{DOMAIN}"'
    dns_server.serve(zone(records))
    check = check_domain(sub).get("dmarc")
    assert check.status == "pass"
    assert check.detail == (
        f"DMARC record found (inherited from {DOMAIN}, whose sp= is the policy for {sub}), "
        "policy sp=none: receivers only report. Once the reports show all your mail passes, "
        "move to sp=quarantine."
    )
    # The organisational domain itself still gets p=.
    assert check_domain(DOMAIN).get("dmarc").detail == "DMARC record found, policy p=reject."
    # sp= stricter than p=, sampled by pct.
    records["dmarc"] = f'{org} "v=DMARC1; p=none; sp=reject; pct=50"'
    dns_server.serve(zone(records))
    detail = check_domain(sub).get("dmarc").detail
    assert "policy sp=reject with pct=50" in detail
    assert "receivers treat the rest as sp=quarantine" in detail
    # No sp=: the subdomain gets p=, and nothing mentions sp.
    records["dmarc"] = f'{org} "v=DMARC1; p=quarantine"'
    dns_server.serve(zone(records))
    assert check_domain(sub).get("dmarc").detail == (
        f"DMARC record found (inherited from {DOMAIN}), policy p=quarantine."
    )


def test_a_name_the_spf_record_needs_that_the_dns_cannot_answer_for_is_could_not_check(
    dns_server, key
):
    """checkdmarc leaves an a: mechanism whose look-up got SERVFAIL out of the record with a
    warning, so the check passed on the ip4: after it; receivers answer temperror there."""
    record = f'{DOMAIN}. 300 IN TXT "v=spf1 a:broken.example.net ip4:{SENDING_IP} -all"'
    dns_server.fail("broken.example.net")
    health = check_with(dns_server, key, spf=record)
    spf = health.get("spf")
    assert spf.status == "unknown", spf.detail
    assert spf.detail.startswith("Could not check: the DNS answered with a server failure")
    assert not health.failed and health.get("dmarc").status == "pass"


# --- DKIM behind a CNAME --------------------------------------------------------------------------
def test_a_dkim_cname_pointing_at_a_name_that_does_not_exist_names_its_target(dns_server, key):
    """An ESP's selector published as a CNAME whose target was removed (the account closed,
    the key rotated away): the operator is told which name the CNAME points to and that it
    does not exist — not only that no key is published at the selector, which they can see
    is there."""
    target = "s1.domainkey.u1234.wl.sendgrid.net"
    records = good_records(key)
    records["esp"] = f"s1._domainkey.{DOMAIN}. 300 IN CNAME {target}."
    dns_server.serve(zone(records))
    check = check_domain(DOMAIN, selector="s1").get("dkim")
    assert check.status == "fail"
    assert f"s1._domainkey.{DOMAIN} is a CNAME pointing to {target}" in check.detail
    assert "does not exist" in check.detail
    assert target in check.fix
    # The target published again: the key behind the CNAME is read.
    medium = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = medium.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    records["esp-key"] = f"{target}. 300 IN TXT " + txt(
        f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    )
    dns_server.serve(zone(records))
    assert check_domain(DOMAIN, selector="s1").get("dkim").status == "pass"


def test_a_dkim_cname_to_a_name_without_a_key_says_so(dns_server, key):
    target = "selector1-example-co-uk._domainkey.example.onmicrosoft.com"
    records = good_records(key)
    records["esp"] = f"selector1._domainkey.{DOMAIN}. 300 IN CNAME {target}."
    records["target"] = f'{target}. 300 IN TXT "v=spf1 -all"'
    dns_server.serve(zone(records))
    check = check_domain(DOMAIN, selector="selector1").get("dkim")
    assert check.status == "fail"
    assert f"is a CNAME pointing to {target}, which has no DKIM key" in check.detail


# --- the envelope domain takes mail (MX) ----------------------------------------------------------
def test_an_envelope_domain_that_takes_no_mail_is_a_problem_named_with_its_fix(dns_server, key):
    """Bounces go back to the envelope domain, and receivers that check the sender's domain
    refuse mail from one that takes none: a null MX (RFC 7505, as a send-only domain
    publishes) or neither an MX nor an address is a warning saying what to publish; an address
    alone takes mail in an MX's place (RFC 5321)."""
    check = check_with(dns_server, key, mx=f"{DOMAIN}. 300 IN MX 0 .").get("mx")
    assert check.status == "warn"
    assert "null MX" in check.detail and "bounces cannot come back" in check.detail
    assert check.fix.startswith(f"Remove the null MX at {DOMAIN}")
    records = good_records(key)
    records["mx"] = ""
    records["bounce-spf"] = f'bounces.{DOMAIN}. 300 IN TXT "v=spf1 ip4:{SENDING_IP} -all"'
    dns_server.serve(zone(records))
    check = check_domain(DOMAIN, envelope_domain=f"bounces.{DOMAIN}").get("mx")
    assert check.status == "warn"
    assert f"bounces.{DOMAIN} has no MX record and no address" in check.detail
    assert check.fix.startswith(f"Publish an MX record at bounces.{DOMAIN}")
    records["bounce-a"] = f"bounces.{DOMAIN}. 300 IN A {SENDING_IP}"
    dns_server.serve(zone(records))
    check = check_domain(DOMAIN, envelope_domain=f"bounces.{DOMAIN}").get("mx")
    assert check.status == "pass" and "has an address" in check.detail
    assert (
        check_with(dns_server, key).get("mx").detail == f"{DOMAIN} takes mail (MX: mail.{DOMAIN})."
    )
