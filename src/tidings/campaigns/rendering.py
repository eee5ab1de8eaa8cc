"""Campaign messages: check a template, compile it once, personalise it per contact.

The delivery engine's contract::

    compiled = CompiledMessage.for_campaign(campaign)     # raises TemplateProblem
    rendered = compiled.render(contact, MessageLinks(unsubscribe_url=..., preferences_url=...,
                                                     view_url=...))
    rendered.subject, rendered.text, rendered.html

What compiling does, once per campaign: Markdown becomes HTML (markdown-it, CommonMark and
tables), the HTML is sanitised (nh3), put inside its layout, its CSS is inlined (css-inline), the
plain-text part is derived from it (or the operator's own text is used), and the three parts are
compiled as Jinja templates.  All of this happens with the Jinja tags still in: they are swapped
for inert placeholders first (HTML comments where they stand between elements, plain tokens in
attribute values) because both libraries re-serialise the HTML and would otherwise mangle them
(css-inline moves ``{% for %}`` out of a ``<table>`` and escapes ``<`` in ``{% if a < b %}``).
Per contact only the three Jinja templates run: about 50 µs for a 10 KB newsletter on this
machine (bench/render.py), against a budget of a third of a millisecond.

Personalisation runs in a hardened Jinja sandbox (``CampaignSandbox``):
- the templates see plain values only (``contact_values``, the links, the controller's name and
  address, the subject), never a model instance;
- a missing value renders as nothing (``{{ contact.attributes.plan | default("friend") }}`` for a
  fallback), also inside arithmetic and comparisons, so a gap in one contact's data never stops a
  campaign; a value of an unexpected type that still breaks the template gets a second render
  with the contact's attributes left out;
- names starting with ``_`` (``__class__``, ``__globals__``...), ``str.format`` and ``%``
  formatting, ``{% include %}``/``{% import %}``/``{% extends %}`` and switching autoescaping
  off are refused; only an allow-list of filters, globals and string/dict methods can be called;
- every render is metered: loop iterations, calls, the size of every string the template makes and
  of everything it outputs, and the time taken (``Limits``).  A template over a limit is refused at
  save time (``check_template`` renders it for a sample contact under ``CHECK_LIMITS``); if one
  still exceeds ``SEND_LIMITS`` while sending, ``render`` raises ``TemplateProblem`` instead of
  hanging, so the engine can fail the campaign with a reason.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache, wraps
from html.parser import HTMLParser
from types import BuiltinMethodType, MethodType, SimpleNamespace
from typing import Any

import css_inline
import nh3
from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2 import filters as jinja_filters
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import Template as JinjaTemplate
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
)
from jinja2.utils import Cycler, Joiner, Namespace, pass_environment, pass_eval_context
from markdown_it import MarkdownIt

logger = logging.getLogger(__name__)

__all__ = [
    "CHECK_LIMITS",
    "DEFAULT_LAYOUT_NAME",
    "LAYOUT_VARIABLES",
    "SAMPLE_CONTACT",
    "SEND_LIMITS",
    "VARIABLES",
    "CampaignSandbox",
    "CompiledMessage",
    "Limits",
    "MessageLinks",
    "RenderLimitExceeded",
    "Rendered",
    "TemplateProblem",
    "check_layout",
    "check_template",
    "contact_values",
    "default_layout_html",
    "ensure_default_layout",
    "html_to_text",
    "inline_css",
    "markdown_to_html",
    "sanitise_html",
]


# --- the contract ------------------------------------------------------------------------------
class TemplateProblem(ValueError):
    """Something wrong with a template, for the operator: where (``part``, 1-based ``line`` and
    ``column`` in that part's source, when known) and what (``message``, one sentence, no personal
    data).  ``part`` is "subject", "preheader", "body", "text" or "layout"."""

    def __init__(
        self, message: str, *, part: str, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.part = part
        self.line = line
        self.column = column

    @property
    def location(self) -> str:
        """ "line 3, column 7" (or less, when less is known)."""
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column else "")

    def __str__(self) -> str:
        where = ", ".join(filter(None, [self.part, self.location]))
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"TemplateProblem({self.message!r}, part={self.part!r}, line={self.line!r}, "
            f"column={self.column!r})"
        )


@dataclass(frozen=True)
class MessageLinks:
    """The personal links of one message, made by the engine (audience.tokens)."""

    unsubscribe_url: str
    preferences_url: str
    view_url: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Limits:
    """What one render of one message may use.  Exceeding any of them is a TemplateProblem."""

    seconds: float = 0.5
    output_chars: int = 1_000_000  # per part of the finished message
    work_chars: int = 4_000_000  # all text the template makes or outputs while rendering
    loop_iterations: int = 10_000
    calls: int = 10_000


# At send time a slow machine or a garbage-collector pause must not fail a campaign, so the time
# limit is generous; at save time the sample render must finish ten times faster.
SEND_LIMITS = Limits()
CHECK_LIMITS = Limits(seconds=0.05)
MAX_STRING = 1_000_000  # any one string a template makes
MAX_ITEMS = 10_000  # any one range or list a template makes
MAX_SOURCE = 200_000  # characters in one part's source
# Jinja compiles about 0.15 ms per tag, and a check compiles each part a few times: this keeps
# the check of the largest allowed template near a second.
MAX_TAGS = 1_500

# --- the values a template sees ----------------------------------------------------------------
VARIABLES = {
    "contact.name": "The person's full name, or nothing",
    "contact.first_name": "The first word of their name, or nothing",
    "contact.email": "Their email address",
    "contact.company": "Their company, or nothing",
    "contact.job_title": "Their job title, or nothing",
    "contact.attributes.KEY": (
        "Another field the policy allows; nothing when missing: {{ contact.attributes.plan "
        '| default("friend") }}'
    ),
    "unsubscribe_url": "Unsubscribes them at once (every layout must link to it)",
    "preferences_url": "Their preference centre (every layout must link to it)",
    "view_url": "This email on the web ('view in your browser')",
    "controller.name": "Your organisation's name (from the policy)",
    "controller.address": "Your postal address (from the policy; every layout must show it)",
    "campaign.subject": "The message's subject, as this person gets it",
    "data.KEY": (
        "A value given with a transactional message (an order number, a link): "
        "{{ data.order_number }}; nothing in campaigns"
    ),
}
LAYOUT_VARIABLES = {"content": "Where the campaign's body goes: {{ content }}, once"}

CONTACT_FIELDS = ("name", "first_name", "email", "company", "job_title", "attributes")
CONTROLLER_FIELDS = ("name", "address", "email", "website")
CAMPAIGN_FIELDS = ("subject",)
_MESSAGE_NAMES = frozenset(
    {"contact", "unsubscribe_url", "preferences_url", "view_url", "controller", "campaign", "data"}
)
_FIELDS = {"contact": CONTACT_FIELDS, "controller": CONTROLLER_FIELDS, "campaign": CAMPAIGN_FIELDS}

SAMPLE_CONTACT = SimpleNamespace(
    pk=None,
    name="Ada Lovelace",
    email="ada@example.com",
    company="Analytical Engines Ltd",
    job_title="Mathematician",
    attributes={},
)


def contact_values(contact: Any) -> dict[str, Any]:
    """The plain values a template sees as ``contact``: a Contact (or anything with its
    attributes, or a mapping) reduced to strings and its JSON ``attributes``."""
    if isinstance(contact, Mapping):
        get = contact.get
        name, email = get("name") or "", get("email") or ""
        company, job_title, attributes = get("company"), get("job_title"), get("attributes")
    else:
        name, email = contact.name or "", contact.email or ""
        company, job_title = contact.company, contact.job_title
        attributes = contact.attributes
    return {
        "name": name,
        "first_name": name.split(None, 1)[0] if name else "",
        "email": email,
        "company": company or "",
        "job_title": job_title or "",
        # Shared, not copied: the sandbox cannot change a dict (ImmutableSandboxedEnvironment).
        "attributes": attributes if type(attributes) is dict else {},
    }


def _controller_values() -> dict[str, str]:
    from tidings.policy import get_policy

    controller = get_policy().controller
    return {
        "name": controller.name,
        "address": controller.address,
        "email": str(controller.email),
        "website": str(controller.website or ""),
    }


def _sample_links() -> MessageLinks:
    from tidings.audience.tokens import absolute_url

    return MessageLinks(
        unsubscribe_url=absolute_url("/sample/unsubscribe/"),
        preferences_url=absolute_url("/sample/preferences/"),
        view_url=absolute_url("/sample/view/"),
    )


# --- metering: the per-render budget ------------------------------------------------------------
class RenderLimitExceeded(TemplateError):
    """A template went over one of its Limits (or made something too large)."""


class _Budget:
    __slots__ = ("calls", "deadline", "iterations", "limits", "work")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.perf_counter() + limits.seconds
        self.work = 0
        self.iterations = 0
        self.calls = 0

    def charge(self, size: int) -> None:
        self.work += size
        if self.work > self.limits.work_chars:
            raise RenderLimitExceeded(
                f"the template makes more than {self.limits.work_chars:,} characters of text "
                "for one message"
            )

    def tick(self) -> None:
        if time.perf_counter() > self.deadline:
            raise RenderLimitExceeded(
                f"the template took longer than {self.limits.seconds * 1000:.0f} ms to render "
                "one message"
            )

    def count_call(self) -> None:
        self.calls += 1
        if self.calls > self.limits.calls:
            raise RenderLimitExceeded(
                f"the template calls macros or functions more than {self.limits.calls:,} times "
                "for one message"
            )
        if not self.calls & 7:
            self.tick()

    def loop(self, iterable: Iterable[Any], size: int) -> Iterator[Any]:
        limit = self.limits.loop_iterations
        for item in iterable:
            self.iterations += 1
            if self.iterations > limit:
                raise RenderLimitExceeded(
                    f"the template's loops run more than {limit:,} times for one message"
                )
            if size:
                self.charge(size)
            if not self.iterations & 7:
                self.tick()
            yield item


_BUDGET: ContextVar[_Budget | None] = ContextVar("tidings_render_budget", default=None)


def _current_budget() -> _Budget:
    # A template rendered outside CompiledMessage still gets a (fresh, per loop) budget.
    return _BUDGET.get() or _Budget(SEND_LIMITS)


def _charge(size: int) -> None:
    if size > MAX_STRING:
        raise RenderLimitExceeded(
            f"the template makes a piece of text longer than {MAX_STRING:,} characters"
        )
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(size)


def _text_size(value: Any) -> int:
    """About len(str(value)), without building it: stops once it is known to be too large."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int | float | ChainableUndefined) or value is None:
        return 24
    total, steps, stack = 0, 0, [value]
    while stack:
        item = stack.pop()
        steps += 1
        if isinstance(item, str):
            total += len(item) + 4
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, Namespace):
            stack.append(dict(object.__getattribute__(item, "_Namespace__attrs")))
        else:
            total += 32
        if total > MAX_STRING or steps > MAX_ITEMS * 10:
            raise RenderLimitExceeded(
                f"the template prints a value longer than {MAX_STRING:,} characters"
            )
    return total


