"""Field labels everywhere come from the policy's field names in words: "Job title", never
"Jobtitle" or "job_title"."""

import re

import pytest
from django.urls import reverse

from tidings.audience.actions import do_create_contact
from tidings.policy import get_policy
from tidings.policy.plain import field_title

pytestmark = pytest.mark.django_db


def every_field() -> set[str]:
    policy = get_policy()
    return {f for p in policy.purposes.values() for f in p.collects.all}


def test_every_policy_field_has_a_label_in_words():
    for name in every_field():
        label = field_title(name)
        assert "_" not in label and label[0].isupper(), (name, label)
        assert label.replace(" ", "").lower() == name.replace("_", "").lower() or name in (
            "email", "phone", "ip_address", "dob", "vat_number",
        )  # fmt: skip
    assert field_title("job_title") == "Job title"
    assert field_title("work_address") == "Work address"


def test_the_contact_page_labels_fields_in_words(client, owner):
    client.force_login(owner)
    contact, _ = do_create_contact(
        {"name": "Ada Lovelace", "email": "ada@example.com", "job_title": "Mathematician"},
        purpose="newsletter",
    )
    for url in (
        reverse("audience:contact", args=[contact.pk]),
        reverse("audience:contact-edit", args=[contact.pk]),
    ):
        page = client.get(url).text
        assert "Jobtitle" not in page and "Workaddress" not in page
        assert re.search(r">\s*Job title", page), url
        assert not re.search(r">\s*job_title\s*<", page), url
