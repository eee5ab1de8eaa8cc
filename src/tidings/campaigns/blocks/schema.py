"""What a body made of blocks is: a versioned JSON document, validated with pydantic.

A document is ``{"version": 1, "settings": {...}, "blocks": [{"type": "heading", ...}, ...]}``,
stored as a template's or campaign's ``body`` with the format "blocks".  Every field is bounded
(lengths, numbers, colours as ``#rrggbb``, links with a known scheme or a placeholder), so what
reaches MJML is always well-formed; what a block means is in ``compiler.py``.

``FIELDS`` describes each block's editable fields (label, kind, help) once: the editor page
renders its form from it, with or without JavaScript, and ``editor.py`` reads the form back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .markup import link_addresses

MAX_BLOCKS = 100
MAX_TEXT = 20_000
VERSION: Final = 1

_HEX = re.compile(r"#[0-9a-fA-F]{6}")
# A placeholder standing for a whole link ("{{ view_url }}"), or an absolute http(s)/mailto/tel
# address, which may carry placeholders ("https://example.com/?ref={{ contact.company }}").
_JINJA_SPAN = re.compile(r"\{\{.*?\}\}", re.S)
_URL = re.compile(r"(?:https?://[^\s/]|mailto:\S|tel:\S)\S*", re.I)
_MEDIA_PATH = re.compile(r"/media/[A-Za-z0-9._/-]+")

# The Announcement starter's picture, until a marketer picks their own (starters.leftovers()
# flags it on the send confirmation): a placeholder served by this app among its static files,
# so the preview and a test send show it rather than a broken image.  Starters of earlier
# versions pointed at an address that never held a picture; it is shown as this one too.
EXAMPLE_PICTURE = "/static/campaigns/blocks/example-picture.png"
OLD_EXAMPLE_PICTURE = "https://example.com/your-picture.png"

FONTS: dict[str, tuple[str, str]] = {
    "system": (
        "System sans-serif",
        '-apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif',
    ),
    "helvetica": ("Helvetica / Arial", "Helvetica, Arial, sans-serif"),
    "verdana": ("Verdana", "Verdana, Geneva, sans-serif"),
    "trebuchet": ("Trebuchet", '"Trebuchet MS", Tahoma, sans-serif'),
    "georgia": ("Georgia (serif)", 'Georgia, "Times New Roman", serif'),
    "times": ("Times (serif)", '"Times New Roman", Times, serif'),
}
NETWORKS: dict[str, str] = {
    "website": "Website",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "linkedin": "LinkedIn",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "x": "X (Twitter)",
    "youtube": "YouTube",
}
ALIGN = Literal["left", "center", "right"]


def check_link(value: str, *, what: str = "link") -> str:
    """A link a block may carry: blank, a placeholder, or an absolute http(s), mailto or tel
    address (placeholders allowed inside).  Raises ValueError saying what is wrong."""
    value = value.strip()
    if not value:
        return value
    if '"' in value or "<" in value or ">" in value:
        raise ValueError(f'a {what} cannot contain " < or >')
    bare = _JINJA_SPAN.sub("x", value)
    if not bare.strip("x ") and value.startswith("{{"):
        return value  # a placeholder alone: {{ view_url }}
    if "{%" in value or "{#" in value:
        raise ValueError(f"a {what} can hold {{{{ placeholders }}}} but no {{% tags %}}")
    if re.search(r"\s", bare):
        raise ValueError(f"a {what} cannot contain spaces")
    if not _URL.fullmatch(bare):
        raise ValueError(
            f"a {what} must start with https://, http://, mailto: or tel: (or be a placeholder "
            "such as {{ view_url }})"
        )
    return value


def check_rich_links(value: str) -> str:
    """Rich text whose links all lead somewhere from a mail program: "[the shop](/shop)" or
    "[offer](https://example.com/a b)" would arrive as a dead link or as raw brackets.  Raises
    ValueError naming the link."""
    for address in link_addresses(value):
        try:
            check_link(address)
        except ValueError as exc:
            shown = address if len(address) <= 60 else address[:59] + "…"
            raise ValueError(f"{exc} (the link “{shown}”)") from None
    return value


def check_image_source(value: str) -> str:
    """An image address: an absolute http(s) URL, or a picture of the media library."""
    value = value.strip()
    if not value:
        return value
    if _MEDIA_PATH.fullmatch(value) or value == EXAMPLE_PICTURE:
        return value
    if '"' in value or "<" in value or ">" in value or re.search(r"\s", value):
        raise ValueError("an image address cannot contain spaces, quotes, < or >")
    if "{" in value:
        raise ValueError("an image address cannot hold placeholders")
    if not re.fullmatch(r"https?://[^\s/]\S*", value, re.I):
        raise ValueError("an image address must start with https:// (or pick one from the library)")
    return value


def _colour(value: str) -> str:
    if not _HEX.fullmatch(value or ""):
        raise ValueError("a colour is written #rrggbb, for example #1f5fb8")
    return value.lower()


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Heading(_Block):
    type: Literal["heading"] = "heading"
    text: Annotated[str, Field(min_length=1, max_length=300)]
    level: Literal[1, 2, 3] = 1
    align: ALIGN = "left"

    @field_validator("text")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("write the heading")
        return value


class Text(_Block):
    type: Literal["text"] = "text"
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    align: ALIGN = "left"

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.replace("\r\n", "\n").strip("\n")
        if not value.strip():
            raise ValueError("write some text (or remove the block)")
        return check_rich_links(value)


class Image(_Block):
    type: Literal["image"] = "image"
    src: Annotated[str, Field(min_length=1, max_length=2000)]
    alt: Annotated[str, Field(max_length=300)] = ""
    link: Annotated[str, Field(max_length=2000)] = ""
    width: Annotated[int | None, Field(ge=40, le=800)] = None
    align: ALIGN = "center"

    @field_validator("src")
    @classmethod
    def check_src(cls, v: str) -> str:
        return check_image_source(v)

    @field_validator("link")
    @classmethod
    def check_link(cls, v: str) -> str:
        return check_link(v)

    @field_validator("alt")
    @classmethod
    def _alt(cls, value: str) -> str:
        return " ".join(value.split())


class Button(_Block):
    type: Literal["button"] = "button"
    label: Annotated[str, Field(min_length=1, max_length=100)]
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    colour: str = "#1f5fb8"
    align: ALIGN = "center"

    @field_validator("url")
    @classmethod
    def check_url(cls, v: str) -> str:
        return check_link(v)

    @field_validator("colour")
    @classmethod
    def check_colour(cls, v: str) -> str:
        return _colour(v)

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("give the button a label")
        return value


class Columns(_Block):
    type: Literal["columns"] = "columns"
    left_image: Annotated[str, Field(max_length=2000)] = ""
    left_alt: Annotated[str, Field(max_length=300)] = ""
    left_text: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    right_image: Annotated[str, Field(max_length=2000)] = ""
    right_alt: Annotated[str, Field(max_length=300)] = ""
    right_text: Annotated[str, Field(max_length=MAX_TEXT)] = ""

    @field_validator("left_image", "right_image")
    @classmethod
    def check_images(cls, v: str) -> str:
        return check_image_source(v)

    @field_validator("left_text", "right_text")
    @classmethod
    def _text(cls, value: str) -> str:
        return check_rich_links(value.replace("\r\n", "\n").strip("\n"))

    def side_is_empty(self, side: str) -> bool:
        return not (getattr(self, f"{side}_image") or getattr(self, f"{side}_text").strip())


class Divider(_Block):
    type: Literal["divider"] = "divider"
    colour: str = "#d4d8de"

    @field_validator("colour")
    @classmethod
    def check_colour(cls, v: str) -> str:
        return _colour(v)


class Spacer(_Block):
    type: Literal["spacer"] = "spacer"
    height: Annotated[int, Field(ge=4, le=160)] = 24


class SocialLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    network: Literal[tuple(NETWORKS)]  # type: ignore[valid-type]
    url: Annotated[str, Field(min_length=1, max_length=2000)]

    @field_validator("url")
    @classmethod
    def check_url(cls, v: str) -> str:
        return check_link(v)


class Social(_Block):
    type: Literal["social"] = "social"
    links: Annotated[list[SocialLink], Field(min_length=1, max_length=len(NETWORKS))]
    align: ALIGN = "center"


class Footer(_Block):
    type: Literal["footer"] = "footer"
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.replace("\r\n", "\n").strip("\n")
        if not value.strip():
            raise ValueError("write the footer's text (or remove the block)")
        return check_rich_links(value)


Block = Annotated[
    Heading | Text | Image | Button | Columns | Divider | Spacer | Social | Footer,
    Field(discriminator="type"),
]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: Annotated[int, Field(ge=320, le=800)] = 536
    font: Literal[tuple(FONTS)] = "system"  # type: ignore[valid-type]
    text_colour: str = "#1b1f24"
    link_colour: str = "#1f5fb8"

    @field_validator("text_colour", "link_colour")
    @classmethod
    def check_colours(cls, v: str) -> str:
        return _colour(v)


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = VERSION
    settings: Settings = Settings()
    blocks: Annotated[list[Block], Field(max_length=MAX_BLOCKS)] = []


# --- labels, for the editor and for messages ------------------------------------------------
BLOCK_LABELS: dict[str, str] = {
    "heading": "Heading",
    "text": "Text",
    "image": "Image",
    "button": "Button",
    "columns": "Two columns",
    "divider": "Divider",
    "spacer": "Spacer",
    "social": "Social links",
    "footer": "Footer",
}
BLOCK_HELP: dict[str, str] = {
    "heading": "A title or section heading.",
    "text": "Paragraphs with bold, italic, links and lists.",
    "image": "A picture from the media library or an https:// address.",
    "button": "A big link people can tap.",
    "columns": "Two side-by-side columns (stacked on phones).",
    "divider": "A thin line between sections.",
    "spacer": "Empty space.",
    "social": "Links to your pages elsewhere.",
    "footer": "Small print at the end of your content.",
}


@dataclass(frozen=True)
class FieldSpec:
    """One editable field of a block, as the editor's form shows it."""

    name: str
    label: str
    kind: str = "text"  # text | richtext | url | image | select | colour | number
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None