def _finalize(value: Any) -> Any:
    """Every ``{{ … }}`` passes here: None prints as nothing, and the output is metered."""
    if value is None:
        return ""
    if isinstance(value, str):
        _charge(len(value))
    elif not isinstance(value, int | float):
        _charge(_text_size(value))
    return value


def _safe_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_ITEMS:
        raise RenderLimitExceeded(f"range() is limited to {MAX_ITEMS:,} numbers")
    return numbers


# --- the filters: an allow-list, each bounded ---------------------------------------------------
def _sized(func: Callable[..., Any]) -> Callable[..., Any]:
    """Meter the text a filter returns (the Jinja pass-argument marker is copied by wraps)."""

    @wraps(func)
    def metered(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if isinstance(result, str):
            _charge(len(result))
        return result

    return metered


def _check_size(size: int) -> None:
    if size > MAX_STRING:
        raise RenderLimitExceeded(
            f"the template makes a piece of text longer than {MAX_STRING:,} characters"
        )


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    _check_size(_text_size(value))
    return str(value)


@pass_eval_context
def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old_text, new_text = _as_text(s), _as_text(old), _as_text(new)
    times = text.count(old_text) if old_text else len(text) + 1
    if count is not None:
        times = min(times, max(int(count), 0))
    _check_size(len(text) + times * max(len(new_text) - len(old_text), 0))
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


@pass_eval_context
def _join(eval_ctx: Any, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    if attribute is not None:
        getter = make_attrgetter(eval_ctx.environment, attribute)
        items = [getter(item) for item in items]
    _check_size(sum(_text_size(item) for item in items) + len(_as_text(d)) * len(items))
    return jinja_filters.do_join(eval_ctx, items, d)


def _center(value: Any, width: int = 80) -> str:
    _check_size(int(width))
    return jinja_filters.do_center(value, width)


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = _as_text(s)
    step = len(width) if isinstance(width, str) else int(width)
    _check_size(len(text) + (text.count("\n") + 1) * step)
    return jinja_filters.do_indent(s, width, first, blank)


def _wordwrap_guard(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def guarded(environment: Any, s: Any, width: int = 79, *args: Any, **kwargs: Any) -> str:
        _check_size(2 * len(_as_text(s)) + 2)
        if int(width) < 1:
            raise RenderLimitExceeded("wordwrap needs a width of at least 1")
        return func(environment, s, width, *args, **kwargs)

    return guarded


def _count_guard(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    @wraps(func)
    def guarded(value: Any, count: int, *args: Any, **kwargs: Any) -> Any:
        if int(count) > MAX_ITEMS:
            raise RenderLimitExceeded(f"{name}() is limited to {MAX_ITEMS:,}")
        return func(value, count, *args, **kwargs)

    return guarded


@pass_environment
def _sum(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float):
        raise SecurityError("sum() adds numbers only")
    return jinja_filters.do_sum(environment, iterable, attribute, start)


def _string(value: Any) -> str:
    return _as_text(value)


def _list(value: Any) -> list[Any]:
    if hasattr(value, "__len__") and len(value) > MAX_ITEMS:
        raise RenderLimitExceeded(f"list() is limited to {MAX_ITEMS:,} items")
    return list(value)


@pass_eval_context
def _tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Any:
    _check_size(6 * _text_size(value))
    if indent is not None and not 0 <= int(indent) <= 8:
        raise SecurityError("tojson's indent is limited to 8")
    return jinja_filters.do_tojson(eval_ctx, value, indent)


# Left out on purpose: safe (contact data would reach the HTML unescaped), format and pprint
# (format strings, reprs), random (a preview must show what is sent), lipsum.
_PLAIN_FILTERS = (
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "groupby", "int", "items", "last",
    "length", "lower", "map", "max", "min", "reject", "rejectattr", "reverse", "round", "select",
    "selectattr", "sort", "striptags", "title", "trim", "truncate", "unique", "upper",
    "urlencode", "urlize", "wordcount", "xmlattr",
)  # fmt: skip


@cache
def _filters() -> dict[str, Callable[..., Any]]:
    chosen = {name: jinja_filters.FILTERS[name] for name in _PLAIN_FILTERS}
    chosen.update(
        replace=_replace,
        join=_join,
        center=_center,
        indent=_indent,
        wordwrap=_wordwrap_guard(jinja_filters.FILTERS["wordwrap"]),
        batch=_count_guard(jinja_filters.FILTERS["batch"], "batch"),
        slice=_count_guard(jinja_filters.FILTERS["slice"], "slice"),
        sum=_sum,
        string=_string,
        list=_list,
        tojson=_tojson,
    )
    return {name: _sized(func) for name, func in chosen.items()}


# --- what templates may call -----------------------------------------------------------------
_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdigit",
        "islower", "isspace", "istitle", "isupper", "lower", "lstrip", "removeprefix",
        "removesuffix", "rfind", "rsplit", "rstrip", "split", "splitlines", "startswith",
        "strip", "swapcase", "title", "upper",
    }
)  # fmt: skip
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
_HELPER_METHODS = frozenset({"cycle", "changed", "next", "reset", "current"})
_GLOBAL_CALLABLES = (_safe_range, dict, Namespace, Cycler, Joiner)


def _callable_allowed(obj: Any) -> bool:
    if isinstance(obj, Macro | LoopContext | Joiner | ChainableUndefined):
        return True
    if any(obj is allowed for allowed in _GLOBAL_CALLABLES):
        return True
    if type(obj) in (BuiltinMethodType, MethodType):
        owner, name = obj.__self__, obj.__name__
        if isinstance(owner, str):
            return name in _STR_METHODS
        if isinstance(owner, dict):
            return name in _DICT_METHODS
        if isinstance(owner, list | tuple):
            return name in _SEQUENCE_METHODS
        if isinstance(owner, LoopContext | Cycler):
            return name in _HELPER_METHODS
    return False


_UNSAFE_NAMES = frozenset(
    {"mro", "format", "format_map"}
    | UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES
    | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)


# --- the sandbox -------------------------------------------------------------------------------
def _check_items(count: int) -> None:
    if count > MAX_ITEMS:
        raise RenderLimitExceeded(f"a list may hold at most {MAX_ITEMS:,} items")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse %-formatting, and arithmetic whose result would be huge, before it is made."""
    sequence = str | list | tuple
    if operator == "%" and isinstance(left, str):
        raise SecurityError("formatting text with % is not available: join text with ~")
    if operator == "*" and isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > 4096:
            raise RenderLimitExceeded("the template multiplies numbers that are too large")
    elif operator == "*" and isinstance(left, int | sequence) and isinstance(right, int | sequence):
        count, items = (left, right) if isinstance(left, int) else (right, left)
        if isinstance(count, int) and not isinstance(items, int):
            if isinstance(items, str):
                _charge(max(count, 0) * len(items))
            else:
                _check_items(max(count, 0) * len(items))
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1 and left.bit_length() * right > 4096:
            raise RenderLimitExceeded("the template raises a number to too large a power")
    elif operator == "+" and isinstance(left, str) and isinstance(right, str):
        _charge(len(left) + len(right))
    elif operator == "+" and isinstance(left, list | tuple) and isinstance(right, list | tuple):
        _check_items(len(left) + len(right))


class _Blank(ChainableUndefined):
    """A missing value: prints as nothing, and stays harmless in sums and comparisons."""

    __slots__ = ()

    def _same(self, *args: Any, **kwargs: Any) -> _Blank:
        return self

    def _false(self, other: Any) -> bool:
        return False

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _same
    __mod__ = __rmod__ = __pow__ = __rpow__ = __pos__ = __neg__ = __call__ = _same
    __lt__ = __le__ = __gt__ = __ge__ = _false

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0


def _constant_size(body: list[nodes.Node]) -> int:
    """The literal text one pass of a loop body outputs at most (charged per iteration)."""
    size = 0
    for node in body:
        for data in node.find_all(nodes.TemplateData):
            size += len(data.data)
        for const in node.find_all(nodes.Const):
            if isinstance(const.value, str):
                size += len(const.value)
    return size


class _MeteredCodeGenerator(CodeGenerator):
    """Jinja's code generator, with every loop and every ``~`` going through the budget."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metered: dict[int, int] = {}  # id of a loop's iterable node -> its body's size

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._metered[id(node.iter)] = _constant_size(node.body)
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        # Jinja refuses custom node types, so the loop's iterable is wrapped on the way out.
        size = self._metered.get(id(node))
        if size is None:
            return super().visit(node, *args, **kwargs)
        self.write("environment.meter_loop(")
        super().visit(node, *args, **kwargs)
        self.write(f", {size})")
        return None

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # As CodeGenerator.visit_Concat, but the parts are measured before they are joined.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.meter_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class CampaignSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, hardened for templates written by operators (see the module
    docstring).  Same conventions as campaigns.mail's environment: unknown values print as
    nothing and None prints as nothing."""

    code_generator_class = _MeteredCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=_Blank,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            cache_size=0,
        )
        self.filters = dict(_filters())
        self.globals = {
            "range": _safe_range,
            "dict": dict,
            "namespace": Namespace,
            "cycler": Cycler,
            "joiner": Joiner,
        }

    @staticmethod
    def meter_loop(iterable: Iterable[Any], size: int) -> Iterator[Any]:
        return _current_budget().loop(iterable, size)

    @staticmethod
    def meter_concat(join: Callable[[Any], str], parts: tuple[Any, ...]) -> str:
        _charge(sum(_text_size(part) for part in parts))
        return join(parts)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return self.binop_table[operator](left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _current_budget().count_call()
        if not _callable_allowed(obj):
            name = getattr(obj, "__name__", type(obj).__name__)
            raise SecurityError(f"{name}() cannot be called in a campaign template")
        return context.call(obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise SecurityError(f"'{attribute}' is private: names starting with _ are refused")
        if type(obj) is dict:  # the values we pass in: keys come first, and cheaply
            value = obj.get(attribute, _MISSING)
            if value is not _MISSING:
                return value
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"'{attribute}' of a {type(obj).__name__} cannot be used")


_MISSING = object()


@cache
def _environment(autoescape: bool) -> CampaignSandbox:
    return CampaignSandbox(autoescape=autoescape)


# --- keeping Jinja tags intact through Markdown, nh3 and css-inline ---------------------------
# One Jinja tag: an expression, a statement or a comment.  Strings inside may hold "}}" or "%}".
_JINJA = re.compile(
    r"""\{\{(?:[^}'"]|'[^']*'|"[^"]*"|\}(?!\}))*\}\}"""
    r"""|\{%(?:[^%'"]|'[^']*'|"[^"]*"|%(?!\}))*%\}"""
    r"""|\{\#.*?\#\}""",
    re.S,
)
_CONTENT = re.compile(r"\{\{-?\s*content\s*-?\}\}")
_RAW_TAG = re.compile(r"\{%-?\s*(?:raw|endraw)\b")
_TAG_START = re.compile(r"\{[{%#]")
_BODY_START = "<!--tidings:body-->"
_BODY_END = "<!--/tidings:body-->"
_BODY_MARKERS = re.compile(r"<!--/?tidings:body-->")
_RAW_TEXT_TAGS = frozenset({"script", "style", "title", "textarea", "xmp", "noscript"})
_TEXT_EVENT = re.compile(r"<(!--|/?[A-Za-z]|[!?])")
_TAG_NAME = re.compile(r"</?([A-Za-z][^\s/>]*)")
_TAG_EVENT = re.compile(r"[\"'>]")


class _JinjaInTag(Exception):
    def __init__(self, offset: int, tag: str) -> None:
        super().__init__(tag)
        self.offset = offset
        self.tag = tag


def _html_contexts(skeleton: str, starts: list[int]) -> list[str]:
    """The HTML context at each (ascending) offset: "text" (between elements), "value" (in an
    attribute value), "tag" (elsewhere inside a tag), "comment" or "raw" (script, style, title)."""
    found: list[str] = []
    n, i, k = len(skeleton), 0, 0
    state, tag_name, closing = "text", "", False

    def record(end: int, kind: str) -> None:
        nonlocal k
        while k < len(starts) and starts[k] < end:
            if kind == "tag":
                before = skeleton[max(0, starts[k] - 200) : starts[k]].rstrip()
                found.append("value" if before.endswith("=") else "tag")
            else:
                found.append(kind)
            k += 1

    while k < len(starts):
        if state == "text":
            m = _TEXT_EVENT.search(skeleton, i)
            record(m.start() if m else n, "text")
            if m is None:
                break
            if m.group(1) == "!--":
                state, i = "comment", m.end()
                continue
            name = _TAG_NAME.match(skeleton, m.start())
            tag_name = name.group(1).lower() if name else ""
            closing = m.group(1) == "/"
            state, i = "tag", m.end()
        elif state == "tag":
            m = _TAG_EVENT.search(skeleton, i)
            record(m.start() if m else n, "tag")
            if m is None:
                break
            i = m.end()
            if m.group() == ">":
                raw = not closing and tag_name in _RAW_TEXT_TAGS
                state = "raw" if raw else "text"
            else:
                end = skeleton.find(m.group(), i)
                record(end if end >= 0 else n, "value")
                if end < 0:
                    break
                i = end + 1
        elif state == "comment":
            end = skeleton.find("-->", i)
            record(end if end >= 0 else n, "comment")
            if end < 0:
                break
            state, i = "text", end + 3
        else:  # raw text: up to the matching end tag
            m = re.compile(rf"</{re.escape(tag_name)}\b", re.I).search(skeleton, i)
            record(m.start() if m else n, "raw")
            if m is None:
                break
            state, closing, i = "tag", True, m.start() + 2
    found.extend("text" for _ in range(len(starts) - len(found)))
    return found


def _skeleton(source: str, spans: list[re.Match[str]]) -> str:
    """The source with each Jinja tag blanked out (by zeros: not a letter, quote or bracket)."""
    pieces, last = [], 0
    for m in spans:
        pieces.append(source[last : m.start()])
        pieces.append("0" * (m.end() - m.start()))
        last = m.end()
    pieces.append(source[last:])
    return "".join(pieces)


class _Placeholders:
    """Swaps Jinja tags for inert tokens ("tdgj12x") and back."""

    def __init__(self, *sources: str) -> None:
        seen = "".join(sources).lower()
        prefix = "tdgj"
        while prefix in seen:
            prefix += "q"
        self.prefix = prefix
        self.tags: list[str] = []
        self._pattern = re.compile(
            rf"<!--{prefix}(\d+)x-->|&lt;!--{prefix}(\d+)x--&gt;|{prefix}(\d+)x"
        )

    def token(self, tag: str) -> str:
        self.tags.append(tag)
        return f"{self.prefix}{len(self.tags) - 1}x"

    def plain(self, source: str) -> str:
        """Every tag as a bare token (for text, attribute values, Markdown inline)."""
        return _JINJA.sub(lambda m: self.token(m.group()), source)

    def html(self, source: str) -> str:
        """Tags between elements become comments (which parsers keep in place, even inside a
        <table>); tags in attribute values, comments and raw text become bare tokens.  A tag
        elsewhere inside an HTML tag raises _JinjaInTag."""
        spans = list(_JINJA.finditer(source))
        contexts = _html_contexts(_skeleton(source, spans), [m.start() for m in spans])
        out, last = [], 0
        for m, context in zip(spans, contexts, strict=True):
            if context == "tag":
                raise _JinjaInTag(m.start(), m.group())
            out.append(source[last : m.start()])
            token = self.token(m.group())
            out.append(f"<!--{token}-->" if context == "text" else token)
            last = m.end()
        out.append(source[last:])
        return "".join(out)

    def markdown(self, source: str) -> str:
        """Bare tokens, except that a line holding only statements ({% … %}, {# … #}) becomes
        HTML comments on a line of their own: an HTML block, so it does not join a paragraph
        or a list item."""
        lines = []
        for line in source.split("\n"):
            stripped = line.strip()
            spans = list(_JINJA.finditer(stripped))
            only_statements = (
                spans
                and not _JINJA.sub("", stripped).strip()
                and all(not m.group().startswith("{{") for m in spans)
            )
            if only_statements:
                lines.append("".join(f"<!--{self.token(m.group())}-->" for m in spans))
            else:
                lines.append(self.plain(line))
        return "\n".join(lines)

    def restore(self, text: str) -> tuple[str, set[int]]:
        used: set[int] = set()

        def back(m: re.Match[str]) -> str:
            index = int(m.group(1) or m.group(2) or m.group(3))
            used.add(index)
            return self.tags[index]

        return self._pattern.sub(back, text), used


def _escape_braces(text: str) -> str:
    """Literal text (no Jinja tags left in it) made safe to compile: "{{" prints as "{{"."""
    return re.sub(r"\{(?=[{%#])", "{{ '{' }}", text)


# --- Markdown, sanitising, CSS ------------------------------------------------------------------
# Raw HTML is allowed in Markdown: it is sanitised with everything else afterwards.
# "breaks": a line break in the source is one in the email ("Thanks,⏎The team" stays two lines).
_MARKDOWN = MarkdownIt("commonmark", {"html": True, "breaks": True}).enable("table")


def markdown_to_html(source: str) -> str:
    """Markdown (CommonMark and tables) to HTML, Jinja tags kept as they are.

    A block statement on the line before a list whose end tag is on the line after it
    ("{% for p in products %}", "- {{ p }}", "{% endfor %}") is moved inside the list, so the
    loop repeats the items, not the whole list."""
    marks = _Placeholders(source)
    rendered = _MARKDOWN.render(marks.markdown(source))

    def keyword(index: str) -> str:
        words = marks.tags[int(index)][2:-2].strip("-+ \t\n").split(None, 1)
        return words[0] if words else ""

    def into_list(m: re.Match[str]) -> str:
        opening, tag, attributes, items, closing = m.groups()
        if keyword(opening) not in ("for", "if") or keyword(closing) != "end" + keyword(opening):
            return m.group()
        lead, trail = f"<!--{marks.prefix}{opening}x-->", f"<!--{marks.prefix}{closing}x-->"
        return f"<{tag}{attributes}>\n{lead}\n{items.lstrip()}{trail}\n</{tag}>\n"

    token = rf"<!--{marks.prefix}(\d+)x-->"
    rendered = re.sub(
        rf"{token}\n<(ul|ol)((?: [^>]*)?)>((?:(?!<[uo]l\b).)*?)</\2>\n{token}\n",
        into_list,
        rendered,
        flags=re.S,
    )
    return marks.restore(rendered)[0]


_EMAIL_TAGS = (nh3.ALLOWED_TAGS - {"details", "summary"}) | {
    "tfoot", "font", "center", "big", "section", "address",
}  # fmt: skip
_ANY_TAG_ATTRIBUTES = {
    "style", "class", "id", "dir", "lang", "title", "align", "valign", "role", "width",
    "height", "bgcolor", "aria-hidden", "aria-label", "aria-labelledby", "aria-describedby",
}  # fmt: skip
_EMAIL_ATTRIBUTES = {
    "*": _ANY_TAG_ATTRIBUTES,
    "a": {"href", "name", "target", "hreflang"},
    "img": {"src", "alt", "border"},
    "table": {"border", "cellpadding", "cellspacing", "summary", "frame", "rules"},
    "td": {"colspan", "rowspan", "headers", "nowrap"},
    "th": {"colspan", "rowspan", "headers", "scope", "abbr", "nowrap"},
    "col": {"span"},
    "colgroup": {"span"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "data": {"value"},
    "hr": {"size", "noshade"},
}
_CLEANER = nh3.Cleaner(
    tags=_EMAIL_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_EMAIL_ATTRIBUTES,
    url_schemes={"http", "https", "mailto", "tel"},
    strip_comments=False,  # Outlook's conditional comments, and our placeholders
    link_rel=None,
)


def _clean(fragment: str) -> str:
    return _CLEANER.clean(fragment)


def sanitise_html(source: str) -> str:
    """An HTML fragment with everything an email must not carry removed (scripts, frames, forms,
    event handlers, javascript: links...), its Jinja tags kept.  Raises TemplateProblem (part
    "body") for a Jinja tag inside an HTML tag but outside an attribute value."""
    marks = _Placeholders(source)
    try:
        protected = marks.html(source)
    except _JinjaInTag as exc:
        raise _jinja_in_tag_problem(exc, source, "body") from None
    cleaned = _fix_tbody(_clean(protected), protected, marks.prefix)
    return marks.restore(_escape_braces(cleaned))[0]


_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


def inline_css(document: str) -> str:
    """The document with its <style> rules copied into style attributes (media queries stay in a
    <style> element).  Never fetches anything."""
    return _INLINER.inline(document)


# --- the plain-text part -------------------------------------------------------------------------
_BLOCK_GAP = {
    "p": 2, "h1": 2, "h2": 2, "h3": 2, "h4": 2, "h5": 2, "h6": 2, "table": 2, "ul": 2, "ol": 2,
    "blockquote": 2, "pre": 2, "dl": 2, "address": 2, "figure": 2,
    "div": 1, "tr": 1, "li": 1, "dt": 1, "dd": 1, "section": 1, "article": 1, "header": 1,
    "footer": 1, "center": 1, "caption": 1, "figcaption": 1, "tbody": 1, "thead": 1, "tfoot": 1,
}  # fmt: skip
_SKIPPED = frozenset({"head", "style", "script", "title", "template", "noscript"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.I)
_BODY_START_MARK = "\x01"
_BODY_END_MARK = "\x02"


class _TextConverter(HTMLParser):
    """HTML to readable plain text: paragraphs, "- " lists, links as "text (url)", images as
    their alt text; hidden elements (the preheader) and the head left out.  A tokeniser, not a
    tree builder, so placeholder comments come out exactly where they were."""

    def __init__(self, placeholder: re.Pattern[str] | None, statements: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.placeholder = placeholder
        self.statements = statements
        self.out: list[str] = []
        self.newlines = -1  # at the end of out; -1: nothing written yet
        self.open: list[tuple[str, bool]] = []  # (tag, hidden)
        self.hidden = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []
        self.lists: list[list[int]] = []  # per open list: [number or -1 for bullets]

    # output helpers
    def _put(self, piece: str) -> None:
        """Append to the output, keeping count of the newlines it ends with (spaces don't
        count; Jinja statements are appended directly, and so are transparent: "{% for %}"
        between two blocks adds no blank lines)."""
        self.out.append(piece)
        count = 0
        for char in reversed(piece):
            if char == "\n":
                count += 1
            elif char != " ":
                self.newlines = count
                return
        if self.newlines >= 0:  # whitespace before any text does not count
            self.newlines += count

    def _gap(self, lines: int) -> None:
        if 0 <= self.newlines < lines:
            self._put("\n" * (lines - self.newlines))

    def _at_line_start(self) -> bool:
        return self.newlines != 0

    # parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        hidden = bool(_HIDDEN.search(values.get("style") or "")) or tag in _SKIPPED
        if tag not in _VOID:
            self.open.append((tag, hidden))
            self.hidden += hidden
        if self.hidden or hidden:
            return
        if tag == "br":
            self._put("\n")
        elif tag == "hr":
            self._gap(1)
            self._put("-" * 40 + "\n")
        elif tag == "img":
            alt = (values.get("alt") or "").strip()
            if alt:
                self._put(alt)
        elif tag in ("ul", "ol"):
            self._gap(1 if self.lists else 2)
            self.lists.append([0 if tag == "ol" else -1])
        elif tag == "li":
            self._gap(1)
            depth = max(len(self.lists) - 1, 0)
            marker = "-"
            if self.lists and self.lists[-1][0] >= 0:
                self.lists[-1][0] += 1
                marker = f"{self.lists[-1][0]}."
            self._put("  " * depth + marker + " ")
        elif tag == "a":
            self.links.append((values.get("href") or "", len(self.out)))
        elif tag == "pre":
            self._gap(2)
            self.pre += 1
        elif tag in ("td", "th"):
            if not self._at_line_start():
                self._put("  ")
        elif tag in _BLOCK_GAP:
            self._gap(_BLOCK_GAP[tag])

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        # Close up to the matching open element (the serialiser's HTML is well formed).
        while self.open:
            name, hidden = self.open.pop()
            self.hidden -= hidden
            if not self.hidden and not hidden:
                self._close(name)
            if name == tag:
                break

    def _close(self, tag: str) -> None:
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href and not href.startswith("#") and href not in label:
                shown = href.removeprefix("mailto:")
                if not label:
                    self._put(shown)
                elif shown != label:
                    self._put(f" ({shown})")
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._gap(1 if self.lists else 2)
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
            self._gap(2)
        elif tag in _BLOCK_GAP:
            self._gap(_BLOCK_GAP[tag])

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            self._put(data)
            return
        text = re.sub(r"\s+", " ", data)
        if self._at_line_start():
            text = text.lstrip()
        if text:
            self._put(text)

    def handle_comment(self, data: str) -> None:
        if data == "tidings:body":
            self._put(_BODY_START_MARK)
        elif data == "/tidings:body":
            self._put(_BODY_END_MARK)
        elif (
            self.placeholder is not None
            and self.placeholder.fullmatch(data)
            # Statements stay even where text is hidden, so blocks remain balanced.
            and (not self.hidden or data in self.statements)
        ):
            if data in self.statements:
                self.out.append(f"<!--{data}-->")
            else:
                self._put(f"<!--{data}-->")

    def text(self) -> str:
        text = "".join(self.out)
        text = re.sub(r"[ \t]+\n", "\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text)
        return text.strip("\n ") + "\n"


def html_to_text(
    html: str,
    *,
    placeholder: re.Pattern[str] | None = None,
    statements: frozenset[str] = frozenset(),
) -> str:
    """Readable plain text for an HTML message (see _TextConverter).  ``placeholder`` matches
    the comments to keep (Jinja placeholders); ``statements`` are those kept even when hidden."""
    converter = _TextConverter(placeholder, statements)
    converter.feed(html)
    converter.close()
    return converter.text()


# --- building the message -------------------------------------------------------------------
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.I | re.S)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
_HEAD = re.compile(r"<head\b.*?</head\s*>", re.I | re.S)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)
_BODY_CLOSE = re.compile(r"</body\s*>", re.I)
_HTML_LANG = re.compile(r"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z0-9-]{1,20})", re.I)
_DOC_WRAPPERS = re.compile(r"<!doctype[^>]*>|</?html\b[^>]*>|</?head\b[^>]*>|<meta\b[^>]*>", re.I)
_ATTRIBUTE = re.compile(r"""([A-Za-z][\w:-]*)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)""")
_CSS_IMPORT = re.compile(r"@import\b[^;]*;?", re.I)
_BODY_ATTRIBUTES = frozenset({"style", "class", "bgcolor", "dir"})
_PREHEADER_STYLE = (
    "display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;"
    "overflow:hidden;mso-hide:all"
)


def _body_attributes(tag: str) -> str:
    kept = []
    for name, value in _ATTRIBUTE.findall(tag[5:]):
        if name.lower() in _BODY_ATTRIBUTES:
            text = html_lib.unescape(value.strip("\"'"))
            kept.append(f' {name.lower()}="{html_lib.escape(text)}"')
    return "".join(kept)


def _document(protected: str, preheader: str, title: str) -> str:
    """A whole email document from the (placeholder-protected) layout with its body: a fixed,
    known head (charset, viewport, title, the layout's CSS) and the sanitised body."""
    css = "\n".join(m.group(1) for m in _STYLE.finditer(protected))
    css = _CSS_IMPORT.sub("", css).strip()
    rest = _STYLE.sub("", protected)
    found = _TITLE.search(rest)
    if found and found.group(1).strip():
        title = html_lib.escape(html_lib.unescape(found.group(1).strip()), quote=False)
    lang = _HTML_LANG.search(rest)
    opening = _BODY_OPEN.search(rest)
    if opening:
        closing = _BODY_CLOSE.search(rest, opening.end())
        inner = rest[opening.end() : closing.start() if closing else None]
        attributes = _body_attributes(opening.group())
    else:
        inner = _DOC_WRAPPERS.sub("", _HEAD.sub("", _TITLE.sub("", rest)))
        attributes = ""
    head = [
        "<!DOCTYPE html>",
        f'<html lang="{lang.group(1) if lang else "en"}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="x-apple-disable-message-reformatting">',
        f"<title>{title}</title>",
    ]
    if css:
        head.append(f"<style>\n{css}\n</style>")
    return "\n".join(
        [*head, "</head>", f"<body{attributes}>", _clean(preheader + inner), "</body>", "</html>"]
    )


def _preheader_html(marks: _Placeholders, preheader: str) -> str:
    if not preheader.strip():
        return ""
    text = html_lib.escape(marks.plain(preheader), quote=False)
    text = re.sub(rf"{marks.prefix}\d+x", lambda m: f"<!--{m.group()}-->", text)
    # Filler after the text keeps mail clients from pulling body text into the preview line.
    filler = "&#847;&zwnj;&nbsp;" * 40
    return f'<div style="{_PREHEADER_STYLE}" aria-hidden="true">{text}{filler}</div>\n'


def _fix_tbody(html: str, protected: str, prefix: str) -> str:
    """A parser that meets <tr> directly inside <table> wraps the rows in a <tbody> it makes up,
    after any comment before them: a "{% for %}" placeholder in front of the rows would end up
    outside the <tbody> and its "{% endfor %}" inside.  Move such placeholders inside."""
    if "<tbody" in protected.lower():
        return html
    return re.sub(
        rf"((?:<!--{prefix}\d+x-->\s*)+)<tbody>",
        lambda m: "<tbody>" + m.group(1),
        html,
    )


@dataclass(frozen=True)
class _Sources:
    subject: str
    body: str
    fmt: str = "markdown"
    text_body: str = ""
    layout_html: str = ""
    layout_text: str = ""
    preheader: str = ""


@dataclass(frozen=True)
class _Built:
    html: str
    text: str


def _build(sources: _Sources) -> _Built:
    """The HTML and text templates (Jinja sources) for a message; raises TemplateProblem."""
    body_html = markdown_to_html(sources.body) if sources.fmt == "markdown" else sources.body
    found = _CONTENT.search(sources.layout_html)
    if found is None:
        raise TemplateProblem(_NO_CONTENT, part="layout")
    merged = (
        sources.layout_html[: found.start()]
        + _BODY_START
        + _BODY_MARKERS.sub("", body_html)
        + _BODY_END
        + sources.layout_html[found.end() :]
    )
    marks = _Placeholders(merged, sources.preheader)
    try:
        protected = marks.html(merged)
    except _JinjaInTag as exc:  # checked per part before; this is the merged whole
        raise TemplateProblem(_JINJA_IN_TAG.format(tag=exc.tag), part="body") from None
    title = "" if _TITLE.search(protected) else f"<!--{marks.token('{{ campaign.subject }}')}-->"
    document = _document(protected, _preheader_html(marks, sources.preheader), title)
    try:
        inlined = inline_css(document)
    except css_inline.InlineError as exc:
        raise TemplateProblem(f"the layout's CSS cannot be read: {exc}", part="layout") from None
    inlined = _fix_tbody(inlined, protected, marks.prefix)

    html_source, used = marks.restore(_escape_braces(_BODY_MARKERS.sub("", inlined)))
    lost = [tag for index, tag in enumerate(marks.tags) if index not in used]
    if lost:
        raise _lost_problem(lost[0], sources)

    statements = frozenset(
        f"{marks.prefix}{index}x" for index, tag in enumerate(marks.tags) if tag[1] != "{"
    )
    placeholder = re.compile(rf"{marks.prefix}\d+x")
    derived = html_to_text(inlined, placeholder=placeholder, statements=statements)
    # The text template is compiled with trim_blocks (right for hand-written text), which would
    # eat the line break the converter put after a statement: put one more there.
    trimmed = {
        f"<!--{marks.prefix}{index}x-->"
        for index, tag in enumerate(marks.tags)
        if tag[1] in "%#" and tag[-3] not in "-+"
    }
    derived = re.sub(
        rf"<!--{marks.prefix}\d+x-->\n",
        lambda m: m.group() + "\n" if m.group()[:-1] in trimmed else m.group(),
        _escape_braces(derived),
    )
    before, _, rest = derived.partition(_BODY_START_MARK)
    body_text, _, after = rest.partition(_BODY_END_MARK)
    if sources.layout_text.strip():
        frame = sources.layout_text
    else:
        before = before.rstrip() + "\n\n" if before.strip() else ""
        after = "\n\n" + after.lstrip() if after.strip() else "\n"
        frame = marks.restore(before + "{{ content }}" + after)[0]
    if sources.text_body.strip():
        body_text = sources.text_body.strip("\n")
    else:
        body_text = marks.restore(body_text.strip())[0]
    found = _CONTENT.search(frame)
    if found is None:
        raise TemplateProblem(_NO_TEXT_CONTENT, part="layout")
    text_source = frame[: found.start()] + body_text + frame[found.end() :]
    return _Built(html=html_source, text=text_source)


# --- problems: finding where -----------------------------------------------------------------
_NO_CONTENT = (
    "the layout must contain {{ content }} exactly once: it marks where the campaign's body goes"
)
_NO_TEXT_CONTENT = (
    "the plain-text layout must contain {{ content }} exactly once, where the body's text goes"
)
_JINJA_IN_TAG = (
    "{tag} stands inside an HTML tag: Jinja may only go in an attribute's quoted value, e.g. "
    '<td class="{{% if … %}}vip{{% endif %}}">'
)


def _line_col(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def _line_text(source: str, line: int) -> str:
    lines = source.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""


_CLOSERS = {"{": "}}", "%": "%}", "#": "#}"}


def _tag_spans(text: str, kinds: str = "{%#") -> list[tuple[int, int]]:
    """Where the Jinja tags in ``text`` are, roughly (quotes ignored), in linear time even when
    the text is broken: used on the error path, where _JINJA could take quadratic time on
    thousands of unterminated "{{"."""
    spans: list[tuple[int, int]] = []
    position = 0
    while True:
        start = text.find("{", position)
        if start < 0 or start + 1 >= len(text):
            return spans
        kind = text[start + 1]
        if kind not in "{%#":
            position = start + 1
            continue
        end = text.find(_CLOSERS[kind], start + 2)
        if end < 0:  # nothing closes it, and so nothing after it is closed either
            return spans
        if kind in kinds:
            spans.append((start, end + 2))
        position = end + 2


def _column(source: str, line: int | None, needles: Iterable[str]) -> int | None:
    """Where on ``line`` the first of ``needles`` is (preferring inside a Jinja tag)."""
    if line is None:
        return None
    text = _line_text(source, line)
    spans = _tag_spans(text)
    for needle in needles:
        if not needle:
            continue
        if re.fullmatch(r"\w+", needle):
            pattern = re.compile(rf"(?<![\w]){re.escape(needle)}(?!\w)")
        else:
            pattern = re.compile(re.escape(needle))
        hits = [m.start() for m in pattern.finditer(text)]
        inside = [h for h in hits if any(a <= h < b for a, b in spans)]
        if inside or hits:
            return (inside or hits)[0] + 1
    opening = re.search(r"\{[{%#]", text)
    return opening.start() + 1 if opening else 1


def _quoted(message: str) -> list[str]:
    return list(reversed(re.findall(r"'([^']+)'", message)))


_OPENERS = frozenset({"for", "if", "macro", "call", "filter", "block", "with", "autoescape"})


def _unclosed_block(source: str) -> tuple[int, str] | None:
    """The offset and keyword of the innermost block tag that is never closed."""
    stack: list[tuple[int, str]] = []
    for start, end in _tag_spans(source, "%"):
        tag = source[start:end]
        words = tag[2:-2].strip("-+ \t\n").split(None, 1)
        if not words:
            continue
        keyword = words[0]
        if keyword in _OPENERS or (keyword == "set" and "=" not in tag):
            stack.append((start, keyword))
        elif keyword.startswith("end") and stack and stack[-1][1] == keyword[3:]:
            stack.pop()
    return stack[-1] if stack else None


def _syntax_problem(exc: TemplateSyntaxError, source: str, part: str) -> TemplateProblem:
    message = exc.message or str(exc)
    line: int | None = exc.lineno
    char = re.search(r"unexpected char (.+) at (\d+)$", message)
    if char:
        line, column = _line_col(source, int(char.group(2)))
        return TemplateProblem(
            f"unexpected character {char.group(1)}", part=part, line=line, column=column
        )
    unknown = re.search(r"[Ee]ncountered unknown tag '([^']+)'", message)
    if unknown:
        message = f"unknown tag '{unknown.group(1)}'" + (
            f": {message.split('.', 1)[1].strip()}" if "looking for" in message else ""
        )
        return TemplateProblem(
            message, part=part, line=line, column=_column(source, line, [unknown.group(1)])
        )
    if "end of template" in message:
        block = _unclosed_block(source)
        if block is not None:
            line, column = _line_col(source, block[0])
            return TemplateProblem(
                f"{{% {block[1]} %}} is never closed: add {{% end{block[1]} %}}",
                part=part,
                line=line,
                column=column,
            )
    return TemplateProblem(
        message, part=part, line=line, column=_column(source, line, _quoted(message))
    )


def _template_line(exc: BaseException) -> int | None:
    """The innermost template line in a rendering error's traceback."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _runtime_message(exc: BaseException) -> str:
    """A rendering error in words, without the data it happened on."""
    if isinstance(exc, RecursionError):
        return "the template calls a macro within itself too deeply"
    if isinstance(exc, MemoryError):
        return "the template needs too much memory"
    if isinstance(exc, TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__} while rendering"


def _jinja_in_tag_problem(exc: _JinjaInTag, source: str, part: str) -> TemplateProblem:
    line, column = _line_col(source, exc.offset)
    return TemplateProblem(
        _JINJA_IN_TAG.format(tag=exc.tag[:60]), part=part, line=line, column=column
    )


def _lost_problem(tag: str, sources: _Sources) -> TemplateProblem:
    message = (
        f"{tag[:80]} was removed with the HTML around it: it stands in an element or attribute "
        "that emails cannot carry (or in a <style> or the <head>)"
    )
    for part, source in (("body", sources.body), ("layout", sources.layout_html)):
        offset = source.find(tag)
        if offset >= 0:
            line, column = _line_col(source, offset)
            return TemplateProblem(message, part=part, line=line, column=column)
    return TemplateProblem(message, part="body")


# --- problems: checking ------------------------------------------------------------------------
def _static_problems(
    source: str,
    part: str,
    env: CampaignSandbox,
    known: frozenset[str],
    parsed: list[nodes.Template] | None = None,
) -> list[TemplateProblem]:
    """What can be seen without rendering: syntax, unknown names, refused constructs.  The
    parsed template is appended to ``parsed`` (when given), to be compiled without parsing it
    again."""
    if len(source) > MAX_SOURCE:
        return [TemplateProblem(f"longer than {MAX_SOURCE:,} characters", part=part)]
    tags = len(_TAG_START.findall(source))
    if tags > MAX_TAGS:
        message = f"{tags:,} Jinja tags: at most {MAX_TAGS:,} per part (use a loop instead)"
        return [TemplateProblem(message, part=part)]
    raw = _RAW_TAG.search(source)
    if raw:
        line, column = _line_col(source, raw.start())
        return [
            TemplateProblem(
                "{% raw %} is not available: print literal braces with {{ '{{' }}",
                part=part,
                line=line,
                column=column,
            )
        ]
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        return [_syntax_problem(exc, source, part)]
    except RecursionError:  # Jinja's parser recurses per nesting level: "{{{{{{{{…"
        return [TemplateProblem("the template nests brackets or tags too deeply", part=part)]
    if parsed is not None:
        parsed.append(ast)

    problems: list[TemplateProblem] = []

    def problem(message: str, node: nodes.Node, needles: Iterable[str]) -> None:
        line = getattr(node, "lineno", None)
        column = _column(source, line, needles)
        problems.append(TemplateProblem(message, part=part, line=line, column=column))

    refused = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
    for node in ast.find_all(refused):
        word = {"Extends": "extends", "Include": "include"}.get(type(node).__name__, "import")
        problem(f"{{% {word} %}} is not available in campaign templates", node, [word])
    for node in ast.find_all(nodes.EvalContextModifier):
        if any(option.key == "autoescape" for option in node.options):
            problem("autoescaping cannot be switched off", node, ["autoescape"])
    for node in ast.find_all(nodes.Getattr):
        if node.attr.startswith("_") or node.attr in _UNSAFE_NAMES:
            hint = ": join text with ~" if node.attr.startswith("format") else ""
            problem(f"'{node.attr}' cannot be used in a campaign template{hint}", node, [node.attr])
    for node in ast.find_all(nodes.Getitem):
        if isinstance(node.arg, nodes.Const) and str(node.arg.value).startswith("_"):
            problem(f"'{node.arg.value}' cannot be used in a campaign template", node, ["_"])
    for node in ast.find_all(nodes.Filter):
        if node.name not in env.filters:
            problem(f"there is no filter named '{node.name}'", node, [node.name])
    if problems:
        return problems

    undeclared = meta.find_undeclared_variables(ast)
    allowed = known | set(env.globals)
    reported: set[str] = set()
    for node in ast.find_all(nodes.Name):
        if node.ctx != "load" or node.name not in undeclared or node.name in allowed:
            continue
        if node.name in reported:
            continue
        reported.add(node.name)
        close = get_close_matches(node.name, sorted(known), n=1)
        hint = f': did you mean "{close[0]}"?' if close else ""
        problem(f'unknown variable "{node.name}"{hint}', node, [node.name])
    for node in ast.find_all(nodes.Getattr):
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name in undeclared):
            continue
        fields = _FIELDS.get(target.name)
        if fields is None or node.attr in fields or target.name not in known:
            continue
        close = get_close_matches(node.attr, fields, n=1)
        hint = f': did you mean "{target.name}.{close[0]}"?' if close else ""
        if target.name == "contact" and not close:
            hint = f"; other fields are contact.attributes.{node.attr}"
        problem(f'{target.name} has no field "{node.attr}"{hint}', node, [node.attr])
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _context_problems(source: str, part: str) -> list[TemplateProblem]:
    try:
        _Placeholders(source).html(source)
    except _JinjaInTag as exc:
        return [_jinja_in_tag_problem(exc, source, part)]
    return []


def _sample_values(*, layout: bool = False) -> dict[str, Any]:
    links = _sample_links()
    values: dict[str, Any] = {
        "contact": contact_values(SAMPLE_CONTACT),
        "unsubscribe_url": links.unsubscribe_url,
        "preferences_url": links.preferences_url,
        "view_url": links.view_url,
        "campaign": {"subject": "A sample subject"},
        "controller": _controller_values(),
    }
    if layout:
        values["content"] = ""
    return values


def _render_metered(template: JinjaTemplate, values: dict[str, Any], limits: Limits) -> str:
    token = _BUDGET.set(_Budget(limits))
    try:
        return template.render(values)
    finally:
        _BUDGET.reset(token)


def _sample_problems(
    source: str, part: str, env: CampaignSandbox, ast: nodes.Template | None = None
) -> list[TemplateProblem]:
    """Render one part's own source for the sample contact: runtime errors with their line."""
    try:
        template = env.from_string(source if ast is None else ast)
        output = _render_metered(
            template, _sample_values(layout=part.startswith("layout")), CHECK_LIMITS
        )
    except Exception as exc:
        line = _template_line(exc)
        message = _runtime_message(exc)
        column = _column(source, line, _quoted(message))
        return [TemplateProblem(message, part=part, line=line, column=column)]
    if len(output) > CHECK_LIMITS.output_chars:
        return [TemplateProblem(_too_long(CHECK_LIMITS), part=part)]
    return []


def _too_long(limits: Limits) -> str:
    return f"the message would be longer than {limits.output_chars:,} characters"


def _part_env(part: str, fmt: str = "html") -> CampaignSandbox:
    return _environment(part in ("layout", "body") and fmt == "html")


def _check_sources(sources: _Sources) -> list[TemplateProblem]:
    """Every check that needs no compiled message, part by part (line numbers are the part's)."""
    problems: list[TemplateProblem] = []
    message_names = _MESSAGE_NAMES
    layout_names = _MESSAGE_NAMES | {"content"}
    parts = [
        ("layout", sources.layout_html, layout_names, "html"),
        ("layout_text", sources.layout_text, layout_names, "text"),
        ("subject", sources.subject, message_names - {"campaign"}, "text"),
        ("preheader", sources.preheader, message_names, "text"),
        ("body", sources.body, message_names, sources.fmt),
        ("text", sources.text_body, message_names, "text"),
    ]
    for part, source, known, fmt in parts:
        if not source.strip():
            continue
        env = _part_env(part, fmt)
        parsed: list[nodes.Template] = []
        found = _static_problems(source, part, env, known, parsed)
        if not found and fmt in ("html", "markdown"):
            found = _context_problems(source, part)
        if not found:
            found = _sample_problems(source, part, env, parsed[0] if parsed else None)
        problems.extend(found)
    if sources.subject.strip() and "\n" in sources.subject.strip():
        problems.append(TemplateProblem("a subject is one line", part="subject"))
    if not sources.body.strip():
        problems.append(TemplateProblem("the body is empty", part="body"))
    content_count = len(_CONTENT.findall(sources.layout_html))
    if content_count != 1:
        problems.append(TemplateProblem(_NO_CONTENT, part="layout"))
    if sources.layout_text.strip() and len(_CONTENT.findall(sources.layout_text)) != 1:
        problems.append(TemplateProblem(_NO_TEXT_CONTENT, part="layout_text"))
    return problems


class _HrefCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.update(value for name, value in attrs if name == "href" and value)


def _squash(text: str) -> str:
    return " ".join(text.split())


_MISSING_UNSUBSCRIBE = (
    'the layout has no unsubscribe link: add <a href="{{ unsubscribe_url }}">Unsubscribe</a>, '
    "so every email lets people leave with one click"
)
_MISSING_PREFERENCES = (
    'the layout has no link to the preference centre: add <a href="{{ preferences_url }}">'
    "Manage your preferences</a>"
)
_MISSING_ADDRESS = (
    "the layout does not show your postal address: add {{ controller.address }} (marketing "
    "email must say who sends it and where they are)"
)


def _layout_requirements(rendered: Rendered, own_text: bool) -> list[TemplateProblem]:
    """The links and the address every marketing email must carry, found in a sample render.
    The plain text is checked on its own only when the layout has its own text version (a
    derived one follows the HTML)."""
    links, address = _sample_links(), _squash(_controller_values()["address"])
    collector = _HrefCollector()
    collector.feed(rendered.html)
    visible, text = _squash(html_to_text(rendered.html)), _squash(rendered.text)
    problems = []
    for found_in_html, found_in_text, message, name in (
        (
            links.unsubscribe_url in collector.hrefs,
            links.unsubscribe_url in text,
            _MISSING_UNSUBSCRIBE,
            "{{ unsubscribe_url }}",
        ),
        (
            links.preferences_url in collector.hrefs,
            links.preferences_url in text,
            _MISSING_PREFERENCES,
            "{{ preferences_url }}",
        ),
        (address in visible, address in text, _MISSING_ADDRESS, "{{ controller.address }}"),
    ):
        if not found_in_html:
            problems.append(TemplateProblem(message, part="layout"))
        if not found_in_text and (own_text or found_in_html):
            problems.append(
                TemplateProblem(f"the plain-text layout must contain {name}", part="layout_text")
            )
    return problems


def _compile(
    sources: _Sources, limits: Limits = SEND_LIMITS
) -> tuple[CompiledMessage | None, list[TemplateProblem]]:
    """Check everything, compile, and render the sample contact: (message, []) or (None, why)."""
    problems = _check_sources(sources)
    if problems:
        return None, problems
    try:
        compiled = CompiledMessage(sources, limits=limits)
    except TemplateProblem as problem:
        return None, [problem]
    values = {
        "contact": contact_values(SAMPLE_CONTACT),
        "unsubscribe_url": _sample_links().unsubscribe_url,
        "preferences_url": _sample_links().preferences_url,
        "view_url": _sample_links().view_url,
    }
    try:
        rendered = compiled._render(values, CHECK_LIMITS)
    except _RenderFailed as failure:
        return None, [failure.problem(with_details=True)]
    problems = _layout_requirements(rendered, bool(sources.layout_text.strip()))
    return (None if problems else compiled), problems


def _layout_part(problem: TemplateProblem, text_part: str) -> TemplateProblem:
    if problem.part == "layout_text":
        problem.part = text_part
    return problem


def check_layout(html: str, text: str = "") -> list[TemplateProblem]:
    """What keeps a layout from being used; [] when it can be saved.

    A layout must contain ``{{ content }}`` once (and so must its plain-text version, when it has
    one), a link to ``{{ unsubscribe_url }}`` and one to ``{{ preferences_url }}``, and the
    controller's postal address (``{{ controller.address }}``), in the HTML and in the text.
    Problems in the HTML have part "layout"; in the plain-text version, part "text".
    """
    sources = _Sources(
        subject="Sample", body="<p>Sample</p>", fmt="html", layout_html=html, layout_text=text
    )
    _, problems = _compile(sources)
    return [_layout_part(p, "text") for p in problems if p.part in ("layout", "layout_text")]


def check_template(
    subject: str,
    body: str,
    fmt: str,
    text_body: str = "",
    layout: Any = None,
    *,
    preheader: str = "",
) -> list[TemplateProblem]:
    """What keeps a campaign body from being sent; [] when it can be saved and used.

    ``fmt`` is "markdown" or "html"; ``layout`` a Layout (None: the default layout).  Checks the
    syntax, that only known variables are used (unknown ones would print nothing: a typo), the
    refused constructs, a render for a sample contact within CHECK_LIMITS, and that the layout
    carries the unsubscribe and preference links and the postal address.  Problems in the
    layout have part "layout" (the plain-text layout's too).
    """
    if fmt not in ("markdown", "html", "blocks"):
        return [TemplateProblem(f'unknown format "{fmt}"', part="body")]
    try:
        sources = _sources(subject, body, fmt, text_body, layout, preheader)
    except TemplateProblem as problem:  # blocks that do not make a document
        return [problem]
    _, problems = _compile(sources)
    return [_layout_part(p, "layout") for p in problems]


def _sources(
    subject: str, body: str, fmt: str, text_body: str, layout: Any, preheader: str
) -> _Sources:
    if fmt == "blocks":  # the block editor's JSON (campaigns/blocks): MJML, then as HTML
        from .blocks import BlocksInvalid, blocks_to_html

        try:
            body, fmt = blocks_to_html(body or ""), "html"
        except BlocksInvalid as exc:
            raise TemplateProblem(str(exc), part="body") from None
    if layout is None:
        layout_html, layout_text = default_layout_html(), ""
    else:
        layout_html, layout_text = layout.html, layout.text
    return _Sources(
        subject=subject or "",
        body=body or "",
        fmt=fmt,
        text_body=text_body or "",
        layout_html=layout_html or "",
        layout_text=layout_text or "",
        preheader=preheader or "",
    )


# --- the compiled message ----------------------------------------------------------------------
class _RenderFailed(Exception):
    def __init__(self, part: str, error: BaseException) -> None:
        super().__init__(part)
        self.part = part
        self.error = error

    def problem(self, *, with_details: bool = False) -> TemplateProblem:
        problem = TemplateProblem(_runtime_message(self.error), part=self.part)
        if with_details and self.part == "subject":
            problem.line = _template_line(self.error)
        return problem


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data (str, numbers, booleans, None, lists and dicts of them): an object
    handed to a template could lead the sandbox to the database; anything else becomes its text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if depth > 5:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return str(value)


def extra_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """A message's extra variables (``data`` in templates) as plain data."""
    return {str(name): _plain(value) for name, value in context.items()}


class CompiledMessage:
    """A campaign's message, compiled once; ``render`` personalises it for one contact.

    Build one with ``for_campaign``, ``for_template`` or ``from_sources`` (each checks first and
    raises the first TemplateProblem).  ``html_source`` and ``text_source`` are the compiled
    Jinja sources, for inspection.
    """

    def __init__(self, sources: _Sources, *, limits: Limits = SEND_LIMITS) -> None:
        built = _build(sources)
        globals_ = {"controller": _controller_values()}
        text_env, html_env = _environment(False), _environment(True)
        try:
            self._subject = text_env.from_string(sources.subject, globals=globals_)
            self._html = html_env.from_string(built.html, globals=globals_)
            self._text = text_env.from_string(built.text, globals=globals_)
        except TemplateSyntaxError as exc:  # the parts were checked: this is the merged whole
            raise TemplateProblem(
                f"the assembled message does not compile: {exc.message}", part="body"
            ) from None
        for template in (self._subject, self._html, self._text):
            # Jinja keeps a template's globals as a ChainMap over the environment's, and copies
            # it into every render's context: a plain dict makes that copy 4x cheaper.
            template.globals = dict(template.globals)
        self.html_source = built.html
        self.text_source = built.text
        self.limits = limits
        self._warned = False

    @classmethod
    def from_sources(
        cls,
        *,
        subject: str,
        body: str,
        fmt: str = "markdown",
        text_body: str = "",
        layout_html: str | None = None,
        layout_text: str = "",
        preheader: str = "",
        limits: Limits = SEND_LIMITS,
    ) -> CompiledMessage:
        """Check and compile from plain strings (``layout_html`` None: the default layout)."""
        sources = _Sources(
            subject=subject,
            body=body,
            fmt=fmt,
            text_body=text_body,
            layout_html=default_layout_html() if layout_html is None else layout_html,
            layout_text=layout_text,
            preheader=preheader,
        )
        compiled, problems = _compile(sources, limits)
        if problems or compiled is None:
            raise problems[0]
        return compiled

    @classmethod
    def for_campaign(cls, campaign: Any) -> CompiledMessage:
        """The campaign's subject, preheader, body, format, text and layout, compiled.

        A campaign whose body is blank uses its template's body, format and text; one without a
        layout uses its template's, or the default layout.  Raises TemplateProblem.
        """
        template = campaign.template if campaign.template_id else None
        body, fmt, text_body = campaign.body, campaign.format, campaign.text_body
        if not (body or "").strip() and template is not None:
            body, fmt, text_body = template.body, template.format, template.text_body
        layout = campaign.layout if campaign.layout_id else None
        if layout is None and template is not None:
            layout = template.layout
        return cls._checked(
            _sources(campaign.subject, body, fmt, text_body, layout, campaign.preheader)
        )

    @classmethod
    def for_template(cls, template: Any, subject: str | None = None) -> CompiledMessage:
        """A saved Template with its layout, compiled (for previews and test sends)."""
        subject = template.subject if subject is None else subject
        return cls._checked(
            _sources(
                subject, template.body, template.format, template.text_body, template.layout, ""
            )
        )

    @classmethod
    def _checked(cls, sources: _Sources) -> CompiledMessage:
        if sources.fmt not in ("markdown", "html"):
            raise TemplateProblem(f'unknown format "{sources.fmt}"', part="body")
        compiled, problems = _compile(sources)
        if problems or compiled is None:
            raise _layout_part(problems[0], "layout")
        return compiled

    def render(
        self, contact: Any, links: MessageLinks, context: Mapping[str, Any] | None = None
    ) -> Rendered:
        """The message for one contact.

        ``context``: extra values for the template (transactional mail: an order number, a
        link), as ``data``: ``{{ data.order_number }}``; plain data only (``extra_values``).

        Never raises because of the contact's data: missing values print as nothing, and if a
        value of an unexpected type still breaks the template, it is rendered again without the
        contact's attributes.  Raises TemplateProblem only when the template itself fails (over
        its Limits, a refused construct): the engine should then stop the campaign.
        """
        values = {
            "contact": contact_values(contact),
            "unsubscribe_url": links.unsubscribe_url,
            "preferences_url": links.preferences_url,
            "view_url": links.view_url,
            "data": extra_values(context) if context else {},
        }
        try:
            return self._render(values, self.limits)
        except _RenderFailed as failure:
            if not values["contact"]["attributes"]:
                raise failure.problem() from None
            first = failure
        values["contact"] = {**values["contact"], "attributes": {}}
        try:
            rendered = self._render(values, self.limits)
        except _RenderFailed as failure:
            raise failure.problem() from None
        if not self._warned:  # once per campaign: the reason, never the data
            self._warned = True
            logger.warning(
                "contact %s: rendered without attributes after %s",
                getattr(contact, "pk", None),
                type(first.error).__name__,
            )
        return rendered

    def _render(self, values: dict[str, Any], limits: Limits) -> Rendered:
        token = _BUDGET.set(_Budget(limits))
        part = "subject"
        try:
            subject = " ".join(self._subject.render(values).split())
            values["campaign"] = {"subject": subject}
            part = "body"
            html = self._html.render(values)
            part = "text"
            text = self._text.render(values).lstrip("\n")  # a false {% if %} at the top
        except Exception as exc:
            raise _RenderFailed(part, exc) from exc
        finally:
            _BUDGET.reset(token)
        for part, output in (("body", html), ("text", text), ("subject", subject)):
            if len(output) > limits.output_chars:
                raise _RenderFailed(part, RenderLimitExceeded(_too_long(limits)))
        return Rendered(subject=subject, text=text, html=html)


# --- the default layout ------------------------------------------------------------------------
DEFAULT_LAYOUT_NAME = "Default"

_DEFAULT_LAYOUT = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ campaign.subject }}</title>
<style>
body { margin: 0; padding: 0; background-color: #f4f5f7; color: #1b1f24;
  font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.wrapper { width: 100%; background-color: #f4f5f7; }
.container { width: 600px; max-width: 600px; }
.topbar { padding: 16px 24px 8px; font-size: 12px; line-height: 18px; color: #4f5863;
  text-align: right; }
.topbar a { color: #4f5863; }
.content { background-color: #ffffff; padding: 32px; font-size: 16px; line-height: 26px;
  color: #1b1f24; border-radius: 6px; }
.content h1 { font-size: 26px; line-height: 32px; margin: 0 0 16px; }
.content h2 { font-size: 21px; line-height: 28px; margin: 24px 0 12px; }
.content h3 { font-size: 18px; line-height: 24px; margin: 20px 0 8px; }
.content p { margin: 0 0 16px; }
.content ul, .content ol { margin: 0 0 16px; padding-left: 24px; }
.content a { color: #1f5fb8; }
.content img { max-width: 100%; height: auto; border: 0; }
.content blockquote { margin: 0 0 16px; padding-left: 16px; border-left: 4px solid #d4d8de;
  color: #4f5863; }
.content table { border-collapse: collapse; width: 100%; margin: 0 0 16px; }
.content th, .content td { border-bottom: 1px solid #d4d8de; padding: 6px 8px;
  text-align: left; }
.content code { font-family: Menlo, Consolas, monospace; font-size: 14px; }
.footer { padding: 24px; font-size: 13px; line-height: 20px; color: #4f5863;
  text-align: center; }
.footer p { margin: 0 0 8px; }
.footer a { color: #4f5863; text-decoration: underline; }
@media only screen and (max-width: 620px) {
  .container { width: 100% !important; }
  .content { padding: 24px 16px !important; border-radius: 0 !important; }
}
</style>
</head>
<body>
<table role="presentation" class="wrapper" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr>
<td align="center">
<table role="presentation" class="container" width="600" cellpadding="0" cellspacing="0" border="0">
{% if view_url %}
<tr>
<td class="topbar"><a href="{{ view_url }}">View this email in your browser</a></td>
</tr>
{% endif %}
<tr>
<td class="content">
{{ content }}
</td>
</tr>
<tr>
<td class="footer">
<p>You are receiving this email because you subscribed to news from {{ controller.name }}.</p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> &middot; \
<a href="{{ preferences_url }}">Manage your preferences</a></p>
<p>{{ controller.name }}<br>{{ controller.address }}</p>
</td>
</tr>
</table>
</td>
</tr>
</table>
</body>
</html>
"""


def default_layout_html() -> str:
    """A plain, responsive, accessible email layout: table-based (what Outlook needs), styles in
    one <style> element (inlined at compile time; the media query stays for phones), a "view in
    your browser" link when there is a view_url, and the footer every marketing email needs: why
    they get it, unsubscribe, preferences, and the controller's name and postal address."""
    return _DEFAULT_LAYOUT


def ensure_default_layout() -> Any:
    """The layout named "Default", created from default_layout_html() if there is none."""
    from .models import Layout

    layout, _ = Layout.objects.get_or_create(
        name=DEFAULT_LAYOUT_NAME, defaults={"html": default_layout_html()}
    )
    return layout
