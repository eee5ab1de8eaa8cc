"""Checking and re-encoding uploaded pictures with Pillow.

Every upload is decoded and encoded again, never stored as sent: what comes out has pixels and
nothing else — no EXIF (camera, time, GPS position), XMP, IPTC, comments or colour-profile
strings.  The orientation EXIF gave is applied to the pixels first, so a phone photo still
stands the right way up.  The type is what Pillow finds in the bytes, not what the file name
or the browser claims.

- JPEG stays JPEG (quality 85, progressive); PNG stays PNG; GIF stays GIF (animation kept);
  WebP becomes PNG or JPEG, since Outlook and older mail programs do not show WebP.
- Wider than ``TIDINGS_MEDIA_MAX_WIDTH`` (1200 px: twice a 600 px email, for sharp screens)
  is scaled down.
- Over ``TIDINGS_MEDIA_MAX_BYTES`` (5 MB) uploaded, or ``TIDINGS_MEDIA_MAX_PIXELS`` (40
  million) decoded, is refused before decoding: a small file can unpack into a huge bitmap.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError

ALLOWED = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


class ImageRefused(ValueError):
    """Why an upload cannot be used, in words for the operator."""


@dataclass(frozen=True)
class Processed:
    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def key(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:32]


def _limits() -> tuple[int, int, int]:
    return (
        int(settings.TIDINGS_MEDIA_MAX_BYTES),
        int(settings.TIDINGS_MEDIA_MAX_PIXELS),
        int(settings.TIDINGS_MEDIA_MAX_WIDTH),
    )


def _to_srgb(frame: Image.Image) -> Image.Image:
    """Pixels in sRGB, the colour-profile dropped (it is metadata too, and mail programs
    assume sRGB)."""
    profile = frame.info.get("icc_profile")
    if profile and frame.mode in ("RGB", "RGBA"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = ImageCms.profileToProfile(
                frame, source, ImageCms.createProfile("sRGB"), outputMode=frame.mode
            )
            if converted is not None:  # None only when converting in place
                frame = converted
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: keep the pixels as they are
    frame.info.pop("icc_profile", None)
    return frame


def _fit(frame: Image.Image, max_width: int) -> Image.Image:
    if frame.width <= max_width:
        return frame
    height = max(1, round(frame.height * max_width / frame.width))
    return frame.resize((max_width, height), Image.Resampling.LANCZOS)


def process(raw: bytes) -> Processed:
    """The upload re-encoded without metadata; raises ImageRefused."""
    max_bytes, max_pixels, max_width = _limits()
    if len(raw) > max_bytes:
        raise ImageRefused(
            f"the file is {len(raw) / 1024**2:.1f} MB; at most {max_bytes / 1024**2:g} MB"
        )
    if not raw:
        raise ImageRefused("the file is empty")
    try:
        image = Image.open(io.BytesIO(raw))
        kind = image.format
        if kind not in ALLOWED:
            raise ImageRefused("only JPEG, PNG, GIF and WebP pictures can be used")
        if image.width * image.height > max_pixels:
            raise ImageRefused(
                f"the picture is {image.width}×{image.height} pixels; at most "
                f"{max_pixels / 1e6:g} million pixels"
            )
        if kind == "GIF" and getattr(image, "n_frames", 1) > 1:
            return _animated_gif(image, max_width)
        image.load()
    except ImageRefused:
        raise
    except Image.DecompressionBombError:
        # Pillow's own guard, for pictures far over ours, fires before the size is known.
        raise ImageRefused(
            f"the picture has far too many pixels; at most {max_pixels / 1e6:g} million pixels"
        ) from None
    except UnidentifiedImageError:
        raise ImageRefused("this is not a picture tidings can read") from None
    except (OSError, SyntaxError, ValueError):
        raise ImageRefused("the picture is damaged or incomplete") from None

    frame = ImageOps.exif_transpose(image)  # turn it upright, as EXIF said
    frame = _to_srgb(frame)
    frame = _bare(_fit(frame, max_width))
    out = io.BytesIO()
    if kind == "JPEG" or (kind == "WEBP" and not _has_alpha(frame)):
        if frame.mode not in ("RGB", "L"):
            frame = frame.convert("RGB")
        # No exif=, icc_profile= or comment=: Pillow then writes none.
        frame.save(out, "JPEG", quality=85, optimize=True, progressive=True)
        content_type = "image/jpeg"
    elif kind == "GIF":
        frame.save(out, "GIF", optimize=True)
        content_type = "image/gif"
    else:  # PNG, and WebP with transparency
        if frame.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            frame = frame.convert("RGBA")
        frame.save(out, "PNG", optimize=True)  # no pnginfo=: no text chunks
        content_type = "image/png"
    return Processed(out.getvalue(), content_type, frame.width, frame.height)


_KEPT_INFO = frozenset({"transparency", "duration", "loop", "background"})


def _bare(frame: Image.Image) -> Image.Image:
    """The frame with no metadata left in ``info`` (Pillow copies some of it when saving: a
    GIF's comment, a PNG's colour profile)."""
    for key in list(frame.info):
        if key not in _KEPT_INFO:
            del frame.info[key]
    return frame


def _has_alpha(frame: Image.Image) -> bool:
    return frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info


def _animated_gif(image: Image.Image, max_width: int) -> Processed:
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100))
        frames.append(_bare(_fit(frame.convert("RGBA"), max_width)))
    if len(frames) > 500:
        raise ImageRefused("the animation has more than 500 frames")
    out = io.BytesIO()
    frames[0].save(
        out,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=image.info.get("loop", 0),
        disposal=2,
        optimize=True,
    )
    return Processed(out.getvalue(), "image/gif", frames[0].width, frames[0].height)
