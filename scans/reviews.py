"""The radiologist's side of a study: the versions of the signed report (Review; an amendment
is a new version, the old ones are kept) and the append-only clinical notes."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scans.findings import FINDING_CHOICES, TUMOUR_CLASSES, UNASSESSABLE
from scans.predictions import Prediction


class ReviewDecision(models.TextChoices):
    CONFIRM = "confirm", _("Confirm AI result")
    OVERRIDE = "override", _("Override AI result")
    UNASSESSABLE = "unassessable", _("Images cannot be assessed")


class UnassessableReason(models.TextChoices):
    """Why the images of a study cannot be assessed (a reason text is required as well)."""

    NON_DIAGNOSTIC = "non_diagnostic", _("Non-diagnostic images (quality, artefacts, coverage)")
    NOT_BRAIN_MRI = "not_brain_mri", _("Not a brain MRI")
    WRONG_IMAGES = "wrong_images", _("Wrong patient or wrong images")


class ReviewQuerySet(models.QuerySet["Review"]):
    def signed(self) -> "ReviewQuerySet":
        """Signed versions, the latest first: `.first()` is the latest signed review, the one
        the patient reads."""
        return self.filter(signed_at__isnull=False).order_by("-version")


class Review(models.Model):
    """A version of the radiologist's report. Version 1 is the first sign-off; every
    amendment is a new row, and the old versions are kept untouched."""

    study = models.ForeignKey("scans.Study", on_delete=models.PROTECT, related_name="reviews")
    version = models.PositiveIntegerField(default=1)
    prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews")
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices)
    # A tumour class, or UNASSESSABLE exactly when the decision is UNASSESSABLE.
    final_class = models.CharField(max_length=16, choices=FINDING_CHOICES)
    unassessable_reason = models.CharField(max_length=16, blank=True, choices=UnassessableReason.choices)
    reason = models.TextField(blank=True)
    report_text = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    signed_at = models.DateTimeField(null=True, blank=True)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["study", "version"]
        constraints = [
            models.UniqueConstraint(fields=["study", "version"], name="review_unique_version"),
            models.UniqueConstraint(
                fields=["study"], condition=Q(signed_at__isnull=True), name="review_one_draft_per_study"
            ),
            models.CheckConstraint(
                condition=Q(decision="confirm") | ~Q(reason=""), name="review_override_needs_reason"
            ),
            models.CheckConstraint(
                condition=(
                    Q(decision__in=["confirm", "override"], final_class__in=TUMOUR_CLASSES, unassessable_reason="")
                    | Q(decision="unassessable", final_class=UNASSESSABLE,
                        unassessable_reason__in=[r.value for r in UnassessableReason])
                ),
                name="review_finding_matches_decision",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="review_version_positive"),
        ]

    def __str__(self) -> str:
        return f"Review v{self.version} of {self.study_id}: {self.final_class}"

    @property
    def is_amendment(self) -> bool:
        return self.version > 1

    @property
    def is_assessable(self) -> bool:
        """False when the radiologist signed that the images cannot be assessed: the patient
        then reads a plain message, never a tumour class, and sees no image."""
        return self.final_class != UNASSESSABLE

    @property
    def signed_by_name(self) -> str:
        """The signing radiologist as the patient's report names them."""
        return self.author.full_name or self.author.email


class AppendOnlyModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError(f"{type(self).__name__} rows are append-only.")


class ClinicalNote(AppendOnlyModel):
    study = models.ForeignKey("scans.Study", on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    text = models.TextField()
    # A note for the patient is shown on their report once it is signed.
    for_patient = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="note_text_not_empty")]
