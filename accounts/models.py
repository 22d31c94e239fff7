"""Users (log in by e-mail, one role each) and the append-only audit trail."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PATIENT = "patient", _("Patient")
    RADIOLOGIST = "radiologist", _("Radiologist")
    ADMINISTRATOR = "administrator", _("Administrator")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
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
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="user_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

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
