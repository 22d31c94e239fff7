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

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import record
from portal.patient.pdf import render_report_pdf
from portal.patient.reports import patient_reports, titled_report
from scans.access import get_study_for
from scans.models import Study


def _require_patient(request: HttpRequest) -> None:
    if not request.user.is_patient:
        raise Http404


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
