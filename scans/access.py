"""The one ownership helper: every view that shows patient data fetches it through here.

A user who may not see an object gets 404, never 403, so the portal does not even confirm
that another patient's study exists.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from scans.models import Patient, Review, Series, Slice, Study


def get_study_for(user: Any, pk: int) -> Study:
    return get_object_or_404(Study.objects.visible_to(user).select_related("patient"), pk=pk)


def get_signed_report_for(user: Any, pk: int) -> tuple[Study, Review]:
    """A released study the user may see, with its latest signed review; 404 before sign-off."""
    study = get_study_for(user, pk)
    review = study.latest_review() if study.is_released else None
    if review is None:
        raise Http404
    return study, review


def get_patient_for(user: Any, pk: int, *, lock: bool = False) -> Patient:
    """A patient record the user may see (with its account); `lock` takes the row's
    SELECT ... FOR UPDATE for a change inside the caller's transaction."""
    records = Patient.objects.visible_to(user).select_related("user")
    if lock:
        records = records.select_for_update(of=("self",))
    return get_object_or_404(records, pk=pk)


def get_series_for(user: Any, pk: int) -> Series:
    return get_object_or_404(
        Series.objects.filter(study__in=Study.objects.visible_to(user)).select_related("study"), pk=pk
    )


def get_slice_for(user: Any, pk: int) -> Slice:
    return get_object_or_404(Slice.objects.visible_to(user).select_related("series__study"), pk=pk)


def require_clinical_staff(user: Any) -> None:
    """Radiologist and administrator pages: any other user gets 404 like a missing page."""
    if not (user.is_authenticated and user.is_active and user.is_clinical_staff):
        raise Http404


def require_reporter(user: Any) -> None:
    """Reporting actions (sign, amend, notes, explanations): 404 for anyone who may not see
    the radiology area, 403 for clinical staff who see it but may not report
    (administrators). The rule itself is accounts.models.User.may_report."""
    require_clinical_staff(user)
    if not user.may_report:
        raise PermissionDenied("Only a radiologist may sign, amend or add to a report.")
