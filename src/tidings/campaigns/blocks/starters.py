"""Starter templates for the block editor: a newsletter, an announcement, an event invitation
and a plain letter.  Each is a block document with placeholder text to replace; all of them
compile as they are (a test sends each through the whole pipeline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .compiler import BlocksInvalid, dumps, parse
from .markup import link_addresses
from .schema import BLOCK_LABELS, EXAMPLE_PICTURE, OLD_EXAMPLE_PICTURE, Document


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    description: str
    subject: str
    blocks: tuple[dict[str, Any], ...]

    def body(self) -> str:
        return dumps(Document.model_validate({"blocks": list(self.blocks)}))


_GREETING = {"type": "text", "text": 'Hello {{ contact.first_name or "there" }},'}
_SIGN_OFF = {"type": "text", "text": "Thanks for reading,\n{{ controller.name }}"}

STARTERS: dict[str, Starter] = {
    s.key: s
    for s in (
        Starter(
            key="newsletter",
            name="Newsletter",
            description="A headline story, two smaller ones side by side, and a sign-off.",
            subject="What's new at {{ controller.name }}",
            blocks=(
                {"type": "heading", "text": "This month at {{ controller.name }}", "level": 1},
                _GREETING,
                {
                    "type": "text",
                    "text": "Here is what happened since we last wrote. Replace this "
                    "paragraph with your lead story: **one idea**, told simply.",
                },
                {"type": "button", "label": "Read the full story", "url": "https://example.com/"},
                {"type": "divider"},
                {"type": "heading", "text": "Also this month", "level": 2},
                {
                    "type": "columns",
                    "left_text": "**A second story**\nA sentence or two about it, and "
                    "[a link](https://example.com/) to read more.",
                    "right_text": "**A third story**\nA sentence or two about it, and "
                    "[a link](https://example.com/) to read more.",
                },
                {"type": "divider"},
                _SIGN_OFF,
                {
                    "type": "social",
                    "links": [{"network": "website", "url": "https://example.com/"}],
                },
            ),
        ),
        Starter(
            key="announcement",
            name="Announcement",
            description="One big piece of news with a picture and a single call to action.",
            subject="Announcing something new",
            blocks=(
                {"type": "heading", "text": "Something new is here", "level": 1},
                {
                    "type": "image",
                    "src": EXAMPLE_PICTURE,
                    "alt": "Replace this picture with one of your own",
                    "width": 560,
                },
                _GREETING,
                {
                    "type": "text",
                    "text": "Say what it is in one sentence. Then say why it matters to the "
                    "person reading, and what they can do now.",
                },
                {"type": "button", "label": "Find out more", "url": "https://example.com/"},
                _SIGN_OFF,
            ),
        ),
        Starter(
            key="event",
            name="Event invitation",
            description="What, when and where, with a button to reply.",
            subject="You're invited",
            blocks=(
                {"type": "heading", "text": "You're invited", "level": 1},
                _GREETING,
                {
                    "type": "text",
                    "text": "We would love to see you at our event.\n\n"
                    "**When:** the date, from the start time to the end time\n"
                    "**Where:** the venue, its address (or the link for an online event)",
                },
                {
                    "type": "button",
                    "label": "Reply to the invitation",
                    "url": "https://example.com/",
                },
                {"type": "spacer", "height": 16},
                {
                    "type": "text",
                    "text": "Can't make it? Reply to this email and we'll send you the recording.",
                },
                _SIGN_OFF,
            ),
        ),
        Starter(
            key="letter",
            name="Plain letter",
            description="Just words, like a personal email.",
            subject="A note from {{ controller.name }}",
            blocks=(
                _GREETING,
                {
                    "type": "text",
                    "text": "Write your letter here. Short paragraphs read best on a "
                    "phone.\n\nA line break stays a line break.",
                },
                {"type": "text", "text": "Best wishes,\n{{ controller.name }}"},
            ),
        ),
    )
}


def starter(key: str) -> Starter | None:
    return STARTERS.get(key)


# What a starter holds only for the operator to replace: its example address, and the phrases
# of its paragraphs that ask to be rewritten.  A campaign still carrying them is flagged on the
# send confirmation (a test checks that every starter's body is).
EXAMPLE_ADDRESS = "https://example.com/"
EXAMPLE_PHRASES = (
    "Replace this paragraph",
    "A sentence or two about it",
    "Say what it is in one sentence",
    "the date, from the start time",
    "Write your letter here",
)


def leftovers(body: str, fmt: str) -> list[str]:
    """What a block body still holds from the starter it came from, one line per block: the
    example address (https://example.com/) and the starter's words asking to be rewritten
    ("Block 4 (Button): still links to https://example.com/, the starter's example"); [] for
    other formats or a body with none."""
    if fmt != "blocks":
        return []
    try:
        document = parse(body)
    except BlocksInvalid:
        return []  # the campaign's own checks say what is wrong
    found: list[str] = []
    for index, block in enumerate(document.blocks):
        where = f"Block {index + 1} ({BLOCK_LABELS[block.type]})"
        values = block.model_dump()
        texts = [str(values.get(k) or "") for k in ("text", "left_text", "right_text")]
        links = [str(values.get(k) or "") for k in ("url", "link")]
        links += [str(link["url"]) for link in values.get("links") or ()]
        pictures = [str(values.get(k) or "") for k in ("src", "left_image", "right_image")]
        for text in texts:
            links += link_addresses(text) if text else []
        problems = []
        if any(picture in (EXAMPLE_PICTURE, OLD_EXAMPLE_PICTURE) for picture in pictures):
            problems.append("still shows the starter's example picture")
        if any(link.strip() == EXAMPLE_ADDRESS for link in links):
            problems.append(f"still links to {EXAMPLE_ADDRESS}, the starter's example")
        if any(phrase in text for text in texts for phrase in EXAMPLE_PHRASES):
            problems.append("still has the starter's example words")
        if problems:
            found.append(f"{where}: {' and '.join(problems)}")
    return found
