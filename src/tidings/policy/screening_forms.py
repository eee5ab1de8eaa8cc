"""Screening in a public form: tell the person what was taken out, keep the rest of their text.

A view calls :func:`screen_field` after ``form.is_valid()``.  When the field holds
special-category data, the form gets an error on that field naming what was taken out (the
category in plain words and the person's own words, quoted) and the field's value becomes the
text without those parts, so the page shows the rest of what they typed; the view re-renders
the form and stores nothing.  When they send the form again, the text is clean.

The removed words go back to the person in that one response (marked ``no-store`` by
:func:`no_store`) and nowhere else: not into the database, a log line or an exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.cache import add_never_cache_headers

from .screening import review_text, warm_up

__all__ = ["no_store", "screen_field", "warm_up"]

if TYPE_CHECKING:
    from django import forms
    from django.http import HttpResponse

    from .schema import Policy


def screen_field(form: forms.Form, name: str, policy: Policy | None = None) -> bool:
    """Take special-category content out of a validated form's free-text field.

    Returns True when something was taken out: the form then carries an error on ``name`` and
    the field holds the rest of the text.  ``policy`` defaults to the installation's.
    """
    review = review_text(form.cleaned_data.get(name) or "", policy)
    if not review.removals:
        return False
    data = form.data.copy()  # type: ignore[attr-defined]  # a bound form's QueryDict or dict
    data[name] = review.kept
    form.data = data
    form.add_error(name, review.message())
    return True


def no_store(response: HttpResponse) -> HttpResponse:
    """A page that may show a person's own words back to them is not kept by any cache."""
    add_never_cache_headers(response)
    return response
