"""HTML: Markdown to HTML (markdown-it), sanitising (nh3), CSS inlining (css-inline), and the whole
email document around a layout's body."""

from __future__ import annotations

import html as html_lib
import re

import css_inline
import nh3
from markdown_it import MarkdownIt

from .conditional import sanitise_conditional_comments
from .diagnostics import (
    jinja_in_tag_problem,
)
from .placeholders import (
    JinjaInTag,
    Placeholders,
    escape_braces,
)
from .styles import safe_css

# Raw HTML is allowed in Markdown: it is sanitised with everything else afterwards.
# "breaks": a line break in the source is one in the email ("Thanks,⏎The team" stays two lines).
_MARKDOWN = MarkdownIt("commonmark", {"html": True, "breaks": True}).enable("table")


def markdown_to_html(source: str) -> str:
    """Markdown (CommonMark and tables) to HTML, Jinja tags kept as they are.

    A block statement on the line before a list whose end tag is on the line after it
    ("{% for p in products %}", "- {{ p }}", "{% endfor %}") is moved inside the list, so the
    loop repeats the items, not the whole list."""
    marks = Placeholders(source)
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
_SCHEMES_LIST = ("http", "https", "mailto", "tel")
_CLEANER = nh3.Cleaner(
    tags=_EMAIL_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_EMAIL_ATTRIBUTES,
    url_schemes=set(_SCHEMES_LIST),
    strip_comments=False,  # Outlook's conditional comments, and our placeholders
    link_rel=None,
    attribute_filter=lambda _tag, name, value: safe_css(value) if name == "style" else value,
)


_SCHEMES = frozenset(_SCHEMES_LIST)


def clean_html(fragment: str) -> str:
    return sanitise_conditional_comments(
        _CLEANER.clean(fragment), _EMAIL_TAGS, _EMAIL_ATTRIBUTES, _SCHEMES
    )


def sanitise_html(source: str) -> str:
    """An HTML fragment with everything an email must not carry removed (scripts, frames, forms,
    event handlers, javascript: links...), its Jinja tags kept.  Raises TemplateProblem (part
    "body") for a Jinja tag inside an HTML tag but outside an attribute value."""
    marks = Placeholders(source)
    try:
        protected = marks.html(source)
    except JinjaInTag as exc:
        raise jinja_in_tag_problem(exc, source, "body") from None
    cleaned = fix_tbody(clean_html(protected), protected, marks.prefix)
    return marks.restore(escape_braces(cleaned))[0]


_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


def inline_css(document: str) -> str:
    """The document with its <style> rules copied into style attributes (media queries stay in a
    <style> element).  Never fetches anything.

    css-inline writes the <style> it keeps at the top of <head>, before <meta charset>; with a
    layout's media queries and dark-mode rules that passes the first 1024 bytes, where a browser
    opening the mail saved as .html looks for the charset (then guesses: "Jörg" as "JÃ¶rg").
    So the charset is put back first."""
    inlined = _INLINER.inline(document)
    head = _HEAD_OPEN.search(inlined)
    if head is None:
        return inlined
    rest, moved = _CHARSET.subn("", inlined[head.end() :], count=1)
    if not moved:
        return inlined
    return f'{inlined[: head.end()]}\n<meta charset="utf-8">\n{rest.lstrip()}'


_HEAD_OPEN = re.compile(r"<head\b[^>]*>", re.I)
_CHARSET = re.compile(r"<meta\s+charset\s*=\s*[\"']?utf-8[\"']?\s*/?>\s*", re.I)


_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.I | re.S)
TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
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


def body_of_document(source: str) -> str:
    """An HTML body pasted as a whole document (Word's clipboard, a saved web page): what its
    <body> holds, after the <style> elements of its head (their rules are inlined like a
    layout's).  Left whole, its </body> closed the layout's body too: everything of the layout
    after the content, the unsubscribe link and postal address with it, was cut off."""
    opening = _BODY_OPEN.search(source)
    if opening is None:
        return source
    closings = list(_BODY_CLOSE.finditer(source, opening.end()))
    end = closings[-1].start() if closings else len(source)
    styles = "".join(m.group() for m in _STYLE.finditer(source, 0, opening.start()))
    return styles + source[opening.end() : end]


# A stylesheet with rules for dark mode ("@media (prefers-color-scheme: dark)").
DARK_RULES = re.compile(r"prefers-color-scheme\s*:\s*dark", re.I)


def email_document(protected: str, preheader: str, title: str, *, dark: bool = False) -> str:
    """A whole email document from the (placeholder-protected) layout with its body: a fixed,
    known head (charset, viewport, title, the layout's CSS) and the sanitised body.

    ``dark``: the layout has its own dark-mode rules, so the head says the email supports both
    colour schemes (Apple Mail then uses dark defaults for what no rule colours).  Said only
    then: a layout that paints a white background without choosing a text colour would get
    light default text on it."""
    css = "\n".join(m.group(1) for m in _STYLE.finditer(protected))
    css = safe_css(_CSS_IMPORT.sub("", css)).strip()
    rest = _STYLE.sub("", protected)
    found = TITLE.search(rest)
    if found and found.group(1).strip():
        title = html_lib.escape(html_lib.unescape(found.group(1).strip()), quote=False)
    lang = _HTML_LANG.search(rest)
    opening = _BODY_OPEN.search(rest)
    if opening:
        closing = _BODY_CLOSE.search(rest, opening.end())
        inner = rest[opening.end() : closing.start() if closing else None]
        attributes = _body_attributes(opening.group())
    else:
        inner = _DOC_WRAPPERS.sub("", _HEAD.sub("", TITLE.sub("", rest)))
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
    if dark:
        head[5:5] = [
            '<meta name="color-scheme" content="light dark">',
            '<meta name="supported-color-schemes" content="light dark">',
        ]
    if css:
        head.append(f"<style>\n{css}\n</style>")
    return "\n".join(
        [
            *head,
            "</head>",
            f"<body{attributes}>",
            clean_html(preheader + inner),
            "</body>",
            "</html>",
        ]
    )


def preheader_html(marks: Placeholders, preheader: str) -> str:
    if not preheader.strip():
        return ""
    text = html_lib.escape(marks.plain(preheader), quote=False)
    text = re.sub(rf"{marks.prefix}\d+x", lambda m: f"<!--{m.group()}-->", text)
    # Filler after the text keeps mail clients from pulling body text into the preview line.
    filler = "&#847;&zwnj;&nbsp;" * 40
    return f'<div style="{_PREHEADER_STYLE}" aria-hidden="true">{text}{filler}</div>\n'


def fix_tbody(html: str, protected: str, prefix: str) -> str:
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
