"""Segments: a small, safe query language over contacts, compiled to Django ORM conditions.

A segment is a line of text such as::

    list:"product news" and attributes.plan = "pro" and not opened_in(90d)

It never becomes SQL text: it is parsed (by a lark LALR grammar) into a small tree, checked
against the policy and the database (which fields exist, which lists), and compiled into a ``Q``
whose every value is bound as a query parameter by the ORM.

The language
============

Conditions, combined with ``and``, ``or``, ``not`` and parentheses.  ``not`` binds tightest, then
``and``, then ``or``: ``a or b and not c`` is ``a or (b and (not c))``.  Keywords are
case-insensitive (``AND``, ``Not``); field and function names are lower-case.

Fields of a contact::

    email  name  phone  company  job_title  work_address      text
    created  updated  last_contact                             dates
    attributes.KEY                                             any field the policy's categories
                                                               define that is not one of the above

Comparisons (text comparisons ignore case)::

    name = "Ada Lovelace"        name != "Ada"          equal / not equal
    company ~ "software"         contains
    name ^= "ada"                email $= ".co.uk"      starts with / ends with
    created > 2026-01-01         last_contact <= 1y ago           dates: before/after a day
    attributes.seats >= 10                                         numbers
    phone is empty               job_title is not empty
    company in ("Acme", "Initech")            company not in ("Acme")

Values: ``"text"`` in double quotes (escapes ``\\"`` ``\\\\`` ``\\n`` ``\\t``), numbers ``42``
``-1.5``, dates ``2026-01-01``, and moments in the past written as a length of time and ``ago``:
``30d ago``, ``12w ago``, ``6m ago``, ``1y ago`` (days, weeks, months, years).

Dates compare by day, in the installation's time zone: ``created > 2026-01-01`` means created on
2 January or later, ``created = 2026-01-01`` created during that day.  ``30d ago`` is an instant
(now minus 30 days), so ``last_contact < 30d ago`` is "not contacted in the last 30 days".
``is empty`` is true for blank text, a date that is not set, and an attribute that is missing,
null, ``""`` or the text ``"null"``.  Attributes compare as text with text values (ignoring case,
whatever JSON type the attribute has); with numbers, as numbers, whether stored as JSON numbers or
as numeric text (``"12"``, as a CSV import stores them); with dates, as ISO ``YYYY-MM-DD`` text
(the first ten characters of the attribute).  An attribute of another kind does not match.
Every condition is either true or false for every contact (never "unknown"), so ``not c`` is
always exactly the contacts that ``c`` does not match: ``not attributes.plan = "pro"`` includes
the contacts that have no plan.

Subscriptions (``list:`` and ``topic:`` mean a confirmed subscription)::

    list:"product news"          subscribed to that list
    topic:"training"             subscribed to any list of that topic (one of the policy's topics)
    subscribed("product news", status="pending")
    subscribed(list="product news", status="any", within=30d)
    subscribed_before(2026-01-01)            subscribed_within(30d)

``subscribed(LIST, list=, topic=, status=, before=, after=, within=)``: every argument is
optional, and all of them apply to the same subscription.  ``status`` is one of pending,
confirmed (the default), unsubscribed, bounced, complained or any.  The date a person subscribed
is when the subscription was confirmed (when it never was: when it was created).
``subscribed_before(DATE, ...)`` and ``subscribed_within(DURATION, ...)`` are
``subscribed(before=DATE, ...)`` and ``subscribed(within=DURATION, ...)``.

Email domain: ``domain:"example.com"`` (exactly that domain, not its subdomains).

Engagement: ``opened_in(90d)``, ``clicked_in(30d)``, ``received_in(30d)``.  Their data belongs
to the campaigns app, which registers a provider for each (``engagement.register``); until one
is registered, using the function is an error that says so.

Limits: at most 2,000 characters and 20 levels of nested parentheses.

Grammar (lark EBNF; whitespace between tokens is ignored)::

    start      : or_expr
    or_expr    : and_expr ("or" and_expr)*
    and_expr   : not_expr ("and" not_expr)*
    not_expr   : "not"* atom
    atom       : "(" or_expr ")" | comparison | emptiness | membership | qualifier | call
    comparison : field OP value
    emptiness  : field "is" ["not"] "empty"
    membership : field ["not"] "in" "(" value ("," value)* [","] ")"
    qualifier  : NAME ":" value                       -- list:"…"  topic:"…"  domain:"…"
    call       : NAME "(" [argument ("," argument)*] ")"
    argument   : [NAME "="] value
    field      : NAME ["." NAME]
    value      : STRING | NUMBER | DATE | DURATION ["ago"]
    OP         : "=" | "!=" | "~" | "^=" | "$=" | "<" | "<=" | ">" | ">="
    STRING     : '"' (any character but '"', '\\' or a line break | '\\' any character)* '"'
    DATE       : 4 digits "-" 1-2 digits "-" 1-2 digits
    DURATION   : digits ("d" | "w" | "m" | "y")
    NUMBER     : ["-"] digits ["." digits]
    NAME       : (letter | "_") (letter | digit | "_")*

Errors (``SegmentError``) carry the column they point at and a message meant for the operator,
e.g. ``column 23: expected a value after "="``; ``SegmentError.caret`` is the line to print
under the segment.  ``validate_segment`` returns every error it can find, for live validation.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

from django.db.models import (
    Case,
    Exists,
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
from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.exceptions import LarkError

from tidings.policy import Policy, get_policy
from tidings.policy.durations import Duration

from .models import Contact, MailingList, Subscription

if TYPE_CHECKING:
    from django.db.models import QuerySet

__all__ = [
    "ENGAGEMENT_FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "SegmentError",
    "compile_segment",
    "count_segment",
    "engagement",
    "parse_segment",
    "segment_queryset",
    "validate_segment",
]

MAX_LENGTH = 2000
MAX_DEPTH = 20
# Larger numbers lose precision in JSON (doubles) and overflow SQLite's 64-bit integers.
MAX_NUMBER = 2**53
MAX_YEARS = 100  # the longest length of time: 100y, 1200m, 5217w, 36500d

TEXT_FIELDS: Mapping[str, str] = {name: name for name in Contact.COLUMN_FIELDS}
DATE_FIELDS: Mapping[str, str] = {
    "created": "created_at",
    "updated": "updated_at",
    "last_contact": "last_contact_at",
}
QUALIFIERS = ("list", "topic", "domain")
SUBSCRIPTION_FUNCTIONS = ("subscribed", "subscribed_before", "subscribed_within")
SUBSCRIPTION_KEYWORDS = ("list", "topic", "status", "before", "after", "within")
STATUSES = (*Subscription.Status.values, "any")

# The engagement functions the language knows, whether or not their data is available yet.
ENGAGEMENT_FUNCTIONS: Mapping[str, str] = {
    "opened_in": "opened an email we sent them in the last DURATION",
    "clicked_in": "clicked a link in an email we sent them in the last DURATION",
    "received_in": "was sent an email in the last DURATION",
}
FUNCTIONS = (*SUBSCRIPTION_FUNCTIONS, *ENGAGEMENT_FUNCTIONS)

_UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}
_UNIT_LIMIT = {"d": 365 * MAX_YEARS, "w": 5217, "m": 12 * MAX_YEARS, "y": MAX_YEARS}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}

_GRAMMAR = r"""
start: or_expr
or_expr: and_expr (OR and_expr)*
and_expr: not_expr (AND not_expr)*
not_expr: NOT* atom
?atom: _LPAR or_expr _RPAR
     | comparison
     | emptiness
     | membership
     | qualifier
     | call
