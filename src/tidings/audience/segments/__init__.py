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
is registered, using the function is an error that says so.  Journey mail counts too: the
journeys app adds its own providers (``engagement.add``), ORed with the campaigns'.

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

from .compiler import (
    compile_segment,
    count_segment,
    segment_queryset,
    validate_segment,
)
from .engagement import (
    EngagementProvider,
    EngagementRegistry,
    engagement,
)
from .syntax import (
    DATE_FIELDS,
    ENGAGEMENT_FUNCTIONS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NUMBER,
    MAX_YEARS,
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
    ValueKind,
    parse_segment,
)

__all__ = [
    "DATE_FIELDS",
    "ENGAGEMENT_FUNCTIONS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NUMBER",
    "MAX_YEARS",
    "QUALIFIERS",
    "STATUSES",
    "SUBSCRIPTION_FUNCTIONS",
    "SUBSCRIPTION_KEYWORDS",
    "TEXT_FIELDS",
    "And",
    "Argument",
    "Call",
    "Comparison",
    "Emptiness",
    "EngagementProvider",
    "EngagementRegistry",
    "FieldRef",
    "Membership",
    "Node",
    "Not",
    "Or",
    "Qualifier",
    "SegmentError",
    "Val",
    "ValueKind",
    "compile_segment",
    "count_segment",
    "engagement",
    "parse_segment",
    "segment_queryset",
    "validate_segment",
]
