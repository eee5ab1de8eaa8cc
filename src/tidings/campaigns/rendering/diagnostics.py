"""Finding where a template is wrong: syntax, unknown names and refused constructs, with the line
and column in the part's own source."""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import get_close_matches

from jinja2 import TemplateError, TemplateSyntaxError, meta, nodes

from .contract import (
    FIELDS,
    MAX_SOURCE,
    MAX_TAGS,
    TemplateProblem,
)
from .placeholders import (
    RAW_TAG,
    TAG_START,
    JinjaInTag,
    Placeholders,
)
from .sandbox import (
    UNSAFE_NAMES,
    CampaignSandbox,
)
from .sources import Sources

NO_CONTENT = (
    "the layout must contain {{ content }} exactly once: it marks where the campaign's body goes"
)
NO_TEXT_CONTENT = (
    "the plain-text layout must contain {{ content }} exactly once, where the body's text goes"
)
JINJA_IN_TAG = (
    "{tag} stands inside an HTML tag: Jinja may only go in an attribute's quoted value, e.g. "
    '<td class="{{% if … %}}vip{{% endif %}}">'
)


def line_col(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def _line_text(source: str, line: int) -> str:
    lines = source.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""


_CLOSERS = {"{": "}}", "%": "%}", "#": "#}"}


def _tag_spans(text: str, kinds: str = "{%#") -> list[tuple[int, int]]:
    """Where the Jinja tags in ``text`` are, roughly (quotes ignored), in linear time even when
    the text is broken: used on the error path, where JINJA could take quadratic time on
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


def column_of(source: str, line: int | None, needles: Iterable[str]) -> int | None:
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


def quoted(message: str) -> list[str]:
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


def syntax_problem(exc: TemplateSyntaxError, source: str, part: str) -> TemplateProblem:
    message = exc.message or str(exc)
    line: int | None = exc.lineno
    char = re.search(r"unexpected char (.+) at (\d+)$", message)
    if char:
        line, column = line_col(source, int(char.group(2)))
        return TemplateProblem(
            f"unexpected character {char.group(1)}", part=part, line=line, column=column
        )
    unknown = re.search(r"[Ee]ncountered unknown tag '([^']+)'", message)
    if unknown:
        message = f"unknown tag '{unknown.group(1)}'" + (
            f": {message.split('.', 1)[1].strip()}" if "looking for" in message else ""
        )
        return TemplateProblem(
            message, part=part, line=line, column=column_of(source, line, [unknown.group(1)])
        )
    if "end of template" in message:
        block = _unclosed_block(source)
        if block is not None:
            line, column = line_col(source, block[0])
            return TemplateProblem(
                f"{{% {block[1]} %}} is never closed: add {{% end{block[1]} %}}",
                part=part,
                line=line,
                column=column,
            )
    return TemplateProblem(
        message, part=part, line=line, column=column_of(source, line, quoted(message))
    )


def template_line(exc: BaseException) -> int | None:
    """The innermost template line in a rendering error's traceback."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def runtime_message(exc: BaseException) -> str:
    """A rendering error in words, without the data it happened on."""
    if isinstance(exc, RecursionError):
        return "the template calls a macro within itself too deeply"
    if isinstance(exc, MemoryError):
        return "the template needs too much memory"
    if isinstance(exc, TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__} while rendering"


def jinja_in_tag_problem(exc: JinjaInTag, source: str, part: str) -> TemplateProblem:
    line, column = line_col(source, exc.offset)
    return TemplateProblem(
        JINJA_IN_TAG.format(tag=exc.tag[:60]), part=part, line=line, column=column
    )


def lost_problem(tag: str, sources: Sources) -> TemplateProblem:
    message = (
        f"{tag[:80]} was removed with the HTML around it: it stands in an element or attribute "
        "that emails cannot carry (or in a <style> or the <head>)"
    )
    for part, source in (("body", sources.body), ("layout", sources.layout_html)):
        offset = source.find(tag)
        if offset >= 0:
            line, column = line_col(source, offset)
            return TemplateProblem(message, part=part, line=line, column=column)
    return TemplateProblem(message, part="body")


def static_problems(
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
    tags = len(TAG_START.findall(source))
    if tags > MAX_TAGS:
        message = f"{tags:,} Jinja tags: at most {MAX_TAGS:,} per part (use a loop instead)"
        return [TemplateProblem(message, part=part)]
    raw = RAW_TAG.search(source)
    if raw:
        line, column = line_col(source, raw.start())
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
        return [syntax_problem(exc, source, part)]
    except RecursionError:  # Jinja's parser recurses per nesting level: "{{{{{{{{…"
        return [TemplateProblem("the template nests brackets or tags too deeply", part=part)]
    if parsed is not None:
        parsed.append(ast)

    problems: list[TemplateProblem] = []

    def problem(message: str, node: nodes.Node, needles: Iterable[str]) -> None:
        line = getattr(node, "lineno", None)
        column = column_of(source, line, needles)
        problems.append(TemplateProblem(message, part=part, line=line, column=column))

    refused = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
    for node in ast.find_all(refused):
        word = {"Extends": "extends", "Include": "include"}.get(type(node).__name__, "import")
        problem(f"{{% {word} %}} is not available in campaign templates", node, [word])
    for modifier in ast.find_all(nodes.EvalContextModifier):
        if any(option.key == "autoescape" for option in modifier.options):
            problem("autoescaping cannot be switched off", modifier, ["autoescape"])
    for attr_node in ast.find_all(nodes.Getattr):
        if attr_node.attr.startswith("_") or attr_node.attr in UNSAFE_NAMES:
            hint = ": join text with ~" if attr_node.attr.startswith("format") else ""
            problem(
                f"'{attr_node.attr}' cannot be used in a campaign template{hint}",
                attr_node,
                [attr_node.attr],
            )
    for item in ast.find_all(nodes.Getitem):
        if isinstance(item.arg, nodes.Const) and str(item.arg.value).startswith("_"):
            problem(f"'{item.arg.value}' cannot be used in a campaign template", item, ["_"])
    for filt in ast.find_all(nodes.Filter):
        if filt.name not in env.filters:
            problem(f"there is no filter named '{filt.name}'", filt, [filt.name])
    if problems:
        return problems

    undeclared = meta.find_undeclared_variables(ast)
    allowed = known | set(env.globals)
    reported: set[str] = set()
    for name_node in ast.find_all(nodes.Name):
        if name_node.ctx != "load" or name_node.name not in undeclared or name_node.name in allowed:
            continue
        if name_node.name in reported:
            continue
        reported.add(name_node.name)
        close = get_close_matches(name_node.name, sorted(known), n=1)
        hint = f': did you mean "{close[0]}"?' if close else ""
        problem(f'unknown variable "{name_node.name}"{hint}', name_node, [name_node.name])
    for field_node in ast.find_all(nodes.Getattr):
        target = field_node.node
        if not (isinstance(target, nodes.Name) and target.name in undeclared):
            continue
        fields = FIELDS.get(target.name)
        if fields is None or field_node.attr in fields or target.name not in known:
            continue
        close = get_close_matches(field_node.attr, fields, n=1)
        hint = f': did you mean "{target.name}.{close[0]}"?' if close else ""
        if target.name == "contact" and not close:
            hint = f"; other fields are contact.attributes.{field_node.attr}"
        problem(
            f'{target.name} has no field "{field_node.attr}"{hint}', field_node, [field_node.attr]
        )
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def context_problems(source: str, part: str) -> list[TemplateProblem]:
    try:
        Placeholders(source).html(source)
    except JinjaInTag as exc:
        return [jinja_in_tag_problem(exc, source, part)]
    return []
