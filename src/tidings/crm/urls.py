"""Operator pages of the CRM (under /crm/).

Every kind of record in ``kinds.KINDS`` has the same four pages, named after it:
``crm:<plural>`` (the list), ``crm:<singular>`` (a record), ``crm:<singular>-new`` and
``crm:<singular>-edit``; work (enquiries, support requests) has its actions besides.
"""

from django.urls import path

from . import views, work_views
from .kinds import KINDS

app_name = "crm"

urlpatterns = [
    path("", work_views.my_work, name="index"),
    path("preferences/", work_views.preferences, name="preferences"),
    path("mail/", work_views.inbound_list, name="inbound"),
    path("mail/<int:pk>/retry/", work_views.inbound_retry, name="inbound-retry"),
    path("mail/<int:pk>/open/", work_views.inbound_open, name="inbound-open"),
    path("mail/<int:pk>/message/", work_views.inbound_message, name="inbound-message"),
    path("attachments/<int:pk>/", work_views.attachment, name="attachment"),
]
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
    if _kind.work:
        _s = _kind.singular
        urlpatterns += [
            path(f"{_kind.plural}/bulk/", work_views.bulk, _args, name=f"{_kind.plural}-bulk"),
            path(
                f"{_kind.plural}/<int:pk>/work/", work_views.work_update, _args, name=f"{_s}-work"
            ),
            path(f"{_kind.plural}/<int:pk>/note/", work_views.add_note, _args, name=f"{_s}-note"),
            path(f"{_kind.plural}/<int:pk>/reply/", work_views.reply, _args, name=f"{_s}-reply"),
        ]
urlpatterns += [
    path(
        "support-requests/<int:pk>/accept/",
        work_views.held_decision,
        {"decision": "accept"},
        name="support-request-accept",
    ),
    path(
        "support-requests/<int:pk>/decline/",
        work_views.held_decision,
        {"decision": "decline"},
        name="support-request-decline",
    ),
    path("contracts/<int:pk>/licence/", work_views.licence_report, name="contract-licence"),
    path("enquiries/<int:pk>/contacted/", views.enquiry_contacted, name="enquiry-contacted"),
    path("<str:section>/<int:pk>/keep-longer/", views.extend, name="extend"),
]