comparison: field op value
emptiness: field IS NOT? EMPTY
membership: field NOT? IN _LPAR value (_COMMA value)* _COMMA? _RPAR
qualifier: NAME _COLON value
call: NAME _LPAR [argument (_COMMA argument)*] _RPAR
argument: (NAME EQ)? value
field: NAME (_DOT key)?
key: NAME | AND | OR | NOT | IS | EMPTY | IN | AGO
op: EQ | NE | CONTAINS | STARTS | ENDS | LT | LE | GT | GE
value: STRING | NUMBER | DATE | DURATION AGO?

OR: "or"i
AND: "and"i
NOT: "not"i
IS: "is"i
EMPTY: "empty"i
IN: "in"i
AGO: "ago"i
EQ: "="
NE: "!="
CONTAINS: "~"
STARTS: "^="
ENDS: "$="
LT: "<"
LE: "<="
GT: ">"
GE: ">="
_LPAR: "("
_RPAR: ")"
_COMMA: ","
_COLON: ":"
_DOT: "."
STRING: /"(?:[^"\\\n]|\\.)*"/
DATE.3: /\d{4}-\d{1,2}-\d{1,2}(?![\w-])/
DURATION.2: /\d+[dwmy](?!\w)/i
NUMBER: /-?\d+(?:\.\d+)?(?![\w.])/
NAME: /[a-z_][a-z0-9_]*/i
%ignore /\s+/
"""


@functools.cache
def _parser() -> Lark:
    # Built once per process (~50 ms); parsing a typical segment then takes ~0.2 ms.
    # The basic lexer makes keywords keywords everywhere ("and or" is an error, not a field
    # named "or"); after "attributes." the grammar takes them back as names.
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True)


# --- errors -------------------------------------------------------------------------------------
class SegmentError(ValueError):
    """A segment that cannot be used: ``message`` says why, ``column`` (1-based) says where.

    ``str()`` is ``"column 23: expected a value after "=""`` (``"line 2, column 5: ..."`` when
    the segment has several lines); ``caret`` is a line with ``^`` under the column, to print
    below ``source_line``.
    """

    def __init__(self, message: str, position: int, text: str):
        self.message = message
        self.position = max(0, min(position, len(text)))
        self.text = text
        before = text[: self.position]
        self.line = before.count("\n") + 1
        self.line_start = before.rfind("\n") + 1
        self.column = self.position - self.line_start + 1
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"column {self.column}"
        if "\n" in self.text:
            where = f"line {self.line}, {where}"
        return f"{where}: {self.message}"

    @property
    def source_line(self) -> str:
        end = self.text.find("\n", self.line_start)
        return self.text[self.line_start : end if end >= 0 else None]

    @property
    def caret(self) -> str:
        # Tabs are kept so the caret lines up however wide the display makes them.
        lead = self.text[self.line_start : self.position]
        return "".join("\t" if ch == "\t" else " " for ch in lead) + "^"

    def display(self) -> str:
        """The message, the line it is about and the caret, for a terminal or a <pre>."""
        return f"{self}\n{self.source_line}\n{self.caret}"


# --- the tree -----------------------------------------------------------------------------------
ValueKind = Literal["text", "number", "date", "duration", "ago"]


@dataclass(frozen=True)
class Val:
    kind: ValueKind
    value: Any  # str | int | float | date | Duration
    pos: int
    source: str


@dataclass(frozen=True)
class FieldRef:
    name: str  # "name", "created", "attributes"
    key: str | None  # the attribute's key, for attributes.KEY
    pos: int
    key_pos: int

    def __str__(self) -> str:
        return f"{self.name}.{self.key}" if self.key is not None else self.name


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    op: str
    op_pos: int
    value: Val


@dataclass(frozen=True)
class Emptiness:
    field: FieldRef
    negated: bool


@dataclass(frozen=True)
class Membership:
    field: FieldRef
    values: tuple[Val, ...]
    negated: bool
    pos: int


@dataclass(frozen=True)
class Qualifier:
    name: str
    pos: int
    value: Val


@dataclass(frozen=True)
class Argument:
    name: str | None
    pos: int
    value: Val


@dataclass(frozen=True)
class Call:
    name: str
    pos: int
    args: tuple[Argument, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Comparison | Emptiness | Membership | Qualifier | Call | Not | And | Or


# --- parsing ------------------------------------------------------------------------------------
_VALUE_TERMINALS = frozenset({"STRING", "NUMBER", "DATE", "DURATION"})
_OPERATOR_TERMINALS = frozenset({"EQ", "NE", "CONTAINS", "STARTS", "ENDS", "LT", "LE", "GT", "GE"})
_CONDITION_TERMINALS = frozenset({"NAME", "NOT", "_LPAR"})
_TERMINAL_TEXT = {
    "AND": '"and"',
    "OR": '"or"',
    "NOT": '"not"',
    "IS": '"is"',
    "EMPTY": '"empty"',
    "IN": '"in"',
    "AGO": '"ago"',
    "_LPAR": '"("',
    "_RPAR": '")"',
    "_COMMA": '","',
    "_COLON": '":"',
    "_DOT": '"."',
    "EQ": '"="',
    "NAME": "a name",
    "STRING": 'a "quoted" text',
    "NUMBER": "a number",
    "DATE": "a date",
    "DURATION": "a length of time",
    "$END": "the end",
}
_OPERATORS_TEXT = 'an operator (=, !=, ~, ^=, $=, <, <=, >, >=, "is empty", "in (...)")'


def _quote(text: str) -> str:
    text = text if len(text) <= 24 else text[:21] + "..."
    return text if text.startswith('"') else f'"{text}"'


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _expected(names: Iterable[str]) -> str:
    expected = set(names)
    if expected and expected <= _VALUE_TERMINALS | {"AGO"}:
        return "a value"
    if expected >= _OPERATOR_TERMINALS:
        return _OPERATORS_TEXT
    if expected and expected <= _CONDITION_TERMINALS:
        return "a condition"
    words = sorted(_TERMINAL_TEXT.get(n, n) for n in expected if n in _TERMINAL_TEXT)
    return _join(words) if words else "something else"


def _previous_token(text: str, position: int) -> str | None:
    """The token before ``position``, to say "after "="" (lexed again: lark does not keep it)."""
    try:
        tokens = list(_parser().lex(text[:position]))
    except LarkError:
        return None
    return str(tokens[-1]) if tokens else None


def _acceptable(exc: UnexpectedInput) -> set[str]:
    """The tokens the parser could have taken where it stopped (lark tries each in turn)."""
    parser = getattr(exc, "interactive_parser", None)
    return set(parser.accepts()) if parser is not None else set()


def _syntax_error(text: str, exc: UnexpectedInput) -> SegmentError:
    if isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream or 0
        char = text[position]
        if char == '"':
            return SegmentError('this text has no closing "', position, text)
        if char == "'":
            return SegmentError('put text in double quotes: "like this"', position, text)
        if text.startswith(("&&", "||"), position):
            word = "and" if char == "&" else "or"
            return SegmentError(f'write "{word}" instead of "{char * 2}"', position, text)
        if char == "=" and text.startswith("==", position - 1):
            return SegmentError('write "=" instead of "=="', position - 1, text)
        expected = _expected(_acceptable(exc) or exc.allowed or ())
        if expected == "a value" and char.isdigit():
            written = re.match(r"[\w.-]+", text[position:])
            assert written is not None
            return SegmentError(
                f"{_quote(written.group())} is not a value: a date is written 2026-01-31, "
                "a length of time 30d, 12w, 6m or 1y",
                position,
                text,
            )
        after = _previous_token(text, position)
        return SegmentError(
            f'unexpected "{char}": expected {expected}'
            + (f" after {_quote(after)}" if after else ""),
            position,
            text,
        )
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    at_end = token.type == "$END"
    position = len(text.rstrip()) if at_end else token.start_pos
    if token.type == "_RPAR" and _unbalanced(text, position):
        return SegmentError('this ")" closes nothing', position, text)
    if token.type == "EQ" and "EQ" not in exc.expected and text.startswith("==", position - 1):
        return SegmentError('write "=" instead of "=="', position - 1, text)
    expected = _expected(_acceptable(exc) or exc.expected)
    if not text.strip():
        return SegmentError(
            'the segment is empty: write a condition, e.g. list:"newsletter"', position, text
        )
    after = _previous_token(text, position)
    message = f"expected {expected}" + (f" after {_quote(after)}" if after else "")
    if not at_end and expected in ("a condition", "a value"):
        message += f", not {_quote(str(token))}"
    return SegmentError(message, position, text)


def _parentheses(text: str, end: int | None = None) -> Iterator[tuple[int, int]]:
    """(position, depth after it) of each parenthesis outside quoted text, up to ``end``."""
    depth = 0
    i = 0
    stop = len(text) if end is None else end
    while i < stop:
        char = text[i]
        if char == '"':
            i += 1
            while i < len(text) and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
        elif char in "()":
            depth += 1 if char == "(" else -1
            yield i, depth
        i += 1


def _unbalanced(text: str, position: int) -> bool:
    """Whether the ")" at ``position`` has no "(" to close."""
    return min((depth for _, depth in _parentheses(text, position + 1)), default=0) < 0


def _check_limits(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise SegmentError(
            f"the segment is too long: {len(text):,} characters (at most {MAX_LENGTH:,})",
            MAX_LENGTH,
            text,
        )
    if "\x00" in text:  # PostgreSQL cannot hold it in a text parameter (found by fuzzing)
        raise SegmentError("a NUL character cannot be part of a segment", text.index("\x00"), text)
    # Nesting is measured before parsing, because the tree is walked recursively afterwards.
    for position, depth in _parentheses(text):
        if depth > MAX_DEPTH:
            raise SegmentError(
                f"too deeply nested: at most {MAX_DEPTH} levels of parentheses", position, text
            )


def parse_segment(text: str) -> Node:
    """Parse a segment into its tree; raise SegmentError for text that is not a segment.

    Only the syntax and the values are checked here (a date is a real date, a number is not
    huge); what the names mean is checked by ``compile_segment``.
    """
    _check_limits(text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    top = tree.children[0]
    assert isinstance(top, Tree)  # the grammar's start rule has one expression
    return _Builder(text).build(top)


class _Builder:
    """Turns lark's parse tree into the dataclasses above, checking each literal."""

    def __init__(self, text: str):
        self.text = text

    def error(self, message: str, position: int) -> SegmentError:
        return SegmentError(message, position, self.text)

    def build(self, tree: Tree) -> Node:
        kind = tree.data
        children: list[Any] = tree.children
        if kind == "or_expr":
            operands = tuple(self.build(child) for child in children if isinstance(child, Tree))
            return operands[0] if len(operands) == 1 else Or(operands)
        if kind == "and_expr":
            operands = tuple(self.build(child) for child in children if isinstance(child, Tree))
            return operands[0] if len(operands) == 1 else And(operands)
        if kind == "not_expr":
            *nots, atom = children
            node = self.build(atom)
            return Not(node) if len(nots) % 2 else node
        if kind == "comparison":
            field_tree, op_tree, value_tree = children
            (op,) = op_tree.children
            return Comparison(self.field(field_tree), str(op), op.start_pos, self.value(value_tree))
        if kind == "emptiness":
            return Emptiness(self.field(children[0]), negated=len(children) == 4)
        if kind == "membership":
            field_tree, *rest = children
            negated = isinstance(rest[0], Token) and rest[0].type == "NOT"
            in_token = rest[1] if negated else rest[0]
            values = tuple(self.value(v) for v in rest if isinstance(v, Tree))
            return Membership(self.field(field_tree), values, negated, in_token.start_pos)
        if kind == "qualifier":
            name, value_tree = children
            return Qualifier(str(name), name.start_pos, self.value(value_tree))
        if kind == "call":
            name, *args = children
            arguments = tuple(self.argument(a) for a in args if a is not None)
            return Call(str(name), name.start_pos, arguments)
        raise AssertionError(f"unexpected rule {kind}")  # pragma: no cover - grammar and code agree

    def field(self, tree: Tree) -> FieldRef:
        children: list[Any] = tree.children
        name = children[0]
        key = children[1].children[0] if len(children) > 1 else None
        return FieldRef(
            str(name),
            str(key) if key is not None else None,
            name.start_pos,
            key.start_pos if key is not None else name.start_pos,
        )

    def argument(self, tree: Tree) -> Argument:
        children: list[Any] = tree.children
        if len(children) == 3:
            name, _eq, value = children
            return Argument(str(name), name.start_pos, self.value(value))
        (value,) = tree.children
        val = self.value(value)
        return Argument(None, val.pos, val)

    def value(self, tree: Tree) -> Val:
        token: Any = tree.children[0]
        raw = str(token)
        pos = token.start_pos
        source = self.text[pos : tree.meta.end_pos]
        if token.type == "STRING":
            return Val("text", self.string(raw, pos), pos, source)
        if token.type == "NUMBER":
            number = float(raw) if "." in raw else int(raw)
            if not math.isfinite(number) or abs(number) >= MAX_NUMBER:
                raise self.error(f"{raw} is too large a number", pos)
            return Val("number", number, pos, source)
        if token.type == "DATE":
            return Val("date", self.date(raw, pos), pos, source)
        unit = raw[-1].lower()
        amount = int(raw[:-1])
        if amount <= 0:
            raise self.error(f"{raw}: a length of time must be longer than zero", pos)
        if amount > _UNIT_LIMIT[unit]:
            raise self.error(f"{raw}: a length of time can be at most {MAX_YEARS} years", pos)
        duration = Duration(amount, _UNITS[unit])  # type: ignore[arg-type]
        return Val("ago" if len(tree.children) == 2 else "duration", duration, pos, source)

    def string(self, raw: str, pos: int) -> str:
        out: list[str] = []
        i = 1
        while i < len(raw) - 1:
            char = raw[i]
            if char == "\\":
                escaped = raw[i + 1]
                if escaped not in _ESCAPES:
                    raise self.error(
                        f'unknown escape "\\{escaped}": write \\\\ for a backslash', pos + i
                    )
                out.append(_ESCAPES[escaped])
                i += 2
            else:
                out.append(char)
                i += 1
        return "".join(out)

    def date(self, raw: str, pos: int) -> date:
        try:
            year, month, day = (int(part) for part in raw.split("-"))
            value = date(year, month, day)
        except ValueError:
            raise self.error(f"{raw} is not a date (write it as YYYY-MM-DD)", pos) from None
        if not 1000 <= value.year <= 9998:
            raise self.error(f"{raw}: the year must be between 1000 and 9998", pos)
        return value


