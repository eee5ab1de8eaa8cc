"""The normal form of an address: one mailbox, one stored form, one suppression hash."""

from __future__ import annotations

import pytest

from tidings.audience.emails import InvalidEmail, email_hmac, email_key, normalise_email


@pytest.mark.parametrize(
    "spelling",
    [
        "anna@bücher.example",
        "anna@BÜCHER.example",
        "anna@xn--bcher-kva.example",
        "anna@XN--BCHER-KVA.EXAMPLE",
    ],
)
def test_an_idn_domain_in_unicode_or_in_its_ascii_form_is_one_address(spelling):
    # The fast path for plain ASCII addresses kept "xn--" domains as they were typed, while the
    # library writes the Unicode form: one mailbox had two stored forms and two hashes.
    assert normalise_email(spelling) == "anna@bücher.example"
    assert email_hmac(normalise_email(spelling)) == email_hmac("anna@bücher.example")


def test_a_plain_address_keeps_its_local_part_and_lowers_its_domain():
    assert normalise_email(" Anna+News@Example.COM ") == "Anna+News@example.com"


# The HMAC of "strasse.zoë@example.com" under this key, as the suppression list stored it
# before contacts had an email_key (computed with that release's email_hmac).  Entries cannot
# be recomputed (nobody's address is kept), so this must never change.
PINNED_KEY = "suppression-key-pinned-for-this-test"
PINNED_HMAC = "b202ba4c839e86d85c182663e89c85dc79921950b6e5b04537f433188d4543b0"


@pytest.mark.parametrize(
    "spelling",
    ["Straße.ZOË@Example.com", "strasse.zoë@example.com", "STRASSE.Zoë@EXAMPLE.COM"],
)
def test_a_stored_suppression_hmac_still_matches_every_spelling_of_its_address(settings, spelling):
    settings.TIDINGS_SUPPRESSION_KEY = PINNED_KEY
    assert email_hmac(normalise_email(spelling)) == PINNED_HMAC


def test_the_contact_key_and_the_suppression_hash_fold_alike():
    # One rule for "same address": ß is ss and Ë is ë for contacts as for the suppression list.
    assert email_key(normalise_email("Straße.ZOË@Example.com")) == "strasse.zoë@example.com"
    assert email_key("ΣΊΣΥΦΟΣ@example.com") == email_key("σίσυφος@example.com")


@pytest.mark.parametrize(
    "address",
    [
        "a" * 64 + "@example.com",
        "ö" * 32 + "@example.com",  # 64 octets in UTF-8
        "jörg@bücher.example",
        "x@" + "b" * 63 + ".example",
    ],
)
def test_addresses_at_the_rfc_5321_limits_are_accepted(address):
    assert normalise_email(address)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("a" * 65 + "@example.com", "65 bytes"),  # the ASCII fast path's fallback let it in
        ("ö" * 33 + "@example.com", "66 bytes"),  # 33 characters, 66 octets
        ("a" * 60 + "ö" * 3 + "@bücher.example", "66 bytes"),
        ("x@" + "b" * 64 + ".example", "at most 63 characters"),
        ("x@" + ("b" * 60 + ".") * 5 + "example", "too long"),
    ],
)
def test_addresses_over_the_rfc_5321_limits_are_refused_without_repeating_them(address, words):
    with pytest.raises(InvalidEmail) as caught:
        normalise_email(address)
    message = str(caught.value)
    assert words in message
    assert address.split("@")[0] not in message and "b" * 60 not in message
