"""Patient portal: the patient's own signed reports, in plain words, as a page and a PDF,
and a history timeline.

Access: patients only, and only their own released (signed or amended) studies, through
scans.access.get_study_for; anything else answers 404. The finding shown is always the
radiologist's final class from the latest signed review, never the raw AI output, and the
explanation is shown only when it was approved with that review. Every view is audited.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.audit import record
from inference.explainer.offline import headline
from portal.workflow.explanations import approved_explanation_for
from scans.access import get_study_for
from scans.models import ClinicalNote, PatientExplanation, Review, Slice, Study


def _require_patient(request: HttpRequest) -> None:
    if not request.user.is_patient:
        raise Http404


@dataclass
class Report:
    """What a patient may see of one released study."""

    study: Study
    review: Review  # the latest signed version
    first_signed_at: datetime
    explanation: PatientExplanation | None
    notes: list[ClinicalNote]
    key_slice: Slice | None
    title: str = ""  # set by with_distinct_titles

    @property
    def final_class(self) -> str:
        return self.review.final_class

    @property
    def final_class_label(self) -> str:
        return self.review.get_final_class_display()

    @property
    def headline(self) -> str:
        return headline(self.review.final_class)

    @property
    def assessable(self) -> bool:
        """False: the images could not be assessed. The patient reads a plain message, no
        tumour class, and no image is shown as "your scan"."""
        return self.review.is_assessable

    @property
    def amended(self) -> bool:
        return self.review.version > 1

    @property
    def signed_at(self) -> datetime:
        return self.review.signed_at

    @property
    def signed_by(self) -> str:
        return self.review.signed_by_name

    @property
    def report_text(self) -> str:
        """The radiologist's own report text of the version shown."""
        return self.review.report_text

    @property
    def scan_date(self) -> date:
        return self.study.scan_date

    @property
    def what_was_scanned(self) -> str:
        """ "MRI of the brain", "CT of the chest"; the modality alone when the body part is unknown."""
        study = self.study
        if study.body_part_name:
            return _("%(modality)s of the %(part)s") % {"modality": study.modality_name, "part": study.body_part_name}
        return study.modality_name

    @property
    def institution(self) -> str:
        return self.study.institution or getattr(settings, "DICOM_INSTITUTION", "")

    @property
    def key_slice_url(self) -> str | None:
        if self.key_slice is None:
            return None
        try:
            return reverse("scans:slice_image", args=[self.key_slice.pk])
        except NoReverseMatch:  # the slice view is not installed
            return None


def _key_slice(study: Study, review: Review) -> Slice | None:
    from portal.workflow.review import primary_prediction

    if not review.is_assessable:
        return None  # possibly not even this patient's images: never shown as "your scan"
    prediction = review.prediction or primary_prediction(study)
    if prediction is not None and prediction.key_slice_id:
        return prediction.key_slice
    covered = Slice.objects.filter(series__study=study, created_at__lte=review.signed_at)
    return covered.order_by("series__series_number", "series_id", "order_index", "id").first()


def build_report(study: Study) -> Report:
    review = study.latest_review()
    if review is None or review.signed_at is None:
        raise Http404  # released without a signed review: nothing to show
    first = study.reviews.filter(signed_at__isnull=False).order_by("version").first()
    notes = list(study.notes.filter(for_patient=True, created_at__lte=review.signed_at).order_by("created_at", "id"))
    return Report(
        study=study,
        review=review,
        first_signed_at=first.signed_at,
        explanation=approved_explanation_for(study, review),
        notes=notes,
        key_slice=_key_slice(study, review),
    )


def newest_first(reports: list[Report]) -> list[Report]:
    """By the day of the scan, newest first (not by upload order: an old scan uploaded today
    is still an old scan)."""
    return sorted(reports, key=lambda r: (r.scan_date, r.study.created_at, r.study.pk), reverse=True)


def with_distinct_titles(reports: list[Report]) -> list[Report]:
    """Titles say what was scanned and when ("MRI of the brain, 3 Dec 2026"); two scans of the
    same kind on the same day are numbered in the order they were taken."""
    for report in reports:
        report.title = f"{report.what_was_scanned}, {formats.date_format(report.scan_date, 'DATE_FORMAT')}"
    groups: dict[str, list[Report]] = {}
    for report in reports:
        groups.setdefault(report.title, []).append(report)
    for same in groups.values():
        if len(same) > 1:
            ordered = sorted(same, key=lambda r: (r.study.created_at, r.study.pk))
            for n, report in enumerate(ordered, 1):
                report.title += " " + _("(scan %(n)d of %(total)d that day)") % {"n": n, "total": len(same)}
    return reports


def patient_reports(user) -> list[Report]:
    """Every report the patient may read, newest scan first, with distinct titles."""
    studies = Study.objects.visible_to(user).select_related("patient")
    return with_distinct_titles(newest_first([build_report(s) for s in studies if s.latest_review() is not None]))


def titled_report(user, study: Study) -> Report:
    """The study's report as the list shows it (same title)."""
    return next(r for r in patient_reports(user) if r.study.pk == study.pk)


def _patient_study(request: HttpRequest, pk: int) -> Study:
    _require_patient(request)
    study = get_study_for(request.user, pk)
    if not study.is_released:  # visible_to already limits patients to released studies
        raise Http404
    return study


@login_required
def home(request: HttpRequest) -> HttpResponse:
    _require_patient(request)
    reports = patient_reports(request.user)
    patient = getattr(request.user, "patient_record", None)
    record("patient.reports.list", request=request, patient_id=patient.pk if patient else None, count=len(reports))
    return render(request, "patient/home.html", {"reports": reports})


@login_required
def report(request: HttpRequest, pk: int) -> HttpResponse:
    study = _patient_study(request, pk)
    rep = titled_report(request.user, study)
    record(
        "patient.report.view", request=request, obj=study, patient_id=study.patient_id, review_version=rep.review.version
    )
    return render(request, "patient/report.html", {"report": rep})


@login_required
def report_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    from portal.patient.pdf import render_report_pdf

    study = _patient_study(request, pk)
    rep = titled_report(request.user, study)
    data = render_report_pdf(rep)
    record(
        "patient.report.pdf",
        request=request,
        obj=study,
        patient_id=study.patient_id,
        review_version=rep.review.version,
        bytes=len(data),
    )
    response = HttpResponse(data, content_type="application/pdf")
    filename = f"mri-report-{rep.scan_date:%Y-%m-%d}-v{rep.review.version}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@dataclass
class TimelineEvent:
    when: datetime | date
    kind: str  # scan | signed | amended
    title: str
    study: Study
    final_class_label: str = ""


@login_required
def history(request: HttpRequest) -> HttpResponse:
    _require_patient(request)
    events: list[TimelineEvent] = []
    for rep in patient_reports(request.user):
        study = rep.study
        signed = sorted((r for r in study.reviews.all() if r.signed_at), key=lambda r: r.version)
        events.append(TimelineEvent(study.scan_date, "scan", rep.title, study))
        for r in signed:
            events.append(
                TimelineEvent(
                    timezone.localtime(r.signed_at).date(),
                    "amended" if r.version > 1 else "signed",
                    _("Report amended") if r.version > 1 else _("Report signed by your radiologist"),
                    study,
                    r.get_final_class_display(),
                )
            )
    order = {"scan": 0, "signed": 1, "amended": 2}
    events.sort(key=lambda e: (e.when, order[e.kind]), reverse=True)
    patient = getattr(request.user, "patient_record", None)
    record("patient.history.view", request=request, patient_id=patient.pk if patient else None, events=len(events))
    return render(request, "patient/history.html", {"events": events})
