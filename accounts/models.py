"""Users (log in by e-mail, one role each) and the append-only audit trail."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PATIENT = "patient", _("Patient")
    RADIOLOGIST = "radiologist", _("Radiologist")
    ADMINISTRATOR = "administrator", _("Administrator")


def normalise_email(email: str) -> str:
    """The one form an e-mail address is stored and compared in: trimmed, lower-cased."""
    return BaseUserManager.normalize_email(str(email or "").strip()).lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "User":
        # Log-in (page, token endpoint, Django admin) finds the account whatever the case.
        return self.get(email__iexact=normalise_email(username or ""))

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=normalise_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("role", Role.ADMINISTRATOR)
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)

    def clinicians(self) -> models.QuerySet["User"]:
        return self.filter(role=Role.RADIOLOGIST, is_active=True)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(_("e-mail address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PATIENT)
    is_active = models.BooleanField(default=True)
    # Django admin access; the portal's own admin area is gated by role instead.
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            # One account per address whatever its case (the login looks it up that way).
            models.UniqueConstraint(Lower("email"), name="user_email_lower_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="user_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalise_email(self.email)

    @property
    def is_patient(self) -> bool:
        return self.role == Role.PATIENT

    @property
    def is_radiologist(self) -> bool:
        return self.role == Role.RADIOLOGIST

    @property
    def is_administrator(self) -> bool:
        return self.role == Role.ADMINISTRATOR

    @property
    def is_clinical_staff(self) -> bool:
        """Radiologists and administrators may see every study of the site."""
        return self.role in (Role.RADIOLOGIST, Role.ADMINISTRATOR)

    @property
    def may_report(self) -> bool:
        """THE reporting permission: sign, amend, decide "cannot be assessed", write notes and
        request patient explanations. Only an active radiologist; administrators manage
        accounts and never write clinical content. Every view, API endpoint, service and
        template asks this property (see scans.access.require_reporter)."""
        return self.is_active and self.role == Role.RADIOLOGIST


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_object(self, object_type: str, object_id: object) -> "AuditEventQuerySet":
        return self.filter(object_type=object_type, object_id=str(object_id))

    def update(self, **kwargs: Any) -> int:  # noqa: D102
        raise PermissionError("Audit events are append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:  # noqa: D102
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One row per access or change. Append-only: the ORM refuses to change or delete a row,
    and on PostgreSQL a trigger refuses it too (see migration 0002)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # PROTECT: users with history are deactivated, never deleted, so the trail stays whole.
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_email} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit events are append-only.")


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def live(self) -> "ApiTokenQuerySet":
        """Not expired. (A token also dies with a password change or deactivation:
        ApiToken.is_valid checks those, which need the user row.)"""
        return self.filter(expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """One named API token of one client (a script, an app, a PACS bridge) of one user.

    Only the SHA-256 of the key is stored; the key is shown once, when issued. A token works
    until it expires (API_TOKEN_LIFETIME_DAYS), is revoked (by its user, or with every other
    token at deactivation), or the user's password changes: it carries a stamp of the password
    hash it was issued under, as Django's sessions do."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters of the key, to tell tokens apart.")
    password_stamp = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user_id}"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user: "User", name: str, lifetime: timedelta) -> tuple["ApiToken", str]:
        """A new token; returns it with the key (the only time the key is known)."""
        key = secrets.token_urlsafe(32)
        now = timezone.now()
        token = cls.objects.create(
            user=user, name=name[:100], key_hash=cls.hash_key(key), prefix=key[:8],
            password_stamp=user.get_session_auth_hash(), created_at=now, expires_at=now + lifetime,
        )
        return token, key

    def is_valid(self) -> bool:
        return (
            self.expires_at > timezone.now()
            and self.user.is_active
            and self.user.has_usable_password()
            and constant_time_compare(self.password_stamp, self.user.get_session_auth_hash())
        )
