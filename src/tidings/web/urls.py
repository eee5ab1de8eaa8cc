from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path

from tidings.lib.urltokens import token_path

from . import account_views, operator_views, views

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("search/", views.search, name="search"),
    path("settings/branding/", views.branding, name="branding"),
    path("privacy-notice-reviewed/", views.notice_reviewed, name="notice-reviewed"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("settings/operators/", operator_views.operator_index, name="operators"),
    path("settings/operators/invite/", operator_views.operator_invite, name="operator-invite"),
    path(
        "settings/operators/<int:user_id>/role/", operator_views.operator_role, name="operator-role"
    ),
    path(
        "settings/operators/<int:user_id>/deactivate/",
        operator_views.operator_deactivate,
        name="operator-deactivate",
    ),
    path(
        "settings/operators/<int:user_id>/reactivate/",
        operator_views.operator_reactivate,
        name="operator-reactivate",
    ),
    path(
        "settings/operators/<int:user_id>/sign-out/",
        operator_views.operator_sign_out,
        name="operator-sign-out",
    ),
    path(
        "settings/operators/<int:user_id>/reset-two-factor/",
        operator_views.operator_reset_two_factor,
        name="operator-reset-two-factor",
    ),
]

# Sign-in pages live outside the "web" namespace so settings.LOGIN_URL = "login" resolves (and
# Django's password-reset views find their URL names).
auth_urlpatterns = [
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("login/code/", account_views.two_factor_verify, name="two-factor-verify"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "login/reset/",
        account_views.PasswordResetView.as_view(
            extra_email_context={"base_url": settings.TIDINGS_BASE_URL},
        ),
        name="password_reset",
    ),
    path(
        "login/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="web/password_reset_sent.html"),
        name="password_reset_done",
    ),
    token_path(
        "login/reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "login/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="web/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    token_path("join/<uidb64>/<token>/", account_views.join, name="operator-join"),
    path("account/", account_views.account, name="account"),
    path("account/two-factor/", account_views.two_factor_enrol, name="two-factor"),
    path("account/recovery-codes/", account_views.recovery_codes, name="recovery-codes"),
    path("account/password/", account_views.password_change, name="password-change"),
    path(
        "account/sign-out-everywhere/",
        account_views.sign_out_everywhere,
        name="sign-out-everywhere",
    ),
]
