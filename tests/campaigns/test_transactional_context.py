"""Transactional mail renders a template with extra, per-message values (an order number, a
link) as ``data``, plain data only; campaigns see an empty ``data``."""

from __future__ import annotations

import pytest

from tests.campaigns.delivery_helpers import make_list, subscribers
from tidings.campaigns.models import Template
from tidings.campaigns.rendering import ensure_default_layout
from tidings.campaigns.transactional import enqueue_transactional

pytestmark = pytest.mark.django_db


class Order:
    """Not plain data: the template sees its text only, never its attributes."""

    secret = "internal"

    def __str__(self) -> str:
        return "order #42"


def test_extra_variables_reach_the_template_as_plain_data():
    (ada,) = subscribers(make_list(), 1)
    template = Template.objects.create(
        name="Receipt",
        layout=ensure_default_layout(),
        subject="Order {{ data.order.number }} for {{ contact.first_name }}",
        body=(
            "Items: {% for item in data.order['items'] %}{{ item }}, {% endfor %}\n\n"
            "About: {{ data.about }} / {{ data.about.secret }}."
        ),
    )
    message = enqueue_transactional(
        template,
        ada,
        {
            "order": {"number": 1042, "items": ("tea", "scones")},
            "about": Order(),
        },
    )
    assert message.subject == f"Order 1042 for {ada.name.split()[0]}"
    assert "Items: tea, scones," in message.text
    assert "About: order #42 / ." in message.text


def test_without_extra_variables_nothing_changes():
    (ada,) = subscribers(make_list(), 1)
    template = Template.objects.create(
        name="Plain", layout=ensure_default_layout(), subject="Hi", body="Hello {{ data.order }}!"
    )
    assert "Hello !" in enqueue_transactional(template, ada).text
