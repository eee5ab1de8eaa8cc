"""Loading policy.toml: the example is accepted, and every broken file names the key and problem."""

import re
import tomllib
from pathlib import Path

import pytest

from tidings.cli import main
from tidings.policy import PolicyError, load_policy, parse_policy
from tidings.policy.commands import EXAMPLE_POLICY

SHARED_EXAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "policy.example.toml"
EXAMPLE = EXAMPLE_POLICY.read_text(encoding="utf-8")


def broken(old: str, new: str) -> str:
    assert old in EXAMPLE, f"the example policy no longer contains {old!r}"
    return EXAMPLE.replace(old, new, 1)


def problems_of(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.toml")
    return caught.value.lines()


def _contains(ours, reference, where="") -> list[str]:
    """Where ``ours`` departs from ``reference``: every key of it must keep its value (added
    keys, such as the cookies section, are allowed)."""
    if isinstance(reference, dict) and isinstance(ours, dict):
        return [
            problem
            for key, value in reference.items()
            for problem in (
                _contains(ours[key], value, f"{where}.{key}")
                if key in ours
                else [f"{where}.{key}: missing"]
            )
        ]
    return [] if ours == reference else [f"{where}: {ours!r} != {reference!r}"]


def test_the_bundled_example_keeps_everything_the_shared_reference_policy_says():
    if not SHARED_EXAMPLE.exists():
        pytest.skip("no shared/ folder beside this checkout")
    reference = tomllib.loads(SHARED_EXAMPLE.read_text(encoding="utf-8"))
    assert _contains(tomllib.loads(EXAMPLE), reference) == []


def test_the_example_policy_loads_with_all_its_parts():
    policy = load_policy(EXAMPLE_POLICY)
    assert policy.controller.name == "Example Software Ltd"
    assert policy.controller.supervisory_authority.url == "https://ico.org.uk"
    assert set(policy.purposes) == {
        "enquiry",
        "newsletter",
        "order",
        "contract_support",
        "analytics",
    }
    assert policy.processors["crm_host"].location == "US"
    assert policy.processors["crm_host"].is_international_transfer
    assert not policy.processors["mail_host"].is_international_transfer  # "UK" means GB
    assert policy.processors["mail_host"].location == "GB"
    assert "health" in policy.sensitive.categories
    assert policy.sensitive.on_detect == "redact"
    assert policy.marketing.channels == ("email", "phone", "post")
    assert policy.marketing.topics == ("product news", "events and webinars", "training")
    assert policy.retention["support_contact"].after == ("first", ("contract_end", "left_employer"))
    assert policy.retention["subscription"].while_state == "subscribed"
    assert policy.retention["enquiry"].extendable_on_request
    assert policy.rights.response_days == 30
    assert policy.purposes["newsletter"].double_opt_in
    assert policy.purposes["analytics"].identifying is False
    assert re.fullmatch(r"[0-9a-f]{64}", policy.sha256)


def test_the_policy_api_answers_what_other_apps_ask():
    policy = load_policy(EXAMPLE_POLICY)
    fields = policy.fields_for("newsletter")
    assert fields.required == ("name", "email")
    assert fields.optional == ("phone", "company", "job_title")
    assert [p.name for p in policy.processors_for("contract_support")] == [
        "Third-party database hosting provider",
        "Helpdesk software",
    ]
    assert policy.is_legal_minimum("order")
    assert not policy.is_legal_minimum("enquiry")
    assert policy.retention_for("page_view").duration.amount == 25
    assert policy.category_of("job_title") == "identity"
    with pytest.raises(KeyError, match="no purpose"):
        policy.fields_for("telepathy")


def test_the_policy_cannot_be_changed_once_loaded():
    policy = load_policy(EXAMPLE_POLICY)
    with pytest.raises(Exception, match="frozen"):
        policy.version = "tomorrow"
    with pytest.raises(AttributeError):
        policy.marketing.topics.append("gossip")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'required = ["name", "email"], optional = ["phone", "company", "job_title"] }\n'
            'sources = ["newsletter',
            'required = ["name", "email", "fax"], optional = ["phone", "company", "job_title"] }\n'
            'sources = ["newsletter',
            'policy.toml: purposes.newsletter.collects.required[2]: unknown field "fax" '
            "— not in any category",
        ),
        (
            'processors = ["mail_host"]',
            'processors = ["carrier_pigeon"]',
            'policy.toml: purposes.newsletter.processors[0]: unknown processor "carrier_pigeon"',
        ),
        (
            'lawful_basis = "consent"\ncollects = { required = ["name", "email"], optional = '
            '["phone", "company", "job_title"] }',
            'lawful_basis = "vibes"\ncollects = { required = ["name", "email"], optional = '
            '["phone", "company", "job_title"] }',
            "policy.toml: purposes.newsletter.lawful_basis: input should be 'consent'",
        ),
        (
            'keep = "12 months"\nafter = "last_contact"',
            'keep = "twelve months"\nafter = "last_contact"',
            'policy.toml: retention.enquiry.keep: "twelve months" is not a period',
        ),
        (
            'after = "last_contact"',
            'after = "last_contacted"',
            'policy.toml: retention.enquiry.after: unknown clock "last_contacted" — enquiry '
            "records have: created, last_contact",
        ),
        (
            'after = { first_of = ["contract_end", "left_employer"] }',
            'after = { first_of = ["contract_end"] }',
            "policy.toml: retention.support_contact.after: first_of takes a list of two or more",
        ),
        (
            "[retention.page_view]\nkeep",
            "[retention.page_views]\nkeep",
            'policy.toml: purposes.analytics.record: record kind "page_view" has no retention rule',
        ),
        (
            "[retention.page_view]\nkeep",
            "[retention.page_views]\nkeep",
            'policy.toml: retention.page_views: unknown record kind "page_views"',
        ),
        (
            'location = "US"\ntransfer_safeguard = "standard contractual clauses"\n\n'
            "[processors.mail_host]",
            'location = "US"\n\n[processors.mail_host]',
            "policy.toml: processors.crm_host.transfer_safeguard: United States has no UK "
            "adequacy decision",
        ),
        (
            'location = "UK"',
            'location = "Narnia"',
            'policy.toml: processors.mail_host.location: "Narnia" is not a country',
        ),
        (
            'email = "privacy@example.co.uk"\nphone',
            'email = "privacy at example"\nphone',
            "policy.toml: controller.email: not a valid email address",
        ),
        (
            'name = "Example Software Ltd"\n',
            'name = "Example Software Ltd"\nmotto = "we care"\n',
            'policy.toml: controller: unknown key "motto"',
        ),
        (
            'supervisory_authority = { name = "Information Commissioner\'s Office", '
            'url = "https://ico.org.uk" }\n',
            "",
            'policy.toml: controller: missing key "supervisory_authority"',
        ),
        (
            '"criminal_history"]',
            '"criminal_history", "star_sign"]',
            "policy.toml: sensitive.categories[9]: input should be",
        ),
        (
            'keep = "while subscribed"',
            'keep = "while breathing"',
            'policy.toml: retention.subscription.keep: "while breathing" does not apply to '
            "subscription records",
        ),
        (
            'keep = "6 years"\nafter = "created"\nminimum',
            'keep = "6 years"\nminimum',
            'policy.toml: retention.order.after: missing: "6 years" after which clock?',
        ),
        (
            'identity = ["name", "job_title"]',
            'identity = ["name", "job_title", "email"]',
            'policy.toml: categories.contact[0]: field "email" is already in category "identity"',
        ),
        (
            "response_days = 30",
            "response_days = 90",
            "policy.toml: rights.response_days: input should be less than or equal to 31",
        ),
        (
            'lawful_basis = "consent"\ncollects = { required = ["name", "email"], optional = '
            '["phone", "company", "job_title"] }',
            'lawful_basis = "legitimate_interests"\ncollects = { required = ["name", "email"], '
            'optional = ["phone", "company", "job_title"] }',
            "policy.toml: purposes.newsletter.lawful_basis: marketing email needs consent",
        ),
        (
            'identity = ["name", "job_title"]',
            'identity = ["name", "job_title", "health"]',
            'policy.toml: categories.identity[2]: "health" is a special category (GDPR Art. 9/10)',
        ),
        (
            'website = "https://www.example.co.uk"',
            'website = "javascript:alert(1)"',
            'policy.toml: controller.website: "javascript:alert(1)" is not a web address',
        ),
    ],
    ids=[
        "unknown field",
        "unknown processor",
        "unknown lawful basis",
        "unreadable period",
        "unknown clock",
        "first_of of one",
        "record kind without rule",
        "rule for unknown kind",
        "transfer without safeguard",
        "unknown country",
        "bad email",
        "unknown key",
        "missing key",
        "unknown sensitive category",
        "while of unknown state",
        "period without clock",
        "field in two categories",
        "response beyond a month",
        "newsletter without consent",
        "special category as a field",  # was accepted, and a form could then ask for it
        "website not a web address",
    ],
)
def test_a_broken_policy_names_the_file_the_key_and_the_problem(old, new, expected):
    lines = problems_of(broken(old, new))
    assert any(line.startswith(expected) for line in lines), lines
    assert all(line.startswith("policy.toml: ") and "\n" not in line for line in lines)


