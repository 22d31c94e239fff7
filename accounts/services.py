"""User administration as service functions: the views (accounts and portal.administration)
call these, and each one writes its audit row."""
from __future__ import annotations

from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from accounts import audit
from accounts.tokens import revoke_all
from accounts.models import Role, User, normalise_email


class AccountError(Exception):
    """A request the administrator can correct (shown as a form error)."""


def create_account(*, email: str, full_name: str, role: str, request: HttpRequest | None = None) -> User:
    email = normalise_email(email)
    if role not in Role.values:
        raise AccountError(_("Unknown role."))
    if User.objects.filter(email__iexact=email).exists():
        raise AccountError(_("An account with this e-mail address already exists."))
    with transaction.atomic():
        # No password until the person sets one through the invitation link.
        user = User.objects.create_user(
            email=email, password=None, full_name=full_name.strip(), role=role, is_staff=role == Role.ADMINISTRATOR
        )
        audit.record("admin.user.create", request=request, obj=user, email_created=user.email, role_created=role)
    return user


def set_password_url(user: User, request: HttpRequest | None = None) -> str:
    path = reverse(
        "accounts:set_password",
        kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user)},
    )
    return request.build_absolute_uri(path) if request is not None else path


def invite_if(user: User, invite: bool, *, request: HttpRequest | None = None) -> bool:
    """A new account's invitation (the set-password link), when the administrator asked for
    it on either form (staff account, patient account). Returns whether it was sent."""
    if invite:
        send_set_password_link(user, request=request)
    return invite


def send_set_password_link(user: User, *, request: HttpRequest | None = None, reason: str = "invitation") -> None:
    """E-mail a one-time link to choose a password. It stops working once used, once the
    password changes otherwise, or after PASSWORD_RESET_TIMEOUT."""
    if not user.is_active:
        raise AccountError(_("This account is deactivated; reactivate it first."))
    url = set_password_url(user, request)
    if reason == "invitation":
        subject = _("Your Brain MRI portal account")
        intro = _("An account has been created for you on the Brain MRI portal.")
    else:
        subject = _("Reset your Brain MRI portal password")
        intro = _("An administrator has reset your password on the Brain MRI portal.")
    body = "\n\n".join([
        _("Hello %(name)s,") % {"name": user.full_name or user.email},
        intro,
        _("Choose your password here (the link works once):"),
        url,
        _("If you did not expect this message, contact the hospital."),
    ])
    send_mail(subject, body, None, [user.email])
    audit.record("admin.user.set_password_link", request=request, obj=user, reason=reason)


def end_sessions(user: User) -> int:
    """Delete every database session of this user (and their API tokens)."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            ended += 1
    revoke_all(user)
    return ended


def reset_password(user: User, *, request: HttpRequest | None = None) -> None:
    """The old password stops working at once, every session ends, and the person gets a
    link to choose a new one."""
    with transaction.atomic():
        user.set_unusable_password()
        user.save(update_fields=["password"])
        ended = end_sessions(user)
        audit.record("admin.user.password_reset", request=request, obj=user, sessions_ended=ended)
    send_set_password_link(user, request=request, reason="reset")


def deactivate(user: User, *, request: HttpRequest | None = None) -> None:
    if request is not None and request.user.pk == user.pk:
        raise AccountError(_("You cannot deactivate your own account."))
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        ended = end_sessions(user)
        audit.record("admin.user.deactivate", request=request, obj=user, sessions_ended=ended)


def reactivate(user: User, *, request: HttpRequest | None = None) -> None:
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit.record("admin.user.reactivate", request=request, obj=user)
