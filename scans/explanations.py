"""Plain-language explanations of a signed finding for the patient: drafted (offline or by a
remote provider), checked, and shown only once a radiologist approves them."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scans.findings import FINDING_CHOICES
from scans.reviews import Review


class ExplanationStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    APPROVED = "approved", _("Approved")
    SUPERSEDED = "superseded", _("Superseded")


class PatientExplanation(models.Model):
    study = models.ForeignKey("scans.Study", on_delete=models.CASCADE, related_name="explanations")
    review = models.ForeignKey(Review, null=True, blank=True, on_delete=models.SET_NULL, related_name="explanations")
    final_class = models.CharField(max_length=16, choices=FINDING_CHOICES, blank=True)
    language = models.CharField(max_length=10, default="en")
    text = models.TextField()
    provider = models.CharField(max_length=20)  # offline | gemini | openai
    model = models.CharField(max_length=100, blank=True)
    # The remote provider failed or its text failed the checks, so the offline text was used.
    fell_back = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    flag_reason = models.CharField(max_length=500, blank=True)
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=12, choices=ExplanationStatus.choices, default=ExplanationStatus.DRAFT)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="approved") | (Q(approved_at__isnull=False) & Q(review__isnull=False)),
                name="explanation_approved_has_review",
            ),
        ]
