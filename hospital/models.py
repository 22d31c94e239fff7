"""Remote DICOM nodes, the studies that arrived for no known patient, and the record of
every result sent to a PACS (each send is a scans.Job of kind "send" plus one DicomSend)."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scans.models import Job, Patient, Review, Study

AE_TITLE = RegexValidator(r"^[\x21-\x5b\x5d-\x7e][\x20-\x5b\x5d-\x7e]{0,15}$", _("1-16 printable ASCII characters, no backslash."))


class RemoteNodeQuerySet(models.QuerySet["RemoteNode"]):
    def destinations(self) -> "RemoteNodeQuerySet":
        return self.filter(enabled=True, receives_results=True)


class RemoteNode(models.Model):
    """A PACS or modality the portal talks to. `receives_results`: signed reports are sent
    there. `may_send`: it may store images to the listener (besides DICOM_ALLOWED_CALLERS)."""

    name = models.CharField(max_length=100)
    ae_title = models.CharField(_("AE title"), max_length=16, validators=[AE_TITLE])
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    receives_results = models.BooleanField(default=True)
    may_send = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = RemoteNodeQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["ae_title", "host", "port"], name="remote_node_unique_address")]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"


class UnmatchedState(models.TextChoices):
    PENDING = "pending", _("Waiting for an administrator")
    FILED = "filed", _("Filed")
    REJECTED = "rejected", _("Rejected")


class UnmatchedStudy(models.Model):
    """Instances received over DICOM whose PatientID matches no patient record. They wait
    here until an administrator creates a record from the header, links them to an existing
    record, or rejects them; the portal never guesses."""

    patient_id = models.CharField(max_length=64, blank=True)
    study_instance_uid = models.CharField(max_length=64)
    patient_name = models.CharField(max_length=200, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=16, blank=True)
    study_description = models.CharField(max_length=200, blank=True)
    study_date = models.DateField(null=True, blank=True)
    calling_ae = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=10, choices=UnmatchedState.choices, default=UnmatchedState.PENDING)
    filed_patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    filed_study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["study_instance_uid"], condition=Q(state="pending"),
                                    name="unmatched_one_pending_per_study"),
        ]

    def __str__(self) -> str:
        return f"Unmatched study {self.study_instance_uid} (PatientID {self.patient_id or '(empty)'})"


class UnmatchedInstance(models.Model):
    unmatched = models.ForeignKey(UnmatchedStudy, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=80)
    file = models.FileField(max_length=255)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["unmatched", "sop_instance_uid"], name="unmatched_instance_once")]


class SendObject(models.TextChoices):
    SR = "sr", _("Structured report")
    SC = "sc", _("Key image (secondary capture)")


class DicomSend(models.Model):
    """What one send job delivers: the object built once (so every retry sends the same
    SOP instance) and where it goes. Its state, attempts and error live on the job."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="dicom_send")
    node = models.ForeignKey(RemoteNode, on_delete=models.PROTECT, related_name="sends")
    review = models.ForeignKey(Review, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    what = models.CharField(max_length=4, choices=SendObject.choices)
    preliminary = models.BooleanField(default=False)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    file = models.FileField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(preliminary=True) | Q(review__isnull=False), name="dicom_send_final_has_review"),
        ]

    def __str__(self) -> str:
        return f"{self.get_what_display()} of study {self.job.study_id} to {self.node.ae_title}"
