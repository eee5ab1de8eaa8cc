"""Colour contrast as WCAG 2.x defines it: relative luminance of sRGB colours and their ratio.

Hand-written because it is twenty lines of arithmetic from the standard, and no maintained
package we already depend on offers it (PyPI's ``wcag-contrast-ratio`` is the one dedicated
package; its last release, 0.9, dates from 2017, and it has no "nearest passing shade").
The sRGB transfer threshold is 0.04045 (IEC 61966-2-1); WCAG's text says 0.03928, a
difference that changes no 8-bit colour's result.
"""

from __future__ import annotations

import re

AA_TEXT = 4.5  # normal text (WCAG 2.x 1.4.3, level AA)
AA_LARGE = 3.0  # large text (24 px, or 18.66 px bold) and user-interface parts (1.4.11)
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def parse_hex(colour: str) -> tuple[int, int, int]:
    """ "#1f5fb8" (or "#15b", or without the #) as (r, g, b) 0-255; ValueError otherwise."""
    found = _HEX.fullmatch(colour.strip())
    if found is None:
        raise ValueError(f"not a colour in #rrggbb form: {colour!r}")
    digits = found.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """Relative luminance, 0 (black) to 1 (white)."""
    r, g, b = parse_hex(colour)
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(first: str, second: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05) with L1 the lighter: 1 (same) to 21 (black on white)."""
    a, b = luminance(first), luminance(second)
    lighter, darker = max(a, b), min(a, b)
    return (lighter + 0.05) / (darker + 0.05)


def readable_on(background: str, dark: str = "#000000", light: str = "#ffffff") -> str:
    """Whichever of ``dark`` and ``light`` contrasts more with ``background``."""
    return dark if contrast_ratio(dark, background) >= contrast_ratio(light, background) else light


def mix(first: str, second: str, amount: float) -> str:
    """``first`` moved ``amount`` (0-1) of the way to ``second``, as #rrggbb."""
    a, b = parse_hex(first), parse_hex(second)
    mixed = (round(x + (y - x) * amount) for x, y in zip(a, b, strict=True))
    return "#" + "".join(f"{v:02x}" for v in mixed)


def nearest_passing(colour: str, background: str, ratio: float = AA_TEXT) -> str:
    """The colour nearest to ``colour`` (darker on a light background, lighter on a dark one)
    that reaches ``ratio`` against ``background``."""
    target = "#000000" if luminance(background) > 0.18 else "#ffffff"
    for step in range(0, 101, 2):
        candidate = mix(colour, target, step / 100)
        if contrast_ratio(candidate, background) >= ratio:
            return candidate
    return target
