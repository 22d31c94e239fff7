"""Clinical data: patient → study → series → slice, and who may see it.

The models around a study live beside this module, each with its own concern, and are
imported here so the app registry finds them: the AI's results (scans.predictions), the
radiologist's report versions and notes (scans.reviews), patient explanations
(scans.explanations) and the processing jobs that move a study along (scans.jobs). The class
codes they share are in scans.findings.

Invariants live in the database as constraints, so a bug in a form or a task cannot
store a state the portal does not understand.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Self, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scans.findings import UNASSESSABLE

# The app's other models: imported so the app registry finds them and every model of the app
# is importable from here.
from scans.explanations import PatientExplanation  # noqa: F401
from scans.jobs import Job  # noqa: F401
from scans.predictions import Prediction, SlicePrediction  # noqa: F401
from scans.reviews import ClinicalNote, Review  # noqa: F401

SHA256_REGEX = r"^[0-9a-f]{64}$"

_Row = TypeVar("_Row", bound=models.Model)


class PatientDataQuerySet(models.QuerySet[_Row]):
    """Rows of patient data and the one rule of who may see them: clinical staff every row, a
    patient account what `seen_by_patient` allows of its own record, anyone else (signed out,
    deactivated) nothing."""

    def visible_to(self, user: Any) -> Self:
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_clinical_staff:
            return self
        return self.seen_by_patient(user)

    def seen_by_patient(self, user: Any) -> Self:
        raise NotImplementedError


# --- Patient ---------------------------------------------------------------------------------


class PatientQuerySet(PatientDataQuerySet["Patient"]):
    def seen_by_patient(self, user: Any) -> "PatientQuerySet":
        return self.filter(user=user)


class Patient(models.Model):
    mrn = models.CharField(_("MRN"), max_length=64, unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=16, blank=True)
    # A patient account sees exactly this record; a record may exist without an account.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patient_record",
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["mrn"]
        constraints = [models.CheckConstraint(condition=~Q(mrn=""), name="patient_mrn_not_empty")]

    def __str__(self) -> str:
        return f"{self.mrn} {self.full_name}".strip()


# --- Study -----------------------------------------------------------------------------------


# DICOM Modality codes in words, for patients and titles.
MODALITY_NAMES = {"MR": _("MRI"), "CT": _("CT"), "PT": _("PET"), "US": _("Ultrasound"), "CR": _("X-ray"),
                  "DX": _("X-ray"), "OT": _("Uploaded images")}


class StudyStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSING = "processing", _("Processing")
    AWAITING_REVIEW = "awaiting_review", _("Awaiting review")
    SIGNED = "signed", _("Signed")
    AMENDED = "amended", _("Amended")
    # Images arrived for a released study: they are held as an addendum (classified, shown to
    # radiologists, never to the patient) until an amendment covering them is signed. The
    # patient keeps reading the latest signed version meanwhile.
    NEW_IMAGES = "new_images", _("New images after sign-off")
    FAILED = "failed", _("Failed")


# Which status may follow which. Re-processing (e.g. a new series added) may send a study
# back to PROCESSING before sign-off; after it, a signed report changes only through an
# amendment, and new images hold the study in NEW_IMAGES until one is signed.
STUDY_TRANSITIONS: dict[str, set[str]] = {
    StudyStatus.RECEIVED: {StudyStatus.PROCESSING, StudyStatus.FAILED},
    StudyStatus.PROCESSING: {StudyStatus.AWAITING_REVIEW, StudyStatus.FAILED, StudyStatus.PROCESSING},
    StudyStatus.AWAITING_REVIEW: {StudyStatus.SIGNED, StudyStatus.PROCESSING},
    StudyStatus.SIGNED: {StudyStatus.AMENDED, StudyStatus.NEW_IMAGES},
    StudyStatus.AMENDED: {StudyStatus.AMENDED, StudyStatus.NEW_IMAGES},
    StudyStatus.NEW_IMAGES: {StudyStatus.NEW_IMAGES, StudyStatus.AMENDED},
    StudyStatus.FAILED: {StudyStatus.PROCESSING, StudyStatus.AWAITING_REVIEW},
}
# A radiologist has signed a version the patient may read (the latest signed one).
RELEASED_STATUSES = (StudyStatus.SIGNED, StudyStatus.AMENDED, StudyStatus.NEW_IMAGES)
# What the worklist's "To review" tab lists.
NEEDS_REVIEW_STATUSES = (StudyStatus.AWAITING_REVIEW, StudyStatus.NEW_IMAGES)


class InvalidTransition(Exception):
    pass


class StudyQuerySet(PatientDataQuerySet["Study"]):
    def seen_by_patient(self, user: Any) -> "StudyQuerySet":
        """Patients see their own studies, and only once a radiologist has signed them."""
        return self.filter(patient__user=user).released()

    def released(self) -> "StudyQuerySet":
        return self.filter(status__in=RELEASED_STATUSES)

    def needs_review(self) -> "StudyQuerySet":
        """Awaiting a first sign-off, or holding new images after sign-off."""
        return self.filter(status__in=NEEDS_REVIEW_STATUSES)

    def awaiting_review(self) -> "StudyQuerySet":
        return self.filter(status=StudyStatus.AWAITING_REVIEW)

    def in_progress(self) -> "StudyQuerySet":
        return self.filter(status__in=[StudyStatus.RECEIVED, StudyStatus.PROCESSING])


class Study(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_instance_uid = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    study_date = models.DateField(null=True, blank=True)
    modality = models.CharField(max_length=16, blank=True, default="MR")
    accession_number = models.CharField(max_length=64, blank=True)
    # From the DICOM header (BodyPartExamined, InstitutionName); empty for JPEG/PNG uploads.
    body_part = models.CharField(max_length=64, blank=True)
    institution = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=StudyStatus.choices, default=StudyStatus.RECEIVED)
    status_detail = models.CharField(max_length=500, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # True when a patient uploaded their own outside scan.
    patient_submitted = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in StudyStatus]), name="study_status_valid"
            ),
            models.CheckConstraint(condition=~Q(study_instance_uid=""), name="study_uid_not_empty"),
        ]

    def __str__(self) -> str:
        return f"Study {self.study_instance_uid}"

    @property
    def is_released(self) -> bool:
        return self.status in RELEASED_STATUSES

    def new_images_after_sign_off(self) -> "models.QuerySet[Slice]":
        """Slices stored after the latest signed version: an addendum no signed version covers."""
        review = self.latest_review()
        if review is None:
            return Slice.objects.none()
        return Slice.objects.filter(series__study=self, created_at__gt=review.signed_at)

    @property
    def scan_date(self) -> date:
        """The day of the scan: the DICOM StudyDate, else the day it was stored."""
        return self.study_date or timezone.localdate(self.created_at)

    @property
    def modality_name(self) -> str:
        return str(MODALITY_NAMES.get(self.modality, self.modality or _("Scan")))

    @property
    def body_part_name(self) -> str:
        """BodyPartExamined in words ("HEAD_NECK" → "head neck"); empty when unknown."""
        return self.body_part.replace("_", " ").lower()

    def previous_study(self) -> "Study | None":
        """The patient's study scanned before this one (the viewer compares the two)."""
        day = Coalesce("study_date", TruncDate("created_at"))
        earlier = Study.objects.filter(patient_id=self.patient_id).exclude(pk=self.pk).annotate(day=day)
        mine = self.scan_date
        earlier = earlier.filter(Q(day__lt=mine) | Q(day=mine, created_at__lt=self.created_at))
        return earlier.order_by("-day", "-created_at", "-pk").first()

    def transition_to(self, new_status: str, detail: str = "") -> None:
        """Move to `new_status` if the state machine allows it, and save."""
        if new_status != self.status and new_status not in STUDY_TRANSITIONS[self.status]:
            raise InvalidTransition(f"Study cannot go from {self.status} to {new_status}.")
        self.status = new_status
        self.status_detail = detail[:500]
        self.save(update_fields=["status", "status_detail", "updated_at"])

    def latest_review(self) -> "Review | None":
        """The latest signed version of the report: the one the patient sees."""
        return self.reviews.signed().first()

    def primary_prediction(self) -> "Prediction | None":
        """The AI result the study is reviewed against (see PredictionQuerySet.primary)."""
        return Prediction.objects.filter(series__study=self).primary().first()


