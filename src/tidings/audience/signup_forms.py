"""Sign-up forms: creating and changing them, with the rules their settings must keep."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from tidings.lib.audit import audit
from tidings.policy import get_policy

from .forms import offerable_channels, offerable_optional_fields
from .models import MailingList, SignupForm

SIGNUP_FORM_FIELDS = (
    "name",
    "slug",
    "optional_fields",
    "channels",
    "intro",
    "consent_wording",
    "thank_you",
    "redirect_url",
    "is_active",
)


class SignupFormInvalid(ValueError):
    """The settings of a sign-up form break a rule; ``problems`` says which, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _signup_form_problems(
    values: Mapping[str, Any], lists: list[MailingList], instance: SignupForm | None
) -> list[str]:
    policy = get_policy()
    problems = []
    if not str(values.get("name", "")).strip():
        problems.append("name: a form needs a name")
    slug = str(values.get("slug", ""))
    try:
        validate_slug(slug)
    except ValidationError:
        problems.append("slug: use letters, numbers, hyphens and underscores only")
    else:
        taken = SignupForm.objects.filter(slug=slug)
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            problems.append(f'slug: another form already uses "{slug}"')
    if not lists:
        problems.append("lists: a form needs at least one list")
    optional = list(values.get("optional_fields") or [])
    offerable = offerable_optional_fields(policy)
    for name in optional:
        if name not in offerable:
            problems.append(
                f'optional_fields: the policy\'s newsletter purpose cannot collect "{name}" '
                f"on a form (it can: {', '.join(offerable) or 'nothing optional'})"
            )
    channels = offerable_channels(policy, optional)
    for channel in values.get("channels") or []:
        if channel not in channels:
            problems.append(
                f'channels: "{channel}" cannot be asked on this form (a channel must be in the '
                "policy's marketing channels, and the form must collect where to reach people)"
            )
    redirect = str(values.get("redirect_url") or "")
    if redirect and not redirect.lower().startswith(("https://", "http://")):
        problems.append("redirect_url: must be an http(s) address")
    return problems


@transaction.atomic
def do_create_signup_form(
    *, actor: Any = None, lists: Iterable[MailingList], **values: Any
) -> SignupForm:
    """Create a sign-up form.  ``values`` are SignupForm fields (name, slug, optional_fields,
    channels, intro, consent_wording, thank_you, redirect_url, is_active).  Raises
    SignupFormInvalid."""
    unknown = set(values) - set(SIGNUP_FORM_FIELDS)
    if unknown:
        raise TypeError(f"not a sign-up form setting: {', '.join(sorted(unknown))}")
    lists = list(lists)
    problems = _signup_form_problems(values, lists, None)
    if problems:
        raise SignupFormInvalid(problems)
    signup_form = SignupForm.objects.create(**values)
    signup_form.lists.set(lists)
    audit("signup_form.created", actor=actor, obj=signup_form, lists=[ml.pk for ml in lists])
    return signup_form


@transaction.atomic
def do_update_signup_form(
    signup_form: SignupForm,
    *,
    actor: Any = None,
    lists: Iterable[MailingList] | None = None,
    **changes: Any,
) -> SignupForm:
    """Change some settings of a sign-up form (same names as do_create_signup_form)."""
    unknown = set(changes) - set(SIGNUP_FORM_FIELDS)
    if unknown:
        raise TypeError(f"not a sign-up form setting: {', '.join(sorted(unknown))}")
    values = {name: getattr(signup_form, name) for name in SIGNUP_FORM_FIELDS} | changes
    new_lists = list(lists) if lists is not None else list(signup_form.lists.all())
    problems = _signup_form_problems(values, new_lists, signup_form)
    if problems:
        raise SignupFormInvalid(problems)
    changed = [name for name, value in changes.items() if getattr(signup_form, name) != value]
    for name in changed:
        setattr(signup_form, name, changes[name])
    if changed:
        signup_form.save(update_fields=[*changed, "updated_at"])
    if lists is not None:
        before = set(signup_form.lists.values_list("pk", flat=True))
        if before != {ml.pk for ml in new_lists}:
            signup_form.lists.set(new_lists)
            changed.append("lists")
    if changed:
        audit("signup_form.updated", actor=actor, obj=signup_form, fields=changed)
    return signup_form
