"""Login and the administrators' area."""
from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.forms import EmailAuthenticationForm


def login_view(request: HttpRequest) -> HttpResponse:
    # LoginView rotates the session key on login (django.contrib.auth.login does it).
    return auth_views.LoginView.as_view(
        template_name="accounts/login.html",
        authentication_form=EmailAuthenticationForm,
        redirect_authenticated_user=True,
    )(request)


def require_administrator(user) -> None:
    if not (user.is_authenticated and user.is_active and user.is_administrator):
        raise Http404


@login_required
def admin_home(request: HttpRequest) -> HttpResponse:
    require_administrator(request.user)
    return render(request, "accounts/admin_home.html", {})
