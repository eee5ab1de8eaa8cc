"""Operator pages for imports, sign-up forms and consent proof."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.audience.models import Contact, Import, MailingList, SignupForm
from tidings.audience.tasks import check_upload, import_contacts
from tidings.campaigns.models import SystemEmailTemplate

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def news():
    return MailingList.objects.create(name="Product news", topic="product news")


def test_an_uploaded_csv_is_checked_confirmed_and_imported_in_the_background(owner_client, news):
    csv = "Email Address,First Name,Last Name\nada@example.com,Ada,Lovelace\nnot-an-email,Bad,Row\n"
    response = owner_client.post(
        reverse("audience:imports"),
        {
            "file": SimpleUploadedFile("people.csv", csv.encode(), content_type="text/csv"),
            "mailing_list": news.pk,
            "consent_source": "sign-up sheet at the fair",
        },
    )
    imp = Import.objects.get()
    assert response["Location"] == reverse("audience:import", args=[imp.pk])
    assert imp.status == "checking"  # checked first: nothing is imported yet
    assert DBTaskResult.objects.filter(task_path__endswith="check_upload").exists()
    check_upload.call(imp.pk)  # what `tidings worker` does with the queued check
    assert not Contact.objects.exists()
    page = owner_client.get(reverse("audience:import", args=[imp.pk])).content.decode()
    assert "Confirm and import" in page

    owner_client.post(reverse("audience:import-confirm", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.status == "queued"
    assert DBTaskResult.objects.filter(task_path__endswith="import_contacts").exists()
    import_contacts.call(imp.pk)  # what `tidings worker` does with the queued task

    progress = owner_client.get(
        reverse("audience:import", args=[imp.pk]), headers={"Accept": "application/json"}
    ).json()
    assert progress["done"] and progress["percent"] == 100
    assert (progress["created"], progress["bad_rows"]) == (1, 1)
    assert Contact.objects.get().name == "Ada Lovelace"
    page = owner_client.get(reverse("audience:import", args=[imp.pk])).content.decode()
    assert "Download the bad-rows report" in page
    report = owner_client.get(reverse("audience:import-report", args=[imp.pk]))
    assert b"not-an-email" in b"".join(report.streaming_content)


def test_an_operator_builds_a_sign_up_form_and_gets_its_snippet(owner_client, news):
    response = owner_client.post(
        reverse("audience:signup-form-new"),
        {
            "name": "Footer form",
            "slug": "footer",
            "lists": [news.pk],
            "optional_fields": ["company"],
            "is_active": "on",
        },
    )
    form = SignupForm.objects.get()
    assert response["Location"] == reverse("audience:signup-form-edit", args=[form.pk])
    page = owner_client.get(response["Location"]).content.decode()
    assert "/f/footer" in page
    assert "&lt;form" in page  # the embeddable HTML, shown as text to copy
    assert form.optional_fields == ["company"]


def test_a_sign_up_form_cannot_offer_a_field_the_policy_does_not_allow(owner_client, news):
    response = owner_client.post(
        reverse("audience:signup-form-new"),
        {"name": "Greedy", "slug": "greedy", "lists": [news.pk], "optional_fields": ["religion"]},
    )
    assert response.status_code == 200
    assert "optional_fields" in response.context["form"].errors
    assert not SignupForm.objects.exists()


def test_the_consent_proof_downloads_as_csv(owner_client, news):
    ada, _ = do_create_contact({"name": "Ada", "email": "ada@example.com"}, purpose="newsletter")
    do_subscribe(
        ada, news, source="form", source_ref="form:7", wording_text="Yes, email me", confirmed=True
    )
    response = owner_client.get(reverse("audience:consent-proof", args=[ada.pk]))
    body = b"".join(response.streaming_content).decode()
    assert "Yes, email me" in body and "form:7" in body
    assert response["Content-Disposition"].startswith("attachment")


def test_an_operator_rewords_the_confirmation_email_and_sees_a_preview(owner_client):
    from tidings.campaigns.mail import render_system_email

    url = reverse("system-emails:edit", args=["confirmation"])
    page = owner_client.get(url)
    assert "Please confirm" in page.context["form"].initial["subject"]
    bad = owner_client.post(url, {"subject": "Hi {{ name", "text_body": "x {{ confirm_url }}"})
    assert bad.status_code == 200 and bad.context["form"].non_field_errors()
    owner_client.post(
        url,
        {
            "subject": "Confirm, {{ first_name }}",
            "text_body": "Click {{ confirm_url }}\n{% for c in changes %}- {{ c }}\n{% endfor %}",
        },
    )
    subject, text, _ = render_system_email(
        "confirmation", {"name": "Grace Hopper", "lists": ["News"], "confirm_url": "https://x/c/1"}
    )
    assert subject == "Confirm, Grace"
    assert "https://x/c/1" in text
    preview = owner_client.get(url).context["preview"]
    assert preview[0] == "Confirm, Ada"


def test_a_confirmation_wording_that_hides_what_is_confirmed_is_refused_with_a_clear_error(
    owner_client,
):
    url = reverse("system-emails:edit", args=["confirmation"])
    page = owner_client.get(url).content.decode()
    assert "This email must show" in page  # said before anyone tries

    refused = owner_client.post(
        url,
        {
            "subject": "Confirm, {{ first_name }}",
            "text_body": "Click {{ confirm_url }}\n{% for c in changes %}- {{ c }}{% endfor %}",
            "html_body": '<a href="{{ confirm_url }}">Confirm</a>',  # no changes here
        },
    )

    assert refused.status_code == 200
    errors = " ".join(refused.context["form"].non_field_errors())
    assert "Text and HTML: this email must show {% for c in changes %}" in errors
    assert "so that people see what they are confirming" in errors
    assert not SystemEmailTemplate.objects.exists()


def test_a_saved_confirmation_wording_without_the_changes_is_passed_over_when_there_are_some(
    owner_client,
):
    from tidings.campaigns.mail import render_system_email

    # Saved before the edit form asked for {{ changes }}.
    SystemEmailTemplate.objects.create(
        key="confirmation", subject="Confirm", text_body="Click {{ confirm_url }}"
    )
    context = {"lists": ["News"], "confirm_url": "https://x/c/1"}

    assert render_system_email("confirmation", context)[1] == "Click https://x/c/1"
    _, text, _ = render_system_email(
        "confirmation", {**context, "changes": ["You may telephone me about these topics"]}
    )
    assert "  - You may telephone me about these topics" in text  # the default wording
    page = owner_client.get(reverse("system-emails:edit", args=["confirmation"]))
    assert "Your saved wording leaves out" in page.content.decode()


def test_the_sign_up_form_page_shows_the_address_its_slug_makes(owner_client, news):
    # The slug's help text said "/f/<slug>" unescaped (Django prints help text as HTML): a
    # browser read <slug> as an element and showed "The form's address: /f/".
    page = owner_client.get(reverse("audience:signup-form-new")).content.decode()

    assert "The form's address: /f/&lt;slug&gt;" in page
    assert "<slug>" not in page


def test_the_sign_up_form_page_speaks_plainly_and_its_errors_say_what_to_do(owner_client, news):
    """A marketer met "Slug:", "Redirect url:", "Is active:" and, for "Join our news!", "Enter a
    valid “slug” consisting of letters, numbers, underscores or hyphens." with no list ticked,
    "This field is required."."""
    page = owner_client.get(reverse("audience:signup-form-new")).content.decode()
    for plain in ("Web address (slug)", "Your own thank-you page (optional)", "Open for sign-ups"):
        assert plain in page
    for jargon in (">Slug:<", ">Redirect url:<", ">Is active:<"):
        assert jargon not in page
    response = owner_client.post(
        reverse("audience:signup-form-new"), {"name": "News", "slug": "Join our news!"}
    )
    errors = response.context["form"].errors
    assert errors["slug"] == [
        "Use only letters, numbers, hyphens and underscores, with no spaces: for example "
        "monthly-news."
    ]
    assert errors["lists"] == ["Tick at least one list for people to sign up to."]
    assert not SignupForm.objects.exists()
