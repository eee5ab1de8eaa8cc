"""Pictures an operator marked as showing a contact, in that person's access package and
erased with them (see ``tidings.audience.sources``).  Other pictures are nobody's personal data."""

from __future__ import annotations

from tidings.audience.sources import model_source, register
from tidings.audience.tokens import absolute_url

from .models import MediaImage


def register_sources() -> None:
    from tidings.audience.merge import register_merger

    register_merger(MediaImage, "contact")
    register(
        model_source(
            "pictures",
            MediaImage,
            of="contact",
            title="Pictures of you",
            record_kind=None,
            about=(
                "Pictures we use in our emails or on our website that show you, as an operator "
                "recorded when adding them."
            ),
            columns=(
                "name",
                ("description", "alt"),
                ("address", lambda image: absolute_url(image.path)),
                ("added_at", "created_at"),
            ),
            order=95,
        )
    )
