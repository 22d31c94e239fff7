"""Login, set-password links and the administrators' area for user accounts.

Views that touch patient records live in portal.administration (accounts imports no
clinical app). Every change goes through accounts.services, which writes the audit row.
"""
from __future__ import annotations

from datetime import datetime, time
from typing import Callable

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.forms import Form
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit, services
from accounts.decorators import guarded_view
from accounts.forms import (
    AuditFilterForm,
    EmailAuthenticationForm,
    StaffAccountForm,
    UserFilterForm,
)
from accounts.models import AuditEvent, User


def login_view(request: HttpRequest) -> HttpResponse:
    # LoginView rotates the session key on login (django.contrib.auth.login does it).
    return auth_views.LoginView.as_view(
        template_name="accounts/login.html",
        authentication_form=EmailAuthenticationForm,
        redirect_authenticated_user=True,
    )(request)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The invitation / reset link: choose a password (Django's one-time token)."""

    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("accounts:login")
    post_reset_login = False

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.record("account.password_set", request=self.request, actor=form.user, obj=form.user)
        messages.success(self.request, _("Your password is set. You can log in now."))
        return response


set_password_view = SetPasswordView.as_view()


def require_administrator(user) -> None:
    if not (user.is_authenticated and user.is_active and user.is_administrator):
        raise Http404


def admin_view(*methods: str) -> Callable:
    return guarded_view(require_administrator, *methods)


def _page(request: HttpRequest, queryset, per_page: int = 50):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


@admin_view("GET")
def admin_home(request: HttpRequest) -> HttpResponse:
    """The user list with filters; the starting point of every administration task."""
    form = UserFilterForm(request.GET or None)
    users = User.objects.order_by("email")
    if form.is_valid():
        if q := form.cleaned_data["q"].strip():
            users = users.filter(Q(email__icontains=q) | Q(full_name__icontains=q))
        if role := form.cleaned_data["role"]:
            users = users.filter(role=role)
        if active := form.cleaned_data["active"]:
            users = users.filter(is_active=active == "1")
    return render(request, "accounts/admin_home.html", {"form": form, "page": _page(request, users)})


def create_account_from_form(
    request: HttpRequest, form: Form, create: Callable[[], User], *, invited_message: str, created_message: str
) -> User | None:
    """The end of both new-account forms (staff account, patient account): run `create`; when it
    refuses (AccountError) put the reason on the form and return None. Otherwise send the
    invitation when the form asked for it, tell the administrator which of the two messages
    (each with %(email)s) applies, and return the new account."""
    try:
        user = create()
    except services.AccountError as exc:
        form.add_error(None, str(exc))
        return None
    invited = services.invite_if(user, form.cleaned_data["send_invitation"], request=request)
    messages.success(request, (invited_message if invited else created_message) % {"email": user.email})
    return user


@admin_view("GET", "POST")
def user_create(request: HttpRequest) -> HttpResponse:
    form = StaffAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = create_account_from_form(
            request, form,
            lambda: services.create_account(
                email=form.cleaned_data["email"], full_name=form.cleaned_data["full_name"],
                role=form.cleaned_data["role"], request=request,
            ),
            invited_message=_("Account created and invitation sent to %(email)s."),
            created_message=_("Account created for %(email)s."),
        )
        if user is not None:
            return redirect("accounts:user_detail", pk=user.pk)
    return render(request, "accounts/user_form.html", {"form": form})


@admin_view("GET")
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(User, pk=pk)
    recent = AuditEvent.objects.filter(Q(actor=target) | Q(object_type="accounts.user", object_id=str(target.pk)))[:20]
    return render(request, "accounts/user_detail.html", {"target": target, "recent": recent})


def _user_action(request: HttpRequest, pk: int, action, done_message: str) -> HttpResponse:
    target = get_object_or_404(User, pk=pk)
    try:
        action(target, request=request)
    except services.AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done_message % {"email": target.email})
    return redirect("accounts:user_detail", pk=target.pk)


@admin_view("POST")
def user_send_link(request: HttpRequest, pk: int) -> HttpResponse:
    return _user_action(request, pk, services.send_set_password_link, _("A set-password link was sent to %(email)s."))


@admin_view("POST")
def user_reset_password(request: HttpRequest, pk: int) -> HttpResponse:
    return _user_action(
        request, pk, services.reset_password,
        _("The password of %(email)s no longer works; a link to choose a new one was sent."),
    )


@admin_view("POST")
def user_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _user_action(request, pk, services.deactivate, _("%(email)s is deactivated and logged out everywhere."))


@admin_view("POST")
def user_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _user_action(request, pk, services.reactivate, _("%(email)s is active again."))


@admin_view("GET")
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.all()
    if form.is_valid():
        data = form.cleaned_data
        if data["actor"]:
            events = events.filter(actor_email__icontains=data["actor"].strip())
        if data["action"]:
            events = events.filter(action__icontains=data["action"].strip())
        if data["object_type"]:
            events = events.filter(object_type=data["object_type"].strip())
        if data["object_id"]:
            events = events.filter(object_id=data["object_id"].strip())
        if data["patient"].strip():
            events = events.filter(patient_id__in=audit.patient_ids_matching(data["patient"]))
        tz = timezone.get_current_timezone()
        if data["date_from"]:
            events = events.filter(at__gte=datetime.combine(data["date_from"], time.min, tzinfo=tz))
        if data["date_to"]:
            events = events.filter(at__lte=datetime.combine(data["date_to"], time.max, tzinfo=tz))
    actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    return render(request, "accounts/audit_log.html", {"form": form, "page": _page(request, events), "actions": actions})
