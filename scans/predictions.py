"""The classifier's results: one Prediction per series and model version, one SlicePrediction
per slice it read. Which prediction a study is reviewed against is PredictionQuerySet.primary."""
from __future__ import annotations

from django.db import models
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, Value, When
from django.utils import timezone

from scans.findings import TUMOUR_CLASSES, TumourClass

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

    series = models.ForeignKey("scans.Series", on_delete=models.CASCADE, related_name="predictions")
    model_name = models.CharField(max_length=64)
    model_version = models.CharField(max_length=64)
    # Empty when the series is outside the AI's scope: the model then gives no tumour class.
    label = models.CharField(max_length=16, blank=True, choices=TumourClass.choices)
    probabilities = models.JSONField(default=dict)
    confidence = models.FloatField()
    # False: outside the AI's scope (header rule or image check); scope_reason says why.
    is_brain_mri = models.BooleanField(default=True)
    scope_reason = models.CharField(max_length=200, blank=True)
    key_slice = models.ForeignKey("scans.Slice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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
    slice = models.ForeignKey("scans.Slice", on_delete=models.CASCADE, related_name="predictions")
    probabilities = models.JSONField(default=dict)
    is_brain_mri = models.BooleanField(default=True)
    heatmap = models.FileField(upload_to="heatmaps/%Y/%m/%d", max_length=255, blank=True)

    class Meta:
        ordering = ["slice__order_index"]
        constraints = [models.UniqueConstraint(fields=["prediction", "slice"], name="slice_prediction_unique")]