def test_invalid_toml_says_where():
    (line,) = problems_of(EXAMPLE.replace('version = "2020-09-23"', "version = 2020-09-23-"))
    assert line.startswith("policy.toml: not valid TOML:")
    assert "line 6" in line


def test_toml_nested_thousands_deep_is_a_problem_not_a_recursion_error():
    (line,) = problems_of(EXAMPLE + "\ndeep = " + "[" * 5000 + "]" * 5000 + "\n")
    assert line == "policy.toml: not valid TOML: nested too deeply"


def test_a_missing_file_is_reported_not_raised_as_a_traceback(tmp_path):
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "nope.toml")


def test_every_problem_is_reported_at_once():
    text = broken('on_detect = "redact"', 'on_detect = "shrug"').replace(
        'location = "UK"', 'location = "XX"'
    )
    lines = problems_of(text)
    assert [line.split(":")[1].strip() for line in lines] == [
        "sensitive.on_detect",
        "processors.mail_host.location",
    ]


def test_policy_check_prints_a_summary_of_a_valid_file(capsys):
    assert main(["policy", "check", str(EXAMPLE_POLICY)]) == 0
    out = capsys.readouterr().out
    assert "valid policy" in out
    assert "Example Software Ltd" in out
    for needle in ("newsletter", "support_contact", "United States", "legal minimum", "health"):
        assert needle in out


