"""Operator pages of the CRM (under /crm/).

Every kind of record in ``kinds.KINDS`` has the same four pages, named after it:
``crm:<plural>`` (the list), ``crm:<singular>`` (a record), ``crm:<singular>-new`` and
``crm:<singular>-edit``.
"""

from django.urls import path

from . import views
from .kinds import KINDS

app_name = "crm"

urlpatterns = [path("", views.index, name="index")]
for _kind in KINDS.values():
    _args = {"kind": _kind.plural}
    urlpatterns += [
        path(f"{_kind.plural}/", views.record_list, _args, name=_kind.plural),
        path(f"{_kind.plural}/new/", views.record_new, _args, name=f"{_kind.singular}-new"),
        path(f"{_kind.plural}/<int:pk>/", views.record_detail, _args, name=_kind.singular),
        path(
            f"{_kind.plural}/<int:pk>/edit/",
            views.record_edit,
            _args,
            name=f"{_kind.singular}-edit",
        ),
    ]
urlpatterns += [
    path("enquiries/<int:pk>/contacted/", views.enquiry_contacted, name="enquiry-contacted"),
    path("<str:section>/<int:pk>/keep-longer/", views.extend, name="extend"),
]
