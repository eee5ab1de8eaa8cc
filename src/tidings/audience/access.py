"""Objects of the audience app for a view, or 404."""

from django.shortcuts import get_object_or_404

from .models import Contact, MailingList


def contact_or_404(contact_id: int) -> Contact:
    return get_object_or_404(Contact, pk=contact_id)


def list_or_404(list_id: int) -> MailingList:
    return get_object_or_404(MailingList, pk=list_id)