_ALIGN_CHOICES = (("left", "Left"), ("center", "Centre"), ("right", "Right"))
_ALT_HELP = "Describe the picture for people who cannot see it; blank only if it is decoration."
_RICH_HELP = (
    "**bold**, *italic*, [a link](https://…), lines starting with “- ” make a list. "
    "A line break stays a line break."
)

FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "heading": (
        FieldSpec("text", "Heading", required=True),
        FieldSpec(
            "level", "Size", "select", choices=(("1", "Large"), ("2", "Medium"), ("3", "Small"))
        ),
        FieldSpec("align", "Alignment", "select", choices=_ALIGN_CHOICES),
    ),
    "text": (
        FieldSpec("text", "Text", "richtext", help=_RICH_HELP, required=True),
        FieldSpec("align", "Alignment", "select", choices=_ALIGN_CHOICES),
    ),
    "image": (
        FieldSpec(
            "src",
            "Image",
            "image",
            help="From the media library, or an https:// address.",
            required=True,
        ),
        FieldSpec("alt", "Description (alt text)", help=_ALT_HELP),
        FieldSpec("link", "Link (optional)", "url", help="Where the picture leads when tapped."),
        FieldSpec(
            "width",
            "Width in pixels (optional)",
            "number",
            help="Blank: as wide as the email.",
            minimum=40,
            maximum=800,
        ),
        FieldSpec("align", "Alignment", "select", choices=_ALIGN_CHOICES),
    ),
    "button": (
        FieldSpec("label", "Label", required=True),
        FieldSpec(
            "url",
            "Link",
            "url",
            help="https://… or a placeholder such as {{ view_url }}",
            required=True,
        ),
        FieldSpec(
            "colour",
            "Colour",
            "colour",
            help="The text colour (white or black) is chosen for contrast.",
        ),
        FieldSpec("align", "Alignment", "select", choices=_ALIGN_CHOICES),
    ),
    "columns": (
        FieldSpec("left_image", "Left: image (optional)", "image"),
        FieldSpec("left_alt", "Left: image description", help=_ALT_HELP),
        FieldSpec("left_text", "Left: text", "richtext", help=_RICH_HELP),
        FieldSpec("right_image", "Right: image (optional)", "image"),
        FieldSpec("right_alt", "Right: image description", help=_ALT_HELP),
        FieldSpec("right_text", "Right: text", "richtext", help=_RICH_HELP),
    ),
    "divider": (FieldSpec("colour", "Colour", "colour"),),
    "spacer": (FieldSpec("height", "Height in pixels", "number", minimum=4, maximum=160),),
    "social": tuple(
        FieldSpec(network, f"{label} address", "url", help="Blank: not shown.")
        for network, label in NETWORKS.items()
    ),
    "footer": (FieldSpec("text", "Small print", "richtext", help=_RICH_HELP, required=True),),
}
SETTINGS_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("font", "Font", "select", choices=tuple((k, v[0]) for k, v in FONTS.items())),
    FieldSpec("text_colour", "Text colour", "colour"),
    FieldSpec("link_colour", "Link colour", "colour"),
    FieldSpec(
        "width",
        "Content width in pixels",
        "number",
        help="The width of the space your layout gives the body: 536 for the default layout.",
        minimum=320,
        maximum=800,
    ),
)

