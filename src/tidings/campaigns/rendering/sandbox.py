"""The hardened Jinja sandbox every operator's template runs in, and its per-render budget.

Only plain values reach a template; names starting with ``_``, ``str.format`` and ``%``
formatting, ``{% include %}``/``{% import %}``/``{% extends %}`` are refused; only an allow-list of
filters, globals and methods can be called; loops, calls, the text a template makes and the time
it takes are metered (``Limits``).  Campaigns use ``environment``; system emails
(``campaigns.mail``) use ``system_environment``, the same sandbox with Jinja's default
whitespace."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, wraps
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, nodes
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

from .contract import (
    MAX_ITEMS,
    MAX_STRING,
    SEND_LIMITS,
    Limits,
)


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


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's ``default``, which also stands in for a blank text: a contact without a name has
    ``first_name`` "" (defined), so ``{{ contact.first_name | default("there") }}`` printed
    nothing ("Hi ,") where the writer meant "Hi there,"; None (which prints as nothing) too.
    Numbers and lists keep Jinja's rule
    (a 0 stays 0) unless ``boolean`` is given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default_value
    return jinja_filters.do_default(value, default_value, boolean)


@cache
def _filters() -> dict[str, Callable[..., Any]]:
    chosen = {name: jinja_filters.FILTERS[name] for name in _PLAIN_FILTERS}
    chosen.update(
        default=_default,
        d=_default,
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


UNSAFE_NAMES = frozenset(
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

    # jinja's Undefined types these as always raising; a blank value answers instead.
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same  # type: ignore[assignment]  # jinja types these as raising
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _same  # type: ignore[assignment]  # jinja types these as raising
    __mod__ = __rmod__ = __pow__ = __rpow__ = __pos__ = __neg__ = __call__ = _same  # type: ignore[assignment]  # jinja types these as raising
    __lt__ = __le__ = __gt__ = __ge__ = _false  # type: ignore[assignment]  # jinja types these as raising

    def __int__(self) -> int:  # type: ignore[override]  # jinja types it as raising
        return 0

    def __float__(self) -> float:  # type: ignore[override]  # jinja types it as raising
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

    def __init__(self, *, autoescape: bool, trim_blocks: bool = True) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=_Blank,
            finalize=_finalize,
            trim_blocks=trim_blocks,
            lstrip_blocks=trim_blocks,
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
def environment(autoescape: bool) -> CampaignSandbox:
    """The campaign templates' sandbox (blocks trimmed, as hand-written text wants)."""
    return CampaignSandbox(autoescape=autoescape)


@cache
def system_environment(autoescape: bool) -> CampaignSandbox:
    """The same sandbox for system emails (campaigns.mail), whose shipped templates are written
    with Jinja's default whitespace: blocks are not trimmed."""
    return CampaignSandbox(autoescape=autoescape, trim_blocks=False)


@contextmanager
def metering(limits: Limits) -> Iterator[None]:
    """Every template rendered inside shares one budget of ``limits``."""
    token = _BUDGET.set(_Budget(limits))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def render_metered(template: JinjaTemplate, values: Mapping[str, Any], limits: Limits) -> str:
    """``template`` rendered within ``limits``; raises what the template raises (a
    RenderLimitExceeded when over a limit)."""
    with metering(limits):
        return template.render(values)
