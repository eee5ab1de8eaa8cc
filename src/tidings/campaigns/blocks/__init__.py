"""The block editor's bodies: a JSON document of blocks (``schema``), compiled to HTML through
MJML (``compiler``) and then sent through the same rendering pipeline as any HTML body.

The rendering pipeline calls ``blocks_to_html``; editor pages use the rest.
"""

from .compiler import BlocksInvalid, blocks_to_html, dumps, parse, to_mjml
from .schema import BLOCK_LABELS, FIELDS, Document

__all__ = [
    "BLOCK_LABELS",
    "FIELDS",
    "BlocksInvalid",
    "Document",
    "blocks_to_html",
    "dumps",
    "parse",
    "to_mjml",
]