def test_policy_check_prints_one_line_per_problem_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "policy.toml"
    bad.write_text(broken('processors = ["mail_host"]', 'processors = ["nobody"]'))
    assert main(["policy", "check", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f'{bad}: purposes.newsletter.processors[0]: unknown processor "nobody" '
        "(known: crm_host, mail_host, helpdesk)"
    ]


def test_policy_check_defaults_to_the_configured_policy(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TIDINGS_POLICY", str(tmp_path / "missing.toml"))
    assert main(["policy", "check"]) == 1
    assert "missing.toml: file not found" in capsys.readouterr().err


def test_a_file_saved_as_utf8_with_a_byte_order_mark_loads(tmp_path):
    # Windows Notepad's "UTF-8 with BOM": tomllib saw U+FEFF and said "Invalid statement
    # (at line 1, column 1)" about a file that is otherwise the example.
    file = tmp_path / "policy.toml"
    file.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.encode("utf-8"))
    assert load_policy(file).controller.name == "Example Software Ltd"


def test_a_version_written_as_a_toml_date_is_the_same_version():
    # version = 2026-11-01 without quotes is a TOML date; it was refused with Python's repr
    # ("got datetime.date(2026, 11, 1)").
    policy = parse_policy(broken('version = "2020-09-23"', "version = 2020-09-23"))
    assert policy.version == "2020-09-23"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "[purposes.newsletter]",
            "[purposes.rundbrief]",
            "policy.toml: purposes.rundbrief.record: tidings keeps subscription records for the "
            'purpose named "newsletter": call this purpose [purposes.newsletter]',
        ),
        (
            "[purposes.order]",
            "[purposes.bestellung]",
            "policy.toml: purposes.bestellung.record: tidings keeps order records for the purpose "
            'named "order"',
        ),
        (
            'record = "support_contact"',
            'record = "enquiry"',
            'policy.toml: purposes.contract_support.record: the purpose "contract_support" '
            'creates support_contact records in tidings, not "enquiry"',
        ),
    ],
    ids=["newsletter renamed", "order renamed", "support purpose with another record"],
)
def test_the_purposes_tidings_acts_on_are_named_as_it_looks_them_up(old, new, expected):
    # The sign-up forms ask the fields of purposes.newsletter, the CRM those of
    # purposes.enquiry/order/contract_support: under another name the policy was accepted and
    # every sign-up form, contact form and CRM page stopped with a KeyError.
    lines = problems_of(broken(old, new))
    assert any(line.startswith(expected) for line in lines), lines


