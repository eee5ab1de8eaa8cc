"""The block editor as a form: read blocks from a POST, apply a button's edit, check, preview.

The editor page is an ordinary form, so it works without JavaScript: each block is a fieldset
of inputs named ``blocks-<n>-<field>`` (``blocks-<n>-type`` says which kind), the email's
settings are ``settings-<field>``, and the buttons "Move up", "Move down", "Remove" and "Add
block" submit ``op=up:<n>`` / ``down:<n>`` / ``remove:<n>`` / ``add`` (with ``add_type``).  The
server applies the edit and shows the page again, preview included.  With JavaScript
(``static/campaigns/blocks/editor.js``) the same buttons act in the page, blocks can also be
dragged, and the preview follows every keystroke; the names are renumbered in page order before
anything is sent, so the server reads both the same way.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from pydantic import ValidationError

from .compiler import blocks_to_html, describe, dumps
from .markup import JINJA
from .schema import (
    BLOCK_HELP,
    BLOCK_LABELS,
    FIELDS,
    NETWORKS,
    NEW_BLOCK,
    SETTINGS_FIELDS,
    BlockError,
    Document,
    FieldSpec,
    Settings,
    errors_of,
)

_NAME = re.compile(r"blocks-(\d{1,3})-([a-z_]+)")
_NUMBERS = {"level", "width", "height"}
OPS = re.compile(r"(up|down|remove):(\d{1,3})|add|preview|format")


@dataclass
class FieldView:
    spec: FieldSpec
    name: str  # the input's name
    id: str
    value: str
    errors: list[str] = field(default_factory=list)


@dataclass
class BlockView:
    index: int
    type: str
    label: str
    help: str
    fields: list[FieldView]
    errors: list[str]  # about the block as a whole

    @property
    def number(self) -> int:
        return self.index + 1


class BlockEditor:
    """Blocks as the form holds them: a list of dicts of strings (kept as typed, even when
    invalid, so the page shows what the operator wrote), and the email's settings."""

    def __init__(self, blocks: list[dict[str, Any]], settings: dict[str, Any]) -> None:
        self.blocks = blocks
        self.settings = settings
        self.op = ""
        self.moved_to: int | None = None

    # --- reading ----------------------------------------------------------------------------
    @classmethod
    def from_body(cls, body: str) -> BlockEditor:
        """From a stored document (blank or unreadable: an empty editor)."""
        try:
            data = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError:
            data = {}
        blocks = data.get("blocks") if isinstance(data, dict) else None
        settings = data.get("settings") if isinstance(data, dict) else None
        editor = cls(
            [cls._flatten(b) for b in blocks if isinstance(b, dict)]
            if isinstance(blocks, list)
            else [],
            settings if isinstance(settings, dict) else {},
        )
        return editor

    @staticmethod
    def _flatten(block: dict[str, Any]) -> dict[str, Any]:
        """A stored block as form values: social links as one field per network."""
        flat = {k: v for k, v in block.items() if k != "links"}
        for link in block.get("links") or []:
            if isinstance(link, dict) and link.get("network") in NETWORKS:
                flat[link["network"]] = link.get("url", "")
        return flat

    @classmethod
    def from_post(cls, data: QueryDict) -> BlockEditor:
        """From the editor's form, with the pressed button's edit applied."""
        found: dict[int, dict[str, Any]] = {}
        for name in data:
            m = _NAME.fullmatch(name)
            if m:
                found.setdefault(int(m.group(1)), {})[m.group(2)] = data.get(name, "")
        blocks = [found[i] for i in sorted(found) if found[i].get("type") in BLOCK_LABELS]
        for block in blocks:  # "or pick from the library" wins over the address typed
            for key in [k for k in block if k.endswith("_pick")]:
                picked = block.pop(key)
                if picked:
                    field = key.removesuffix("_pick")
                    block[field] = picked
                    # Its description is the alt text unless one was written (src goes with
                    # alt, left_image with left_alt).
                    alt = "alt" if field == "src" else field.removesuffix("_image") + "_alt"
                    if not block.get(alt):
                        block[alt] = _library_alt(picked)
        settings = {
            spec.name: data.get(f"settings-{spec.name}", "")
            for spec in SETTINGS_FIELDS
            if f"settings-{spec.name}" in data
        }
        editor = cls(blocks, settings)
        editor.apply(data.get("op", ""), data.get("add_type", ""))
        return editor

    def apply(self, op: str, add_type: str = "") -> None:
        """Apply one button's edit: move a block up or down, remove it, or add one at the end."""
        m = OPS.fullmatch(op or "")
        if m is None:
            return
        self.op = op
        verb, index = m.group(1), int(m.group(2)) if m.group(2) else None
        if op == "add" and add_type in NEW_BLOCK:
            self.blocks.append(self._flatten(dict(NEW_BLOCK[add_type])))
            self.moved_to = len(self.blocks) - 1
        elif index is not None and 0 <= index < len(self.blocks):
            if verb == "remove":
                del self.blocks[index]
                self.moved_to = min(index, len(self.blocks) - 1) if self.blocks else None
            else:
                target = index - 1 if verb == "up" else index + 1
                if 0 <= target < len(self.blocks):
                    self.blocks[index], self.blocks[target] = (
                        self.blocks[target],
                        self.blocks[index],
                    )
                    self.moved_to = target
                else:
                    self.moved_to = index

    @property
    def is_edit(self) -> bool:
        """True when a button other than "save" was pressed: show the page again, save nothing."""
        return bool(self.op)

    # --- the document -----------------------------------------------------------------------
    def data(self) -> dict[str, Any]:
        """The document as JSON data, values converted where they can be (numbers, links)."""
        blocks = []
        for raw in self.blocks:
            kind = raw.get("type", "")
            block: dict[str, Any] = {"type": kind}
            names = [spec.name for spec in FIELDS.get(kind, ())]
            if kind == "social":
                block["links"] = [
                    {"network": n, "url": str(raw[n]).strip()}
                    for n in NETWORKS
                    if str(raw.get(n, "")).strip()
                ]
                names = [n for n in names if n not in NETWORKS]
            for name in names:
                if name not in raw:
                    continue
                value = raw[name]
                if name in _NUMBERS and isinstance(value, str):
                    value = value.strip()
                    if value == "":
                        if name == "width":
                            block[name] = None
                        continue
                    value = int(value) if value.isdigit() else value
                block[name] = value
            blocks.append(block)
        settings: dict[str, Any] = {}
        for name, value in self.settings.items():
            if name in _NUMBERS and isinstance(value, str):
                value = int(value) if value.strip().isdigit() else value
            if value != "":
                settings[name] = value
        return {"version": 1, "settings": settings, "blocks": blocks}

    def validate(self) -> tuple[Document | None, list[BlockError]]:
        data = self.data()
        try:
            return Document.model_validate(data), []
        except ValidationError as exc:
            return None, errors_of(exc, data)

    def body(self) -> str:
        """The stored body: the validated document, or (when invalid) the data as it is, so
        the checks report what is wrong."""
        document, _ = self.validate()
        if document is not None:
            return dumps(document)
        return json.dumps(self.data(), ensure_ascii=False)

    # --- the page ---------------------------------------------------------------------------
    def views(self, errors: Sequence[BlockError] = ()) -> tuple[list[BlockView], list[FieldView]]:
        """What the template shows: each block's fields with their values and errors, and the
        settings' fields."""
        by_place: dict[tuple[int | None, str], list[str]] = {}
        for error in errors:
            by_place.setdefault((error.index, error.field), []).append(error.message)
        views = []
        for index, raw in enumerate(self.blocks):
            kind = raw.get("type", "")
            fields = [
                FieldView(
                    spec=spec,
                    name=f"blocks-{index}-{spec.name}",
                    id=f"block-{index}-{spec.name}",
                    value="" if raw.get(spec.name) is None else str(raw.get(spec.name)),
                    errors=by_place.pop((index, spec.name), []),
                )
                for spec in FIELDS.get(kind, ())
            ]
            own = by_place.pop((index, ""), []) + by_place.pop((index, "links"), [])
            views.append(BlockView(index, kind, BLOCK_LABELS[kind], BLOCK_HELP[kind], fields, own))
        defaults = Settings().model_dump()
        settings = [
            FieldView(
                spec=spec,
                name=f"settings-{spec.name}",
                id=f"settings-{spec.name}",
                value=str(self.settings.get(spec.name) or defaults[spec.name]),
                errors=by_place.pop((None, spec.name), []),
            )
            for spec in SETTINGS_FIELDS
        ]
        return views, settings

    @staticmethod
    def templates() -> list[BlockView]:
        """One empty block of each kind, index ``__N__``: the page's <template> elements, which
        the script copies when a block is added."""
        views = []
        for kind, new in NEW_BLOCK.items():
            flat = BlockEditor._flatten(dict(new))
            fields = [
                FieldView(
                    spec=spec,
                    name=f"blocks-__N__-{spec.name}",
                    id=f"block-__N__-{spec.name}",
                    value="" if flat.get(spec.name) is None else str(flat.get(spec.name)),
                )
                for spec in FIELDS[kind]
            ]
            views.append(BlockView(-1, kind, BLOCK_LABELS[kind], BLOCK_HELP[kind], fields, []))
        return views