# --- engagement ---------------------------------------------------------------------------------
EngagementProvider = Callable[..., Q | Expression]


class EngagementRegistry:
    """Where the campaigns app plugs in the data behind ``opened_in(90d)`` and friends.

    A provider is called as ``provider(since=<aware datetime>)`` and returns a condition on
    ``Contact`` (a ``Q`` or a boolean expression) that is true for the contacts with that kind of
    engagement since then.  It must not join: use ``Exists(...)`` subqueries, so a contact with
    many events still counts once.  Register in ``AppConfig.ready()``::

        engagement.register("opened_in", lambda since: Q(Exists(opens_since(since))))
    """

    def __init__(self) -> None:
        self._providers: dict[str, EngagementProvider] = {}

    def register(self, name: str, provider: EngagementProvider) -> None:
        if name not in ENGAGEMENT_FUNCTIONS:
            raise ValueError(
                f'"{name}" is not an engagement function (known: {", ".join(ENGAGEMENT_FUNCTIONS)})'
            )
        self._providers[name] = provider

    def unregister(self, name: str) -> None:
        self._providers.pop(name, None)

    def provider(self, name: str) -> EngagementProvider | None:
        return self._providers.get(name)


engagement = EngagementRegistry()


# --- compiling ----------------------------------------------------------------------------------
_TEXT_LOOKUPS = {"=": Exact, "~": Contains, "^=": StartsWith, "$=": EndsWith}
_ORDER_LOOKUPS = {"<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual}
_ORDER_NAMES = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_NEVER = Q(pk__in=[])
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
        return self.text_condition(Lower(TEXT_FIELDS[field.name]), op, value.value)

    @staticmethod
    def text_condition(lhs: Expression, op: str, text: str) -> Q:
        # Both sides through the database's LOWER(): case-insensitive the same way on either
        # side, and `= "…"` on email can use the unique index on LOWER(email).
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