# What a newly added block holds.
NEW_BLOCK: dict[str, dict[str, Any]] = {
    "heading": {"type": "heading", "text": "A heading", "level": 2, "align": "left"},
    "text": {"type": "text", "text": "Write something here.", "align": "left"},
    "image": {"type": "image", "src": "", "alt": "", "align": "center"},
    "button": {
        "type": "button",
        "label": "Read more",
        "url": "https://example.com/",
        "colour": "#1f5fb8",
        "align": "center",
    },
    "columns": {"type": "columns", "left_text": "Left column", "right_text": "Right column"},
    "divider": {"type": "divider", "colour": "#d4d8de"},
    "spacer": {"type": "spacer", "height": 24},
    "social": {"type": "social", "links": [], "align": "center"},
    "footer": {"type": "footer", "text": "Questions? Reply to this email."},
}


@dataclass(frozen=True)
class BlockError:
    """One problem with the document: which block (0-based, None for the document), which
    field, and what is wrong."""

    index: int | None
    field: str
    message: str

    @property
    def where(self) -> str:
        return "Email settings" if self.index is None else f"Block {self.index + 1}"


def errors_of(exc: ValidationError, data: Any = None) -> list[BlockError]:
    """pydantic's errors, as BlockErrors with messages for people."""
    found: list[BlockError] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        index: int | None = None
        field = ""
        if len(loc) >= 2 and loc[0] == "blocks" and isinstance(loc[1], int):
            index = loc[1]
            rest = [str(p) for p in loc[2:]]
            if rest and rest[0] in BLOCK_LABELS:  # pydantic names the union's member first
                rest = rest[1:]
            if rest and rest[0] == "links" and len(rest) >= 2 and isinstance(data, dict):
                try:
                    rest = [data["blocks"][index]["links"][int(rest[1])]["network"]]
                except (KeyError, IndexError, TypeError, ValueError):
                    rest = ["links"]
            field = rest[0] if rest else ""
        elif loc and loc[0] == "settings":
            field = str(loc[1]) if len(loc) > 1 else ""
        elif loc:
            field = str(loc[0])
        message = str(error["msg"]).removeprefix("Value error, ")
        kind = error["type"]
        if kind == "string_too_short" and field == "src":
            message = "choose a picture from the media library, or give its https:// address"
        elif kind == "string_too_short" and field:
            message = "this cannot be blank"
        elif kind == "string_too_long":
            limit = (error.get("ctx") or {}).get("max_length")
            message = f"too long: at most {limit:,} characters" if limit else "too long"
        elif kind == "missing":
            message = "this is needed"
        elif kind == "too_long" and field == "blocks":
            message = f"at most {MAX_BLOCKS} blocks"
        elif kind == "too_short" and field == "links":
            message = "give at least one address"
        elif kind == "union_tag_invalid":
            message = "unknown kind of block"
        found.append(BlockError(index, field, message))
    return found