def test_policy_check_says_whether_the_enquiry_sources_switch_on_the_contact_form(tmp_path, capsys):
    # The contact form (/contact) and demo booking exist only while the enquiry purpose lists
    # the source "web form"; a policy saying "our website form" got a 404 there, and nothing
    # in the summary or the README said why.
    file = tmp_path / "policy.toml"
    file.write_text(broken('sources = ["web form", ', 'sources = ["our website form", '))
    assert main(["policy", "check", str(file)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        'Contact form (/contact) and demo booking (/demo/): off: add "web form" to '
        "purposes.enquiry.sources" in out
    )
    assert (
        'Enquiries by mail to the support address: on (purposes.enquiry.sources lists "email")'
        in out
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'identity = ["name", "job_title"]',
            'identity = "name"',
            'policy.toml: categories.identity: expected a list, such as ["a", "b"], got "name"',
        ),
        (
            'collects = { required = ["name", "email"], optional = ["phone", "company", '
            '"job_title", "work_address"] }',
            'collects = ["name"]',
            "policy.toml: purposes.enquiry.collects: expected a table, such as { key = value } "
            'or a [section], got ["name"]',
        ),
        (
            "response_days = 30",
            "response_days = 30.5",
            "policy.toml: rights.response_days: expected a whole number, got 30.5",
        ),
        (
            "double_opt_in = true",
            'double_opt_in = "maybe"',
            'policy.toml: purposes.newsletter.double_opt_in: expected true or false, got "maybe"',
        ),
        (
            'version = "2020-09-23"',
            "version = 5",
            "policy.toml: version: expected text in quotes, got 5",
        ),
    ],
    ids=["text for a list", "list for a table", "fraction", "word for a boolean", "number"],
)
def test_a_value_of_the_wrong_type_is_described_in_toml_not_python(old, new, expected):
    # These said "input should be a valid tuple, got 'name'" and "Input should be a valid
    # dictionary or instance of Collects": Python's words and reprs, not the file's.
    assert problems_of(broken(old, new)) == [expected]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'name = "Example Software Ltd"',
            'name = """Example Software\nLtd"""',
            "policy.toml: controller.name: must be one line (no line break or tab)",
        ),
        (
            'title = "Answering your enquiries"',
            'title = "Answering\\u0000your enquiries"',
            "policy.toml: purposes.enquiry.title: must not contain the control character U+0000",
        ),
    ],
    ids=["line break in a name", "NUL in a title"],
)
def test_names_and_titles_are_one_line_of_text_without_control_characters(old, new, expected):
    # The controller's name is the sender's name of every mail: with a line break in it each
    # message failed ("Header values may not contain linefeed"); a NUL cannot be stored in
    # PostgreSQL (the demo's sender).
    assert problems_of(broken(old, new)) == [expected]


def test_a_postal_address_may_span_lines():
    policy = parse_policy(
        broken(
            'address = "Example House, Business Park, Chester, CH4 0AA, United Kingdom"',
            'address = """Example House\nChester CH4 0AA"""',
        )
    )
    assert policy.controller.address == "Example House\nChester CH4 0AA"


def test_a_transfer_without_a_safeguard_names_the_uk_mechanisms():
    """A UK controller's safeguards are the IDTA or the UK Addendum; for the United States the
    "data bridge" covers only organisations certified under the UK Extension to the DPF."""
    without = 'location = "US"\n\n[processors.mail_host]'
    (us,) = [
        line
        for line in problems_of(
            broken(
                'location = "US"\ntransfer_safeguard = "standard contractual clauses"\n\n'
                "[processors.mail_host]",
                without,
            )
        )
        if "crm_host" in line
    ]
    assert "UK Extension to the EU-US Data Privacy Framework" in us
    assert "international data transfer agreement" in us
    (india,) = [
        line
        for line in problems_of(
            broken(
                'location = "US"\ntransfer_safeguard = "standard contractual clauses"\n\n'
                "[processors.mail_host]",
                'location = "IN"\n\n[processors.mail_host]',
            )
        )
        if "crm_host" in line
    ]
    assert india.startswith("policy.toml: processors.crm_host.transfer_safeguard: India has no UK")
    assert "UK Addendum to the EU standard contractual clauses" in india
    assert "Data Privacy Framework" not in india