# --- problems of the whole message, traced back to a block -----------------------------------
def _as_html(value: str) -> str:
    """A field's text as an HTML body whose only template code is the field's own."""
    parts, last = [], 0
    for m in JINJA.finditer(value):
        parts.append(html.escape(value[last : m.start()]))
        parts.append(m.group())
        last = m.end()
    parts.append(html.escape(value[last:]))
    return "".join(parts)


_OPENER = re.compile(r"\{[{%#]")


def locate(document: Document, problem_message: str) -> list[BlockError]:
    """The blocks and fields whose own placeholders cause template problems: each text field
    holding template code is checked alone.  [] when no single field explains it (a tag opened
    in one block and closed in another)."""
    from tidings.campaigns.rendering import check_template

    found: list[BlockError] = []
    for index, block in enumerate(document.blocks):
        values = block.model_dump()
        for link in values.pop("links", None) or []:
            values[link["network"]] = link["url"]
        for name, value in values.items():
            if not isinstance(value, str) or not _OPENER.search(value):
                continue
            # "{{" typed as text, with no "}}" to close it: Jinja's message ("expected token
            # 'end of print statement'") says nothing to someone who only meant the braces.
            stray = _OPENER.search(JINJA.sub("", value))
            hint = (
                f' ("{stray.group()}" starts a placeholder; to show it as text, write '
                f"{{{{ '{stray.group()}' }}}})"
                if stray
                else ""
            )
            for problem in check_template("Sample", _as_html(value), "html"):
                if problem.part != "body":
                    continue
                extra = hint
                # "{{ price }}" typed as words: no placeholder is near it, so say what they are.
                if (
                    not extra
                    and problem.message.startswith("unknown variable")
                    and ("did you mean" not in problem.message)
                ):
                    extra = (
                        " (placeholders are the ones in the menu beside the field; to show "
                        "\"{{\" as text, write {{ '{{' }})"
                    )
                found.append(BlockError(index, name, problem.message + extra))
    return found


def describe_all(errors: list[BlockError], editor: BlockEditor) -> list[str]:
    blocks = editor.data()["blocks"]
    return [describe(e, blocks) for e in errors]


def compile_preview(document: Document) -> str:
    return blocks_to_html(dumps(document))


def _library_alt(path: str) -> str:
    """The media library's description of the picture at ``path`` ("" when it is not one)."""
    from tidings.media.queries import by_path

    image = by_path(path)
    return image.alt if image is not None else ""
