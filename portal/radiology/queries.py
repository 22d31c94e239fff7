"""Worklist queries: the AI result of each study as annotations, urgency order, filters and
counts. Kept here (not on scans' StudyQuerySet) because urgency is a radiology policy."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, NullIf
from django.utils.translation import gettext_lazy as _

from scans.findings import TUMOUR_CLASSES, TumourClass
from scans.models import NEEDS_REVIEW_STATUSES, Prediction, Study, StudyStatus
from scans.predictions import OUTSIDE_TRAINING

# A flagged tumour at or above this calibrated confidence goes to the top of the worklist.
HIGH_CONFIDENCE = 0.80

# Urgency tiers, most urgent first; within a tier the oldest study comes first.
TIER_URGENT = 0  # AI flags a tumour with high confidence
TIER_FLAGGED = 1  # AI flags a tumour with lower confidence
TIER_NOT_MRI = 2  # outside the AI's scope (scans.scope or the image check): a human must look
TIER_ROUTINE = 3  # no tumour, or no AI result yet

NOT_MRI = "not_mri"
AI_CLASS_CHOICES = [*TumourClass.choices, (NOT_MRI, _("Outside the AI's scope"))]
# The default tab: studies awaiting a first sign-off and signed ones holding new images.
TO_REVIEW = "to_review"
DEFAULT_STATUS = TO_REVIEW
ALL_STATUSES = "all"


def _primary_predictions() -> QuerySet[Prediction]:
    """For Subquery: the study's primary prediction (scans.predictions.PredictionQuerySet.primary)."""
    return Prediction.objects.filter(series__study=OuterRef("pk")).primary()


def with_ai_result(qs: QuerySet[Study]) -> QuerySet[Study]:
    primary = _primary_predictions()
    return qs.annotate(
        ai_label=Subquery(primary.values("label")[:1]),
        ai_confidence=Subquery(primary.values("confidence")[:1]),
        ai_is_brain_mri=Subquery(primary.values("is_brain_mri")[:1]),
        ai_model_version=Subquery(primary.values("model_version")[:1]),
        ai_scope_reason=Coalesce(NullIf(Subquery(primary.values("scope_reason")[:1]), Value("")), Value(OUTSIDE_TRAINING)),
    ).annotate(
        urgency=Case(
            When(
                Q(ai_is_brain_mri=True) & Q(ai_label__in=[c for c in TUMOUR_CLASSES if c != TumourClass.NOTUMOR])
                & Q(ai_confidence__gte=HIGH_CONFIDENCE),
                then=Value(TIER_URGENT),
            ),
            When(
                Q(ai_is_brain_mri=True) & Q(ai_label__in=[c for c in TUMOUR_CLASSES if c != TumourClass.NOTUMOR]),
                then=Value(TIER_FLAGGED),
            ),
            When(ai_is_brain_mri=False, then=Value(TIER_NOT_MRI)),
            default=Value(TIER_ROUTINE),
            output_field=IntegerField(),
        )
    )


def worklist_order(qs: QuerySet[Study]) -> QuerySet[Study]:
    return qs.order_by("urgency", "created_at", "id")


@dataclass
class WorklistFilters:
    status: str = DEFAULT_STATUS
    ai_class: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    patient_id: int | None = None
    q: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: Any) -> "WorklistFilters":
        f = cls()
        status = params.get("status", DEFAULT_STATUS) or DEFAULT_STATUS
        if status not in (ALL_STATUSES, TO_REVIEW) and status not in StudyStatus.values:
            f.errors.append(str(_("Unknown status filter.")))
            status = DEFAULT_STATUS
        f.status = status
        ai_class = params.get("ai_class", "")
        if ai_class and ai_class not in dict(AI_CLASS_CHOICES):
            f.errors.append(str(_("Unknown AI class filter.")))
            ai_class = ""
        f.ai_class = ai_class
        for name in ("date_from", "date_to"):
            raw = params.get(name, "")
            if raw:
                try:
                    setattr(f, name, dt.date.fromisoformat(raw))
                except ValueError:
                    f.errors.append(str(_("Dates must look like 2025-01-31.")))
        raw_patient = params.get("patient", "")
        if raw_patient:
            if raw_patient.isdigit():
                f.patient_id = int(raw_patient)
            else:
                f.errors.append(str(_("Unknown patient filter.")))
        f.q = params.get("q", "").strip()[:100]
        return f

    def apply_except_status(self, qs: QuerySet[Study]) -> QuerySet[Study]:
        if self.ai_class == NOT_MRI:
            qs = qs.filter(ai_is_brain_mri=False)
        elif self.ai_class:
            qs = qs.filter(ai_is_brain_mri=True, ai_label=self.ai_class)
        if self.date_from:
            qs = qs.filter(created_at__date__gte=self.date_from)
        if self.date_to:
            qs = qs.filter(created_at__date__lte=self.date_to)
        if self.patient_id:
            qs = qs.filter(patient_id=self.patient_id)
        if self.q:
            qs = qs.filter(
                Q(patient__mrn__icontains=self.q)
                | Q(patient__full_name__icontains=self.q)
                | Q(accession_number__iexact=self.q)
            )
        return qs

    def apply(self, qs: QuerySet[Study]) -> QuerySet[Study]:
        qs = self.apply_except_status(qs)
        if self.status == TO_REVIEW:
            qs = qs.needs_review()
        elif self.status != ALL_STATUSES:
            qs = qs.filter(status=self.status)
        return qs


def worklist(filters: WorklistFilters) -> QuerySet[Study]:
    return worklist_order(filters.apply(with_ai_result(Study.objects.select_related("patient"))))


def status_counts(filters: WorklistFilters) -> dict[str, int]:
    """How many studies of each status match the other filters (so the status tabs show what
    clicking them would list)."""
    qs = filters.apply_except_status(with_ai_result(Study.objects.all()))
    rows = qs.order_by().values("status").annotate(n=Count("id"))
    counts = {s: 0 for s in StudyStatus.values}
    for row in rows:
        counts[row["status"]] = row["n"]
    counts[ALL_STATUSES] = sum(counts.values())
    counts[TO_REVIEW] = sum(counts[s] for s in NEEDS_REVIEW_STATUSES)
    return counts
