"""Segments: the grammar, the parse tree and its errors (what ``parse_segment`` builds)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.exceptions import LarkError

from tidings.policy.durations import Duration

from ..models import Contact, Subscription

if TYPE_CHECKING:
    pass


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
