"""The segment language against random and hostile queries (hypothesis).

Whatever an operator (or an API token) types, the only error is ``SegmentError``, with a line,
column and caret inside the text; a query that validates runs on the real database (SQLite or
PostgreSQL) without a database error; and no text from the query ever becomes SQL: every value is
a bound parameter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.hypothesis_profiles import examples
from tidings.audience.models import Contact, MailingList
from tidings.audience.segments import SegmentError, segment_queryset, validate_segment
from tidings.policy.commands import EXAMPLE_POLICY

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# Marks every text value the generator writes, to look for in the SQL afterwards.
MARK = "qzx"
HOSTILE = [
    "'; DROP TABLE audience_contact; --",
    '" OR 1=1 --',
    "\\' OR '1'='1",
    "%",
    "_",
    "\\",
    "%' OR email LIKE '%",
    "); DELETE FROM audience_contact; (",
    "\u0000",
    "\u202e\u2066",
    "ｓｅｌｅｃｔ",
    "a\nb",
    "$1",
    "?",
    "%s",
    "{}",
    "null",
    "12",
    "2026-01-01",
]

FIELDS = [
    "email",
    "name",
    "phone",
    "company",
    "job_title",
    "work_address",
    "created",
    "updated",
    "last_contact",
    "attributes.plan",
    "attributes.seats",
    "attributes.renewal",
    "attributes.religion",
    "attributes.x",
    "nosuch",
    "Email",
    "attributes",
    "attributes.plan.deep",
]
OPS = ["=", "!=", "~", "^=", "$=", "<", "<=", ">", ">=", "==", "=~", "<>"]
FUNCTIONS = [
    "subscribed",
    "subscribed_before",
    "subscribed_within",
    "opened_in",
    "clicked_in",
    "received_in",
    "nosuch",
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


strings = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=15)).map(
    lambda t: f'"{MARK}{_escape(t)}"'
)
values = st.one_of(
    strings,
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.6g}"),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2026-02-30", "0001-01-01", "9999-12-31", "2026-13-01", "10000-01-01"]),
    st.tuples(st.integers(0, 100_000), st.sampled_from("dwmy")).map(lambda t: f"{t[0]}{t[1]}"),
    st.tuples(st.integers(0, 500), st.sampled_from("dwmy")).map(lambda t: f"{t[0]}{t[1]} ago"),
)
field = st.sampled_from(FIELDS)
argument = st.one_of(
    values,
    st.tuples(st.sampled_from(["list", "topic", "status", "within", "x"]), values).map(
        lambda t: f"{t[0]}={t[1]}"
    ),
)
atoms = st.one_of(
    st.tuples(field, st.sampled_from(OPS), values).map(" ".join),
    st.tuples(field, st.sampled_from(["is empty", "is not empty", "is", "empty"])).map(" ".join),
    st.tuples(field, st.sampled_from(["in", "not in"]), st.lists(values, max_size=4)).map(
        lambda t: f"{t[0]} {t[1]} ({', '.join(t[2])})"
    ),
    st.tuples(st.sampled_from(["list", "topic", "domain", "nosuch"]), values).map(
        lambda t: f"{t[0]}:{t[1]}"
    ),
    st.tuples(st.sampled_from(FUNCTIONS), st.lists(argument, max_size=4)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})"
    ),
)
queries = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or", "AND", "Or"]), inner).map(" ".join),
        inner.map(lambda q: f"not {q}"),
        inner.map(lambda q: f"({q})"),
    ),
    max_leaves=12,
)
# Well-formed queries, so that most of them run: the right kind of value for each field.
TEXT_FIELDS = ["email", "name", "phone", "company", "job_title", "work_address"]
DATE_FIELDS = ["created", "updated", "last_contact"]
ATTRIBUTES = ["attributes.plan", "attributes.seats", "attributes.renewal"]
dates = st.one_of(
    st.dates(min_value=date(1000, 1, 1), max_value=date(9998, 12, 31)).map(lambda d: d.isoformat()),
    st.tuples(st.integers(1, 36500), st.just("d")).map(lambda t: f"{t[0]}{t[1]} ago"),
)
numbers = st.one_of(
    st.integers(-(2**53), 2**53).map(str),
    st.floats(-1e15, 1e15, allow_nan=False).map(lambda f: f"{f:.4f}"),
)
sound_atoms = st.one_of(
    st.tuples(
        st.sampled_from(TEXT_FIELDS), st.sampled_from(["=", "!=", "~", "^=", "$="]), strings
    ).map(" ".join),
    st.tuples(
        st.sampled_from(DATE_FIELDS), st.sampled_from(["=", "<", "<=", ">", ">="]), dates
    ).map(" ".join),
    st.tuples(
        st.sampled_from(ATTRIBUTES), st.sampled_from(OPS[:9]), st.one_of(strings, numbers)
    ).map(" ".join),
    st.tuples(
        st.sampled_from(TEXT_FIELDS + ATTRIBUTES), st.lists(strings, min_size=1, max_size=3)
    ).map(lambda t: f"{t[0]} in ({', '.join(t[1])})"),
    st.sampled_from(TEXT_FIELDS + DATE_FIELDS + ATTRIBUTES).map(lambda f: f"{f} is empty"),
    strings.map(lambda v: f"domain:{v}"),
    st.just('list:"product news"'),
    st.just('subscribed("product news", status="any", within=30d)'),
)
sound_queries = st.recursive(
    sound_atoms,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
        inner.map(lambda q: f"not {q}"),
        inner.map(lambda q: f"({q})"),
    ),
    max_leaves=10,
)

# Token soup: pieces of the language in any order, and raw text.
soup = st.one_of(
    st.lists(
        st.one_of(
            st.sampled_from(
                [*FIELDS, *OPS, *FUNCTIONS, "(", ")", ",", "and", "or", "not", "in", ":", '"']
            ),
            values,
        ),
        max_size=15,
    ).map(" ".join),
    st.text(max_size=80),
    st.text(alphabet='()"\\ \n\t=<>!~^$:,.-_aAzZ09', max_size=80),
)


@pytest.fixture(autouse=True)
def policy_with_customer_fields(settings, tmp_path):
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    marker = 'technical = ["ip_address", "user_agent", "pages_visited"]\n'
    text = text.replace(marker, marker + 'customer = ["plan", "seats", "renewal"]\n')
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    settings.TIDINGS_POLICY = path
    yield


def check_errors(text: str, errors: list[SegmentError]) -> None:
    lines = text.split("\n")
    for error in errors:
        assert isinstance(error, SegmentError)
        assert 0 <= error.position <= len(text)
        assert 1 <= error.line <= len(lines)
        assert 1 <= error.column <= len(lines[error.line - 1]) + 1
        assert error.source_line == lines[error.line - 1]
        assert error.caret.endswith("^") and len(error.caret) == error.column
        assert error.message and "Traceback" not in error.message


def check_sql(text: str) -> int:
    """Run the query; assert no marked value reached the SQL text. Returns the count."""
    queryset = segment_queryset(text, now=NOW)
    sql, params = queryset.query.sql_with_params()
    assert MARK not in sql, f"text from the segment became SQL: {sql}"
    if f'"{MARK}' in text:
        assert any(MARK in str(p) for p in params), "a text value should be a bound parameter"
    with connection.cursor() as cursor:  # the same statement the ORM runs
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) AS matched", params)  # noqa: S608
        (count,) = cursor.fetchone()
    assert count == queryset.count()
    return count


@pytest.fixture
def people(db):
    MailingList.objects.create(name="product news", topic="product news")
    # Attribute values of every JSON type, as imports and the API leave them.
    make = Contact.objects.create
    make(email="ada@example.com", name="Ada Lovelace", attributes={"plan": "pro", "seats": 12})
    make(email="grace@example.org", name="Grace Hopper", attributes={"plan": "12", "seats": "x"})
    make(email="edsger@example.nl", name="E", attributes={"plan": None, "seats": [1, 2]})
    make(email="barbara@example.com", name="", attributes={"renewal": {"a": 1}, "seats": 1e300})
    return Contact.objects.count()


SETTINGS = hypothesis_settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(st.one_of(queries, soup, sound_queries))
def test_any_query_validates_or_fails_with_a_segment_error_in_range(people, text):
    try:
        errors = validate_segment(text)
    except SegmentError as error:  # pragma: no cover - validate returns them, never raises
        raise AssertionError(f"validate_segment raised {error!r}") from None
    check_errors(text, errors)
    event("valid" if not errors else "refused")
    if not errors:
        assert 0 <= check_sql(text) <= people


@SETTINGS
@given(sound_queries)
def test_hostile_values_are_parameters_never_sql(people, text):
    if validate_segment(text):
        event("refused")
        return
    event("valid")
    check_sql(text)
    assert Contact.objects.count() == people  # nothing was deleted by a "DROP"/"DELETE" value


@hypothesis_settings(max_examples=examples(40), deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["(", "not ", "not (", "(("]))
def test_deep_nesting_and_long_queries_fail_cleanly(depth, opener):
    text = opener * depth + 'name = "x"' + ")" * (depth * opener.count("("))
    errors = validate_segment(text)
    check_errors(text, errors)


def test_a_nul_character_is_a_segment_error_not_a_database_error(people):
    """Found by the fuzzing above: PostgreSQL refuses NUL in a text parameter, so a segment
    that validated could not be counted there."""
    text = 'name = "Ada\x00" or company ~ "x"'
    [error] = validate_segment(text)
    assert error.message == "a NUL character cannot be part of a segment"
    assert error.column == 12
    check_errors(text, [error])
