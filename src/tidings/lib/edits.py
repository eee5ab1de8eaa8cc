"""Two operators editing one record: keep both edits, and say so when they collide.

A form opened by one operator and saved after another operator's save used to write back every
field as the first operator saw it, silently undoing the other's changes (a lost update).  An
edit form built with ``SeenValuesForm`` carries, hidden, the values its operator was shown
(Django's ``show_hidden_initial``); ``edits()`` then gives only the fields the operator changed
and what each read when the page was opened, and the action compares those with the row it has
locked (``conflicts()``).

A record saved as one body (a template, a draft campaign) cannot be merged field by field; it
carries the version it was opened at instead (``lib/stale.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError


class EditConflict(Exception):
    """Someone else changed these fields since the page was opened (names, never values)."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


class SeenValuesForm(forms.BaseForm):
    """Mixin for an edit form: renders what each field read as a hidden ``initial-<name>``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.carry_seen_values()

    def carry_seen_values(self) -> None:
        """Render every field's hidden copy (again, for a form that builds fields later)."""
        for field in self.fields.values():
            field.show_hidden_initial = True

    def _seen(self, name: str) -> tuple[bool, Any]:
        key = self.add_initial_prefix(name)
        if key not in self.data:
            return False, None  # posted without them (an older page, a script): not known
        field = self.fields[name]
        raw = field.hidden_widget().value_from_datadict(self.data, self.files, key)
        try:
            return True, field.to_python(raw)
        except ValidationError:
            return False, None

    def edits(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(values to write, what each of them read when the page was opened).  With the
        seen values posted: only the fields the operator changed; without: every field, and
        no check."""
        seen = {}
        for name in self.fields:
            known, value = self._seen(name)
            if known:
                seen[name] = value
        if len(seen) < len(self.fields):
            return {name: self.cleaned_data[name] for name in self.fields}, {}
        changed = self.changed_data
        return {name: self.cleaned_data[name] for name in changed}, {n: seen[n] for n in changed}

    def reopen(self, current: Mapping[str, Any]) -> None:
        """After a conflict: keep what the operator typed, but take ``current`` as what they
        have now seen, so saving again is a deliberate overwrite."""
        data = self.data.copy()  # type: ignore[attr-defined]  # a QueryDict: the form is bound
        for name in self.fields:
            data[self.add_initial_prefix(name)] = current.get(name, "")
        self.data = data


def conflicts(
    current: Mapping[str, Any], values: Mapping[str, Any], seen: Mapping[str, Any]
) -> list[str]:
    """The fields in ``values`` someone else changed since they read ``seen`` (and not to the
    same new value)."""
    return [
        name
        for name, value in values.items()
        if name in seen and current[name] != seen[name] and current[name] != value
    ]