# --- Series and slices -----------------------------------------------------------------------


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64, unique=True)
    series_number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    modality = models.CharField(max_length=16, blank=True, default="MR")
    # Set at import from the DICOM header (scans.scope.assess): why the AI must not label this
    # series ("outside the model's scope: modality CT"). Empty: in scope as far as the header tells.
    scope_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["series_number", "id"]
        verbose_name_plural = "series"
        constraints = [models.CheckConstraint(condition=~Q(series_instance_uid=""), name="series_uid_not_empty")]

    def __str__(self) -> str:
        return f"Series {self.series_instance_uid}"

    def ordered_slices(self) -> models.QuerySet["Slice"]:
        return self.slices.order_by("order_index", "id")

    def needs_classification(self, model_version: str | None) -> bool:
        """No prediction covers every slice the series holds now (by this model version, when
        known): a new series, or one that grew after it was classified."""
        done = self.predictions.filter(slice_count=self.slices.count())
        if model_version:
            done = done.filter(model_version=model_version)
        return not done.exists()


class SourceFormat(models.TextChoices):
    DICOM = "dicom", "DICOM"
    JPEG = "jpeg", "JPEG"
    PNG = "png", "PNG"


class SliceQuerySet(PatientDataQuerySet["Slice"]):
    def seen_by_patient(self, user: Any) -> "SliceQuerySet":
        """The slices of the patient's released studies that the latest signed version covers
        (stored before it was signed), and none at all when that version says the images could
        not be assessed."""
        visible = self.filter(series__study__in=Study.objects.seen_by_patient(user))
        latest = Review.objects.signed().filter(study=OuterRef("series__study"))
        return (
            visible.annotate(
                signed_at=Subquery(latest.values("signed_at")[:1]), signed_finding=Subquery(latest.values("final_class")[:1])
            )
            .filter(created_at__lte=F("signed_at"))
            .exclude(signed_finding=UNASSESSABLE)
        )


class Slice(models.Model):
    """One stored image instance (one frame of a multi-frame object is one slice)."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="slices")
    sop_instance_uid = models.CharField(max_length=80, unique=True)
    file = models.FileField(upload_to="scans/%Y/%m/%d", max_length=255)
    sha256 = models.CharField(max_length=64)
    source_format = models.CharField(max_length=8, choices=SourceFormat.choices)
    original_filename = models.CharField(max_length=255, blank=True)
    frame_index = models.PositiveIntegerField(default=0)
    instance_number = models.IntegerField(null=True, blank=True)
    # Position along the slice normal (mm) when the geometry is known.
    slice_location = models.FloatField(null=True, blank=True)
    order_index = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = SliceQuerySet.as_manager()

    class Meta:
        ordering = ["order_index", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(sha256__regex=SHA256_REGEX), name="slice_sha256_hex"),
            models.CheckConstraint(condition=Q(rows__gt=0) & Q(columns__gt=0), name="slice_dimensions_positive"),
            models.CheckConstraint(condition=~Q(sop_instance_uid=""), name="slice_uid_not_empty"),
        ]

    def __str__(self) -> str:
        return f"Slice {self.sop_instance_uid}"
