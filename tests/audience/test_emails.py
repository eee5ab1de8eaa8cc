"""The normal form of an address: one mailbox, one stored form, one suppression hash."""

from __future__ import annotations

import pytest

from tidings.audience.emails import email_hmac, normalise_email


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
