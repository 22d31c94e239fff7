"""Serializers of the REST API. What a patient may see is narrower than what clinical
staff see: patients get no AI prediction, only the radiologist's signed report."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scans.explanations import ExplanationStatus
from scans.findings import FINDING_CHOICES, TumourClass, class_label
from scans.models import (
    Patient,
    Prediction,
    Review,
    Series,
    Study,
    StudyStatus,
)
from scans.reviews import ReviewDecision, UnassessableReason


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "full_name", "birth_date", "sex"]


class PredictionSummarySerializer(serializers.ModelSerializer):
    label = serializers.CharField(allow_blank=True, help_text="Empty when the series is outside the AI's scope.")
    is_brain_mri = serializers.BooleanField(help_text="False: outside the AI's scope (no class); scope_reason says why.")
    scope_reason = serializers.CharField(
        source="out_of_scope_reason", read_only=True,
        help_text="Why the AI gives no class, e.g. \"outside the model's scope: modality CT\"; empty when it gives one.")

    class Meta:
        model = Prediction
        fields = ["label", "confidence", "is_brain_mri", "scope_reason", "probabilities", "model_name", "model_version",
                  "created_at"]


def _latest_prediction(series: Series) -> Prediction | None:
    # The view prefetches Prediction.objects.current(): at most one per series, no query here.
    return next(iter(series.predictions.all()), None)


def _is_staff(context: dict[str, Any]) -> bool:
    request = context.get("request")
    return bool(request and request.user.is_authenticated and request.user.is_clinical_staff)


class StaffOnlyTextMixin:
    """DICOM free text (StudyDescription, SeriesDescription) and status details that quote it
    can hold names: only clinical staff get them. Patients see the portal's own fields, and
    null in these."""

    STAFF_ONLY = ("description", "status_detail")

    def to_representation(self, instance: Any) -> dict:
        data = super().to_representation(instance)  # type: ignore[misc]
        if not _is_staff(self.context):  # type: ignore[attr-defined]
            for name in self.STAFF_ONLY:
                if name in data:
                    data[name] = None
        return data


def _staff_only_text(what: str) -> serializers.CharField:
    return serializers.CharField(read_only=True, allow_null=True, help_text=f"{what}; clinical staff only (null for patients).")


class SeriesSerializer(StaffOnlyTextMixin, serializers.ModelSerializer):
    description = _staff_only_text("DICOM SeriesDescription")
    slice_count = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField()

    class Meta:
        model = Series
        fields = ["id", "series_instance_uid", "series_number", "description", "modality", "slice_count", "prediction"]

    def get_slice_count(self, series: Series) -> int:
        return len(series.slices.all())

    @extend_schema_field(PredictionSummarySerializer(allow_null=True))
    def get_prediction(self, series: Series) -> dict | None:
        if not _is_staff(self.context):
            return None
        prediction = _latest_prediction(series)
        return PredictionSummarySerializer(prediction).data if prediction else None


class StudySerializer(StaffOnlyTextMixin, serializers.ModelSerializer):
    patient = serializers.PrimaryKeyRelatedField(read_only=True)
    description = _staff_only_text("DICOM StudyDescription")
    status_detail = _staff_only_text("Processing detail")
    status = serializers.ChoiceField(choices=StudyStatus.choices, read_only=True)
    prediction = serializers.SerializerMethodField(
        help_text="The study's primary AI result (the most suspicious series, as on the review page); clinical staff only (null for patients)."
    )
    final_class = serializers.SerializerMethodField(help_text="The radiologist's signed class, once released.")

    class Meta:
        model = Study
        fields = [
            "id", "patient", "study_instance_uid", "description", "study_date", "modality",
            "status", "status_detail", "created_at", "prediction", "final_class",
        ]

    @extend_schema_field(PredictionSummarySerializer(allow_null=True))
    def get_prediction(self, study: Study) -> dict | None:
        if not _is_staff(self.context):
            return None
        primary = study.primary_prediction()  # the one the review page and the worklist show
        return PredictionSummarySerializer(primary).data if primary else None

    @extend_schema_field(serializers.ChoiceField(choices=FINDING_CHOICES, allow_null=True))
    def get_final_class(self, study: Study) -> str | None:
        if not study.is_released:
            return None
        review = study.latest_review()
        return review.final_class if review else None


class StudyDetailSerializer(StudySerializer):
    series = SeriesSerializer(many=True, read_only=True)

    class Meta(StudySerializer.Meta):
        fields = StudySerializer.Meta.fields + ["series"]


class PatientNoteSerializer(serializers.Serializer):
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class ReportSerializer(serializers.Serializer):
    """The signed report as released to the patient (the latest signed version)."""

    study = serializers.IntegerField()
    version = serializers.IntegerField()
    amended = serializers.BooleanField()
    final_class = serializers.ChoiceField(
        choices=FINDING_CHOICES, help_text='A tumour class, or "unassessable": the images could not be assessed.'
    )
    final_class_display = serializers.CharField()
    report_text = serializers.CharField(allow_blank=True)
    signed_by = serializers.CharField()
    signed_at = serializers.DateTimeField()
    explanation = serializers.CharField(allow_null=True, help_text="The radiologist-approved plain-language explanation.")
    notes = PatientNoteSerializer(many=True)

    @staticmethod
    def build(study: Study, review: Review) -> dict[str, Any]:
        explanation = (
            study.explanations.filter(review=review, status=ExplanationStatus.APPROVED).order_by("-approved_at").first()
        )
        notes = study.notes.filter(for_patient=True).order_by("created_at", "id")
        return {
            "study": study.pk,
            "version": review.version,
            "amended": review.is_amendment,
            "final_class": review.final_class,
            "final_class_display": class_label(review.final_class),
            "report_text": review.report_text,
            "signed_by": str(review.author),
            "signed_at": review.signed_at,
            "explanation": explanation.text if explanation else None,
            "notes": [{"text": n.text, "created_at": n.created_at} for n in notes],
        }


class NoteCreateSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=10_000)
    for_patient = serializers.BooleanField(default=False)


class NoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.IntegerField()
    author = serializers.CharField()
    text = serializers.CharField()
    for_patient = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class SignOffSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=ReviewDecision.choices)
    final_class = serializers.ChoiceField(
        choices=TumourClass.choices, required=False, allow_null=True, default=None,
        help_text="Required to override; when confirming, the AI class is used; empty when the images "
                  "cannot be assessed.",
    )
    unassessable_reason = serializers.ChoiceField(
        choices=UnassessableReason.choices, required=False, allow_blank=True, default="",
        help_text='Required with the decision "unassessable": why the images cannot be assessed.',
    )
    reason = serializers.CharField(max_length=20_000, required=False, allow_blank=True, default="",
                                   help_text="Required for an override, for images that cannot be assessed "
                                             "and for an amendment.")
    report_text = serializers.CharField(max_length=20_000, required=False, allow_blank=True, default="")
    explanation_text = serializers.CharField(
        max_length=20_000, required=False, allow_null=True, default=None,
        help_text="The patient explanation as the radiologist approves it; null approves the proposed text "
                  "(the draft if it was written for this finding, else one redrafted for it). A text naming "
                  "another finding is refused (400).",
    )


class StudyQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=StudyStatus.choices, required=False)
    patient = serializers.IntegerField(min_value=1, required=False)
