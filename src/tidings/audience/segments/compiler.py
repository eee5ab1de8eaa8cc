"""Segments: compiling a parsed segment into a query on contacts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.db.models import (
    Case,
    Exists,
    F,
    FloatField,
    OuterRef,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import Expression
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Lower, NullIf, Substr
from django.db.models.lookups import (
    Contains,
    EndsWith,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Regex,
    StartsWith,
)
from django.utils import timezone

from tidings.policy import Policy, get_policy

from ..emails import email_key
from ..models import Contact, MailingList, Subscription

if TYPE_CHECKING:
    from django.db.models import QuerySet

from .engagement import (
    engagement,
)
from .syntax import (
    DATE_FIELDS,
    ENGAGEMENT_FUNCTIONS,
    FUNCTIONS,
    QUALIFIERS,
    STATUSES,
    SUBSCRIPTION_FUNCTIONS,
    SUBSCRIPTION_KEYWORDS,
    TEXT_FIELDS,
    And,
    Argument,
    Call,
    Comparison,
    Emptiness,
    FieldRef,
    Membership,
    Node,
    Not,
    Or,
    Qualifier,
    SegmentError,
    Val,
    parse_segment,
)

# --- compiling ----------------------------------------------------------------------------------
_TEXT_LOOKUPS = {"=": Exact, "~": Contains, "^=": StartsWith, "$=": EndsWith}
_ORDER_LOOKUPS = {"<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual}
_ORDER_NAMES = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_NEVER = Q(pk__in=[])
# The text lookups as Python tests on a key (for contacts with none stored: keyless_matching).
_KEY_TESTS: dict[str, Callable[[str, str], bool]] = {
    "=": str.__eq__,
    "~": lambda key, text: text in key,
    "^=": str.startswith,
    "$=": str.endswith,
}
_NUMBER_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_DATE_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"  # stands in for a condition that had an error; never executed
)


class _Compiler:
    def __init__(self, text: str, *, now: datetime, policy: Policy):
        self.text = text
        self.now = now
        self.policy = policy
        self.errors: list[SegmentError] = []
        self._list_ids: dict[str, int] | None = None
        self._keyless: list[tuple[int, str]] | None = None  # (pk, key) of contacts with no key
        self.negated = False  # whether the condition being compiled is under an odd number of nots
        columns = set(Contact.COLUMN_FIELDS)
        self.attribute_keys = tuple(f for f in policy.all_fields if f not in columns)

    def fail(self, message: str, position: int) -> Q:
        self.errors.append(SegmentError(message, position, self.text))
        return _NEVER

    # -- boolean structure --
    def compile(self, node: Node) -> Q:
        if isinstance(node, And):
            return functools.reduce(lambda a, b: a & b, (self.compile(n) for n in node.operands))
        if isinstance(node, Or):
            return functools.reduce(lambda a, b: a | b, (self.compile(n) for n in node.operands))
        if isinstance(node, Not):
            self.negated = not self.negated
            try:
                return ~self.compile(node.operand)
            finally:
                self.negated = not self.negated
        if isinstance(node, Comparison):
            return self.comparison(node)
        if isinstance(node, Emptiness):
            return self.emptiness(node)
        if isinstance(node, Membership):
            return self.membership(node)
        if isinstance(node, Qualifier):
            return self.qualifier(node)
        return self.call(node)

    # -- fields --
    def known_fields(self) -> str:
        names = [*TEXT_FIELDS, *DATE_FIELDS, *(f"attributes.{k}" for k in self.attribute_keys)]
        return ", ".join(names)

    def check_field(self, field: FieldRef) -> str | None:
        """An error message for a field that does not exist, or None."""
        if field.key is None:
            if field.name in TEXT_FIELDS or field.name in DATE_FIELDS:
                return None
            if field.name in self.attribute_keys:
                return f'unknown field "{field.name}"; did you mean attributes.{field.name}?'
            if field.name in QUALIFIERS:
                return f'"{field.name}" is not a field: write {field.name}:"..."'
            return f'unknown field "{field.name}"; known: {self.known_fields()}'
        if field.name != "attributes":
            return f'unknown field "{field}"; known: {self.known_fields()}'
        if field.key in TEXT_FIELDS:
            return f'"{field.key}" is a field of its own: write {field.key}, not {field}'
        if field.key not in self.attribute_keys:
            known = ", ".join(self.attribute_keys) or "none"
            return (
                f'unknown field "{field}": the policy defines no field "{field.key}" '
                f"(attributes it defines: {known})"
            )
        return None

    def field_error(self, field: FieldRef) -> Q | None:
        message = self.check_field(field)
        if message is None:
            return None
        return self.fail(message, field.key_pos if field.name == "attributes" else field.pos)

    # -- comparisons --
    def comparison(self, node: Comparison) -> Q:
        field, op, value = node.field, node.op, node.value
        if (error := self.field_error(field)) is not None:
            return error
        if value.kind == "duration":
            return self.fail(
                f'{value.source} is a length of time: write "{value.source} ago" for the moment '
                "that long before now",
                value.pos,
            )
        if field.name in TEXT_FIELDS:
            return self.text_comparison(field, op, node.op_pos, value)
        if field.name in DATE_FIELDS:
            return self.date_comparison(field, op, node.op_pos, value)
        return self.attribute_comparison(field, op, node.op_pos, value)

    def text_comparison(self, field: FieldRef, op: str, op_pos: int, value: Val) -> Q:
        if value.kind != "text":
            return self.fail(f'{field} is text: put the value in double quotes ("...")', value.pos)
        if op in _ORDER_LOOKUPS:
            return self.fail(f"{op} compares dates and numbers; {field} is text", op_pos)
        if field.name == "email":
            # The address by its key (emails.email_key, case folded in Python): `email =
            # "ZOË@…"` is the contact `zoë@…` on SQLite too, and = and ^= use the unique index
            # on email_key.
            text = value.value.casefold()
            positive_op = "=" if op == "!=" else op
            lookup = Q(_TEXT_LOOKUPS[positive_op](F("email_key"), Value(text)))
            keyless = self.keyless_matching(_KEY_TESTS[positive_op], text)
            return self.email_condition(lookup, keyless, negated=op == "!=")
        return self.text_condition(Lower(TEXT_FIELDS[field.name]), op, value.value)

    def keyless_matching(self, test: Callable[[str, str], bool], text: str) -> list[int]:
        """The contacts with no key stored whose address's key passes ``test(key, text)``.

        The upgrade to ``email_key`` kept apart (NULL key) the newer of two contacts that are
        one mailbox (`tidings doctor` lists them until an operator merges them), and erasure
        under a legal hold blanks the address and its key.  SQL cannot fold case as
        ``emails.email_key`` does, so their keys are computed here, from the few NULL-key rows
        (an index range; read once per compile, and only for an email condition).
        """
        if self._keyless is None:
            rows = Contact.objects.filter(email_key__isnull=True).values_list("pk", "email")
            self._keyless = [(pk, email_key(address)) for pk, address in rows]
        return [pk for pk, key in self._keyless if test(key, text)]

    def email_condition(self, lookup: Q, keyless: list[int], *, negated: bool) -> Q:
        """``lookup`` on ``email_key`` (or its negation), exact for the contacts without a key.

        On a NULL key the lookup is unknown, not false, and NOT unknown is unknown again: `email
        != "x"` dropped every contact without a key.  So wherever the condition ends up negated
        (by !=, not in, or a `not`), the lookup is guarded with "the key is set", and those
        contacts are decided by ``keyless``, their keys compared in Python.
        """
        if negated != self.negated:
            lookup = Q(email_key__isnull=False) & lookup
        positive = lookup | Q(pk__in=keyless) if keyless else lookup
        return ~positive if negated else positive

    @staticmethod
    def text_condition(lhs: Expression, op: str, text: str) -> Q:
        # Both sides through the database's LOWER(): case-insensitive the same way on either
        # side (the address goes by its key instead: text_comparison).
        if op == "!=":
            return ~Q(Exact(lhs, Lower(Value(text))))
        return Q(_TEXT_LOOKUPS[op](lhs, Lower(Value(text))))

    def date_comparison(self, field: FieldRef, op: str, op_pos: int, value: Val) -> Q:
        column = DATE_FIELDS[field.name]
        if op not in ("=", "!=", *_ORDER_LOOKUPS):
            return self.fail(f"{op} works on text; {field} is a date", op_pos)
        if value.kind == "ago":
            moment = self.now - value.value.delta
            if op in _ORDER_LOOKUPS:
                return Q(**{f"{column}__{_ORDER_NAMES[op]}": moment})
            day = timezone.localtime(moment).date()
        elif value.kind == "date":
            day = value.value
        else:
            return self.fail(
                f"{field} is a date: compare it with a date (2026-01-31) or a moment (30d ago)",
                value.pos,
            )
        start, end = _day_start(day), _day_start(day + timedelta(days=1))
        conditions = {
            "=": Q(**{f"{column}__gte": start, f"{column}__lt": end}),
            "!=": ~Q(**{f"{column}__gte": start, f"{column}__lt": end}),
            "<": Q(**{f"{column}__lt": start}),
            "<=": Q(**{f"{column}__lt": end}),
            ">": Q(**{f"{column}__gte": end}),
            ">=": Q(**{f"{column}__gte": start}),
        }
        return conditions[op]

    def attribute_comparison(self, field: FieldRef, op: str, op_pos: int, value: Val) -> Q:
        key = field.key
        assert key is not None
        text = _attribute_text(key)
        lookup = Exact if op in ("=", "!=") else _ORDER_LOOKUPS.get(op)
        if value.kind == "text":
            if op in _ORDER_LOOKUPS:
                return self.fail(f"{op} compares dates and numbers, not text", op_pos)
            positive = self.text_condition(Lower(text), "=" if op == "!=" else op, value.value)
        elif value.kind == "number":
            if lookup is None:
                return self.fail(
                    f'{op} works on text: put the value in double quotes ("...")', op_pos
                )
            positive = Q(Regex(text, _NUMBER_PATTERN)) & Q(
                lookup(_as_number(text), Value(float(value.value)))
            )
        else:  # a date or a moment: attributes hold dates as ISO text ("2026-01-31…")
            if lookup is None:
                return self.fail(f"{op} works on text, not dates", op_pos)
            day = (
                value.value
                if value.kind == "date"
                else timezone.localtime(self.now - value.value.delta).date()
            )
            positive = Q(Regex(text, _DATE_PATTERN)) & Q(
                lookup(Substr(text, 1, 10), Value(day.isoformat()))
            )
        return self.attribute_condition(key, positive, negated=op == "!=")

    def attribute_condition(self, key: str, positive: Q, *, negated: bool) -> Q:
        """``positive`` (or its negation), made exact for contacts without the attribute.

        On a missing attribute ``positive`` is unknown (NULL), not false; where the condition
        ends up negated, NOT NULL would be NULL again and drop contacts that `not` should keep,
        so there it is guarded with "the attribute is set".  Where it is not negated, NULL
        filters like false, and the guard is left out (it costs a quarter more on a scan: 195 ms
        against 155 ms for `attributes.plan = "pro"` over 1M contacts on PostgreSQL).
        """
        if negated != self.negated:
            positive = Q(IsNull(_attribute_text(key), False)) & positive
        return ~positive if negated else positive

    def emptiness(self, node: Emptiness) -> Q:
        field = node.field
        if (error := self.field_error(field)) is not None:
            return error
        if field.name in TEXT_FIELDS:
            empty = Q(**{TEXT_FIELDS[field.name]: ""})
        elif field.name in DATE_FIELDS:
            empty = Q(**{f"{DATE_FIELDS[field.name]}__isnull": True})
        else:
            assert field.key is not None
            text = _attribute_text(field.key)
            empty = Q(IsNull(text, True)) | Q(Exact(text, Value("")))
        return ~empty if node.negated else empty

    def membership(self, node: Membership) -> Q:
        field = node.field
        if (error := self.field_error(field)) is not None:
            return error
        if field.name in DATE_FIELDS:
            return self.fail(f"in works on text and numbers; {field} is a date", node.pos)
        texts = [v.value for v in node.values if v.kind == "text"]
        numbers = [v.value for v in node.values if v.kind == "number"]
        for v in node.values:
            if v.kind not in ("text", "number") or (field.key is None and v.kind != "text"):
                kind = "text" if field.key is None else "text or numbers"
                return self.fail(f"in (...) takes {kind} here", v.pos)
        if field.name == "email" and field.key is None:  # by its key, as text_comparison
            keys = {t.casefold() for t in texts}
            keyless = self.keyless_matching(lambda key, _: key in keys, "")
            lookup = Q(In(F("email_key"), sorted(keys)))
            return self.email_condition(lookup, keyless, negated=node.negated)
        if field.key is None:
            condition = Q(In(Lower(TEXT_FIELDS[field.name]), [Lower(Value(t)) for t in texts]))
        else:
            text = _attribute_text(field.key)
            alternatives = []
            if texts:
                alternatives.append(Q(In(Lower(text), [Lower(Value(t)) for t in texts])))
            if numbers:
                alternatives.append(
                    Q(Regex(text, _NUMBER_PATTERN))
                    & Q(In(_as_number(text), [Value(float(n)) for n in numbers]))
                )
            condition = functools.reduce(lambda a, b: a | b, alternatives)
            return self.attribute_condition(field.key, condition, negated=node.negated)
        return ~condition if node.negated else condition

    # -- subscriptions, domains, engagement --
    def qualifier(self, node: Qualifier) -> Q:
        if node.name not in QUALIFIERS:
            hint = f"; did you mean {node.name}(...)?" if node.name in FUNCTIONS else ""
            return self.fail(
                f'unknown "{node.name}:"; known: {", ".join(f"{q}:" for q in QUALIFIERS)}{hint}',
                node.pos,
            )
        value = node.value
        if value.kind != "text":
            return self.fail(f'{node.name}: takes a "quoted" name', value.pos)
        if node.name == "domain":
            domain = value.value.strip().lower().removeprefix("@")
            if not domain or "@" in domain or any(c.isspace() for c in domain):
                return self.fail(f'"{value.value}" is not a domain (e.g. "example.com")', value.pos)
            return Q(EndsWith(Lower("email"), Lower(Value("@" + domain))))
        filters = self.subscription_filter(node.name, value)
        return _NEVER if filters is None else self.subscribed(filters)

    def subscription_filter(self, name: str, value: Val) -> Q | None:
        if name == "list":
            list_id = self.list_id(value)
            return None if list_id is None else Q(mailing_list_id=list_id)
        topics = self.policy.marketing.topics
        if value.value not in topics:
            known = ", ".join(f'"{t}"' for t in topics) or "none"
            self.fail(f'unknown topic "{value.value}"; the policy\'s topics: {known}', value.pos)
            return None
        return Q(mailing_list__topic=value.value)

    def list_id(self, value: Val) -> int | None:
        if self._list_ids is None:
            # One small query per compile; lists are few (tens), so fetch them all.
            self._list_ids = dict(MailingList.objects.values_list("name", "pk"))
        list_id = self._list_ids.get(value.value)
        if list_id is None:  # ignoring case, when that picks out one list
            folded = [
                pk for n, pk in self._list_ids.items() if n.casefold() == value.value.casefold()
            ]
            list_id = folded[0] if len(folded) == 1 else None
        if list_id is None:
            names = sorted(self._list_ids, key=str.casefold)
            known = ", ".join(f'"{n}"' for n in names[:10]) or "there are no lists yet"
            if len(names) > 10:
                known += f" (and {len(names) - 10} more)"
            self.fail(f'no list is called "{value.value}"; lists: {known}', value.pos)
        return list_id

    def subscribed(self, filters: Q, status: str = Subscription.Status.CONFIRMED) -> Q:
        if status != "any":
            filters &= Q(status=status)
        subscriptions = Subscription.objects.alias(
            subscribed_at=Coalesce("confirmed_at", "created_at")
        ).filter(filters, contact_id=OuterRef("pk"))
        return Q(Exists(subscriptions))

    def call(self, node: Call) -> Q:
        if node.name in ENGAGEMENT_FUNCTIONS:
            return self.engagement(node)
        if node.name not in SUBSCRIPTION_FUNCTIONS:
            hint = f'; did you mean {node.name}:"..."?' if node.name in QUALIFIERS else ""
            return self.fail(
                f'unknown function "{node.name}"; known: {", ".join(FUNCTIONS)}{hint}', node.pos
            )
        positional = [a for a in node.args if a.name is None]
        keywords: dict[str, Argument] = {}
        for arg in node.args:
            if arg.name is None:
                if keywords:
                    return self.fail("unnamed arguments come before named ones", arg.pos)
                continue
            if arg.name not in SUBSCRIPTION_KEYWORDS:
                known = ", ".join(f"{k}=" for k in SUBSCRIPTION_KEYWORDS)
                return self.fail(
                    f'{node.name} has no argument "{arg.name}"; known: {known}', arg.pos
                )
            if arg.name in keywords:
                return self.fail(f'"{arg.name}" is given twice', arg.pos)
            keywords[arg.name] = arg
        first = {
            "subscribed": "list",
            "subscribed_before": "before",
            "subscribed_within": "within",
        }[node.name]
        if len(positional) > 1:
            return self.fail(f"{node.name} takes one unnamed argument ({first})", positional[1].pos)
        if positional:
            if first in keywords:
                return self.fail(f'"{first}" is given twice', keywords[first].pos)
            keywords[first] = Argument(first, positional[0].pos, positional[0].value)
        elif node.name != "subscribed":
            example = "2026-01-01" if first == "before" else "30d"
            return self.fail(
                f"{node.name} needs a {first} argument: {node.name}({example})", node.pos
            )

        filters = Q()
        status = str(Subscription.Status.CONFIRMED)
        errors = len(self.errors)
        for name, arg in keywords.items():
            value = arg.value
            if name in ("list", "topic"):
                if value.kind != "text":
                    self.fail(f'{name}= takes a "quoted" name', value.pos)
                    continue
                found = self.subscription_filter(name, value)
                filters &= found if found is not None else Q()
            elif name == "status":
                if value.kind != "text" or value.value.lower() not in STATUSES:
                    self.fail(f"status= is one of {', '.join(STATUSES)}", value.pos)
                    continue
                status = value.value.lower()
            elif name == "within":
                if value.kind != "duration":
                    self.fail(f"{name}= takes a length of time, e.g. 30d", value.pos)
                    continue
                filters &= Q(subscribed_at__gte=self.now - value.value.delta)
            else:  # before, after
                if value.kind == "ago":
                    moment = self.now - value.value.delta
                elif value.kind == "date":
                    day = value.value + timedelta(days=1 if name == "after" else 0)
                    moment = _day_start(day)
                else:
                    self.fail(f"{name}= takes a date (2026-01-31) or a moment (30d ago)", value.pos)
                    continue
                lookup = "lt" if name == "before" else ("gte" if value.kind == "date" else "gt")
                filters &= Q(**{f"subscribed_at__{lookup}": moment})
        if len(self.errors) > errors:
            return _NEVER
        return self.subscribed(filters, status)

    def engagement(self, node: Call) -> Q:
        usage = f"{node.name} takes one length of time, e.g. {node.name}(90d)"
        if len(node.args) != 1 or node.args[0].name is not None:
            position = node.args[1].pos if len(node.args) > 1 else node.pos
            if node.args and node.args[0].name is not None:
                position = node.args[0].pos
            return self.fail(usage, position)
        value = node.args[0].value
        if value.kind != "duration":
            return self.fail(usage, value.pos)
        provider = engagement.provider(node.name)
        if provider is None:
            return self.fail(f"{node.name}: engagement data is not available yet", node.pos)
        condition = provider(since=self.now - value.value.delta)
        return condition if isinstance(condition, Q) else Q(condition)


def _attribute_text(key: str) -> NullIf:
    """An attribute as text; NULL when it is missing, JSON null, or the text "null".

    PostgreSQL's ->> gives NULL for JSON null, Django's SQLite form gives the text "null": the
    NULLIF makes the two agree (at the price of the rare attribute whose value is "null").
    """
    return NullIf(KeyTextTransform(key, "attributes"), Value("null"), output_field=TextField())


def _as_number(text: Expression) -> Case:
    # Attributes imported from CSV hold numbers as text ("12"): both count as numbers.  The CASE
    # keeps PostgreSQL from casting text that is not a number (which would be an error).
    return Case(When(Regex(text, _NUMBER_PATTERN), then=Cast(text, FloatField())))


def _day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in the installation's (current) time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _compile(text: str, now: datetime | None) -> tuple[Q | None, list[SegmentError]]:
    try:
        tree = parse_segment(text)
    except SegmentError as error:
        return None, [error]
    compiler = _Compiler(text, now=now or timezone.now(), policy=get_policy())
    condition = compiler.compile(tree)
    errors = sorted(compiler.errors, key=lambda e: e.position)
    return (None, errors) if errors else (condition, [])


def compile_segment(text: str, *, now: datetime | None = None) -> Q:
    """The condition on ``Contact`` that the segment stands for; raise its first SegmentError.

    ``now`` (default: the current time) is what ``30d ago`` and ``opened_in(90d)`` count back
    from.  Looks up list names in the database (one query).
    """
    condition, errors = _compile(text, now)
    if errors:
        raise errors[0]
    assert condition is not None
    return condition


def validate_segment(text: str) -> list[SegmentError]:
    """Every error in the segment (empty when it can be used), in the order they appear.

    A syntax error stops the parse, so it comes alone; errors of meaning (unknown fields, lists,
    functions, wrong kinds of value) are all reported.
    """
    return _compile(text, None)[1]


def segment_queryset(text: str, *, now: datetime | None = None) -> QuerySet[Contact]:
    """The contacts the segment matches, each once."""
    queryset = Contact.objects.filter(compile_segment(text, now=now))
    # The language's own conditions never join (subscriptions are Exists() subqueries), so no
    # DISTINCT is needed; an engagement provider that joins despite its contract would multiply
    # rows, and then DISTINCT is the price of counting each contact once.
    if len(queryset.query.alias_map) > 1:
        queryset = queryset.distinct()
    return queryset


def count_segment(text: str, *, now: datetime | None = None) -> int:
    """How many contacts the segment matches."""
    return segment_queryset(text, now=now).count()
