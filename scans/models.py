"""Clinical data: patient → study → series → slice, AI predictions, reviews, notes,
patient explanations and the processing jobs that move a study along.

Invariants live in the database as constraints, so a bug in a form or a task cannot
store a state the portal does not understand.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SHA256_REGEX = r"^[0-9a-f]{64}$"


class TumourClass(models.TextChoices):
    GLIOMA = "glioma", _("Glioma")
    MENINGIOMA = "meningioma", _("Meningioma")
    NOTUMOR = "notumor", _("No tumour")
    PITUITARY = "pituitary", _("Pituitary tumour")


# scans may not import the ML core: tests/explanations/test_texts.py checks that this equals
# inference.data.CLASSES, the classifier's own list.
TUMOUR_CLASSES = tuple(TumourClass.values)


# A radiologist's finding that is no tumour class: the images could not be assessed
# (non-diagnostic, not a brain MRI, wrong patient or images). Never an AI label.
UNASSESSABLE = "unassessable"
FINDING_CHOICES = [*TumourClass.choices, (UNASSESSABLE, _("Images could not be assessed"))]


def class_label(code: str | None) -> str:
    """The one display mapping for class codes: "notumor" → "No tumour"; an empty code (the AI
    gave no class: outside its scope) → "No AI class"; a signed "unassessable" → "Images could
    not be assessed"."""
    if not code:
        return str(_("No AI class"))
    return str(dict(FINDING_CHOICES).get(code, code))


# --- Patient ---------------------------------------------------------------------------------


class PatientQuerySet(models.QuerySet["Patient"]):
    def visible_to(self, user: Any) -> "PatientQuerySet":
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_clinical_staff:
            return self
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


class StudyQuerySet(models.QuerySet["Study"]):
    def visible_to(self, user: Any) -> "StudyQuerySet":
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_clinical_staff:
            return self
        # Patients see their own studies, and only once a radiologist has signed them.
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


class SliceQuerySet(models.QuerySet["Slice"]):
    def visible_to(self, user: Any) -> "SliceQuerySet":
        """Clinical staff: every slice. A patient: the slices of their released studies that
        the latest signed version covers (stored before it was signed), and none at all when
        that version says the images could not be assessed."""
        visible = self.filter(series__study__in=Study.objects.visible_to(user))
        if user.is_authenticated and user.is_clinical_staff:
            return visible
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


# --- AI prediction -------------------------------------------------------------------------


OUTSIDE_TRAINING = "outside what the model was trained on (image check)"


FLAGS_TUMOUR = Q(is_brain_mri=True) & ~Q(label__in=["", TumourClass.NOTUMOR])


class PredictionQuerySet(models.QuerySet["Prediction"]):
    def current(self) -> "PredictionQuerySet":
        """The newest prediction of each series (a series re-run by a newer model version has
        several; the newest one is the one shown and reviewed)."""
        newer = Prediction.objects.filter(series=OuterRef("series")).filter(
            Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
        )
        return self.exclude(Exists(newer))

    def primary(self) -> "PredictionQuerySet":
        """The current predictions, the study's primary one first: the most suspicious series
        wins (a flagged tumour before anything else, then a brain MRI, then the higher
        confidence). Usable as a Subquery (filter on series__study=OuterRef(...))."""
        flag = Case(When(FLAGS_TUMOUR, then=Value(1)), default=Value(0), output_field=IntegerField())
        return self.current().annotate(tumour_flag=flag).order_by(
            "-tumour_flag", "-is_brain_mri", "-confidence", "-created_at", "-id"
        )


class Prediction(models.Model):
    """The classifier's result for one series by one model version."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="predictions")
    model_name = models.CharField(max_length=64)
    model_version = models.CharField(max_length=64)
    # Empty when the series is outside the AI's scope: the model then gives no tumour class.
    label = models.CharField(max_length=16, blank=True, choices=TumourClass.choices)
    probabilities = models.JSONField(default=dict)
    confidence = models.FloatField()
    # False: outside the AI's scope (header rule or image check); scope_reason says why.
    is_brain_mri = models.BooleanField(default=True)
    scope_reason = models.CharField(max_length=200, blank=True)
    key_slice = models.ForeignKey(Slice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    aggregation = models.TextField(blank=True)
    runtime_ms = models.FloatField(null=True, blank=True)
    # How many slices the series held when classified: a series that grows is classified
    # again (a new prediction), so every slice gets a result.
    slice_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PredictionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "model_version", "slice_count"], name="prediction_unique_series_model_slices"
            ),
            models.CheckConstraint(condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="prediction_confidence_range"),
            models.CheckConstraint(
                condition=(Q(is_brain_mri=True) & Q(label__in=TUMOUR_CLASSES)) | (Q(is_brain_mri=False) & Q(label="")),
                name="prediction_label_matches_mri_flag",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label or 'not-mri'} ({self.confidence:.2f}) by {self.model_version}"

    @property
    def flags_tumour(self) -> bool:
        return self.is_brain_mri and self.label not in ("", TumourClass.NOTUMOR)

    @property
    def out_of_scope_reason(self) -> str:
        """What the radiologist reads when the AI gives no class; empty when it gives one."""
        if self.is_brain_mri:
            return ""
        return self.scope_reason or OUTSIDE_TRAINING


class SlicePrediction(models.Model):
    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="slice_results")
    slice = models.ForeignKey(Slice, on_delete=models.CASCADE, related_name="predictions")
    probabilities = models.JSONField(default=dict)
    is_brain_mri = models.BooleanField(default=True)
    heatmap = models.FileField(upload_to="heatmaps/%Y/%m/%d", max_length=255, blank=True)

    class Meta:
        ordering = ["slice__order_index"]
        constraints = [models.UniqueConstraint(fields=["prediction", "slice"], name="slice_prediction_unique")]


# --- Radiologist review, notes, explanation ---------------------------------------------------


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

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="reviews")
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
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    text = models.TextField()
    # A note for the patient is shown on their report once it is signed.
    for_patient = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="note_text_not_empty")]


class ExplanationStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    APPROVED = "approved", _("Approved")
    SUPERSEDED = "superseded", _("Superseded")


class PatientExplanation(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="explanations")
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


# --- Processing jobs live in scans/jobs.py (their state machine is on Job and JobQuerySet) ----

from scans.jobs import ACTIVE_JOB_STATES, Job, JobKind, JobQuerySet, JobState  # noqa: E402,F401  (models of this app)
