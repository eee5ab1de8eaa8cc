"""Shared pieces of the CRM's tests: operators, an organisation under contract, and mail as a
person's mail program would send it to the support address."""

from __future__ import annotations

from datetime import date
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from tests.conftest import OPERATOR_PASSWORD
from tidings.crm.actions import do_add_support_contact, do_create_contract, do_create_organisation
from tidings.crm.models import OperatorPreference

SUPPORT = "Example Support <support@example.co.uk>"


def operator(username: str, *, role: str = "editor", notify: str = "each", **rota) -> object:
    """An operator with a role, an email address and CRM preferences."""
    user = get_user_model().objects.create_user(
        username, f"{username}@example.co.uk", OPERATOR_PASSWORD, is_staff=True
    )
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    OperatorPreference.objects.create(user=user, notify=notify, **rota)
    return user


def customer(*, first_response_hours=None, licensed_users=None, end=None, start=date(2025, 1, 1)):
    """Initech, under a contract, with Peter as its support contact."""
    initech = do_create_organisation(name="Initech")
    contract = do_create_contract(
        initech,
        start=start,
        end=end,
        reference="C-1",
        first_response_hours=first_response_hours,
        licensed_users=licensed_users,
    )
    peter, _ = do_add_support_contact(
        {"name": "Peter Gibbons", "email": "peter@initech.example", "company": "Initech"},
        organisation=initech,
    )
    return initech, contract, peter


def mail(
    sender: str,
    to: str = SUPPORT,
    *,
    subject: str = "Hello",
    body: str = "Hello there.",
    html: str = "",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> bytes:
    """A mail as it arrives: From, To, Subject, Date, Message-ID, a text (and HTML) body."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = make_msgid(domain="mail.example")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        main, sub = ctype.split("/")
        message.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return bytes(message)
