"""Radiologist workspace: worklist, study viewer and review panel, patient history.

Every page is for clinical staff only (anyone else gets 404 from require_clinical_staff) and
every view and action writes an audit row.
"""
from __future__ import annotations

from typing import Any, Callable

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.audit import record
from accounts.decorators import guarded_view
from portal.radiology import queries
from portal.workflow import review as review_service
from portal.workflow.explanations import previews as explanation_previews
from scans.access import get_patient_for, get_study_for, require_clinical_staff, require_reporter
from scans.findings import TumourClass
from scans.models import (
    ClinicalNote,
    Prediction,
    Review,
    Series,
    SlicePrediction,
    StudyStatus,
)
from scans.reviews import ReviewDecision, UnassessableReason

PAGE_SIZE = 25
PROCESSING_STATUSES = (StudyStatus.RECEIVED, StudyStatus.PROCESSING)


def staff_view(*methods: str) -> Callable:
    return guarded_view(require_clinical_staff, *methods)


def reporter_view(*methods: str) -> Callable:
    """Sign, amend, notes, explanations: radiologists only (403 for administrators)."""
    return guarded_view(require_reporter, *methods)


# --- Worklist ---------------------------------------------------------------------------------


@staff_view("GET")
def worklist(request: HttpRequest) -> HttpResponse:
    filters = queries.WorklistFilters.from_query(request.GET)
    page = Paginator(queries.worklist(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    counts = queries.status_counts(filters)
    params = request.GET.copy()
    params.pop("page", None)
    status_params = params.copy()
    status_params.pop("status", None)
    record(
        "radiology.worklist.view",
        request=request,
        filters={k: v for k, v in request.GET.items() if k != "page"},
        page=page.number,
        shown=len(page.object_list),
    )
    status_tabs = [
        (value, label, counts.get(value, 0))
        for value, label in [(queries.TO_REVIEW, _("To review")), (queries.ALL_STATUSES, _("All")), *StudyStatus.choices]
    ]
    return render(
        request,
        "radiology/worklist.html",
        {
            "page": page,
            "filters": filters,
            "status_tabs": status_tabs,
            "ai_class_choices": queries.AI_CLASS_CHOICES,
            "status_choices": StudyStatus.choices,
            "query_string": params.urlencode(),
            "status_query_string": status_params.urlencode(),
            "processing_statuses": PROCESSING_STATUSES,
            "high_confidence_pct": round(queries.HIGH_CONFIDENCE * 100),
        },
        status=400 if filters.errors else 200,
    )


# --- Study page -------------------------------------------------------------------------------


def _tumour_probability(probabilities: dict[str, float]) -> float | None:
    if not probabilities:
        return None
    return max(0.0, min(1.0, 1.0 - float(probabilities.get(TumourClass.NOTUMOR, 0.0))))


def _viewer_data(series: Series, prediction: Prediction | None) -> dict[str, Any]:
    """Everything the viewer script needs, passed with json_script (no inline script)."""
    slice_results: dict[int, SlicePrediction] = {}
    if prediction is not None:
        slice_results = {sp.slice_id: sp for sp in prediction.slice_results.all()}
    slices = []
    for index, sl in enumerate(series.ordered_slices()):
        result = slice_results.get(sl.pk)
        probabilities = result.probabilities if result else {}
        top = max(probabilities, key=probabilities.get) if probabilities else None
        slices.append(
            {
                "id": sl.pk,
                "index": index,
                "instance": sl.instance_number,
                "location": sl.slice_location,
                "image": reverse("scans:slice_image", args=[sl.pk]),
                "thumbnail": reverse("scans:slice_thumbnail", args=[sl.pk]),
                "tags": reverse("scans:slice_tags", args=[sl.pk]),
                "heatmap": reverse("scans:slice_heatmap", args=[sl.pk]) if result and result.heatmap else None,
                "wc": sl.window_center,
                "ww": sl.window_width,
                "tumour_probability": _tumour_probability(probabilities),
                "top_class": top,
                "is_brain_mri": result.is_brain_mri if result else None,
                "is_key": prediction is not None and prediction.key_slice_id == sl.pk,
            }
        )
    return {"series": series.pk, "slices": slices}


def _series_thumbnail(series: Series, prediction: Prediction | None) -> str | None:
    """The series' key slice (else its middle slice) as a thumbnail URL."""
    if prediction is not None and prediction.key_slice_id:
        return reverse("scans:slice_thumbnail", args=[prediction.key_slice_id])
    ids = list(series.ordered_slices().values_list("pk", flat=True))
    return reverse("scans:slice_thumbnail", args=[ids[len(ids) // 2]]) if ids else None


def _compare_data(study) -> dict[str, Any] | None:
    """The patient's previous study for the side-by-side pane: its primary series (the one
    the AI result came from), starting at the key slice."""
    previous = study.previous_study()
    if previous is None:
        return None
    primary = previous.primary_prediction()
    series = primary.series if primary is not None else previous.series.first()
    if series is None:
        return None
    ids = list(series.ordered_slices().values_list("pk", flat=True))
    if not ids:
        return None
    review = previous.latest_review()
    return {
        "study": previous.pk,
        "url": reverse("radiology:study", args=[previous.pk]),
        "label": " · ".join(filter(None, [
            previous.description or previous.modality_name,
            previous.scan_date.isoformat(),
            series.description,
            review.get_final_class_display() if review else previous.get_status_display(),
        ])),
        "start": ids.index(primary.key_slice_id) if primary is not None and primary.key_slice_id in ids else len(ids) // 2,
        "slices": [reverse("scans:slice_image", args=[pk]) for pk in ids],
    }


def _study_context(request: HttpRequest, study, *, form_errors: dict[str, str] | None = None, posted=None) -> dict:
    series_list = list(study.series.all())
    latest = {p.series_id: p for p in Prediction.objects.filter(series__study=study).current()}
    selected = series_list[0] if series_list else None
    wanted = request.GET.get("series", "")
    if wanted.isdigit():
        selected = next((s for s in series_list if s.pk == int(wanted)), selected)
    prediction = latest.get(selected.pk) if selected else None
    viewer = _viewer_data(selected, prediction) if selected else {"series": None, "slices": []}
    viewer["compare"] = _compare_data(study) if selected else None
    slice_rows = viewer["slices"]
    primary = study.primary_prediction()
    reviews = list(study.reviews.select_related("author", "prediction").order_by("-version"))
    latest_review = study.latest_review()
    explanation = review_service.latest_explanation(study)
    return {
        "study": study,
        "patient": study.patient,
        "series_rows": [
            (s, latest.get(s.pk), s.slices.count(), _series_thumbnail(s, latest.get(s.pk))) for s in series_list
        ],
        "selected_series": selected,
        "prediction": prediction,
        "primary": primary,
        "viewer_data": viewer,
        "slice_rows": slice_rows,
        "key_slice_row": next((r for r in slice_rows if r["is_key"]), None),
        "out_of_scope": [(s, p.out_of_scope_reason) for s in series_list if (p := latest.get(s.pk)) and not p.is_brain_mri],
        "reviews": reviews,
        "latest_review": latest_review,
        "notes": ClinicalNote.objects.filter(study=study).select_related("author"),
        "explanation": explanation,
        **_review_forms(request, study, primary, latest_review, explanation, posted or {}),
        "form_errors": form_errors or {},
        "posted": posted or {},
        "processing": study.status in PROCESSING_STATUSES,
    }


def _preview_key(decision: str, final_class: str | None) -> str:
    """The key of explanations.previews for a decision as the form posts it."""
    return f"{decision}:{final_class or ''}" if decision == ReviewDecision.OVERRIDE else f"{decision}:"


def _review_forms(request: HttpRequest, study, primary, latest_review, explanation, posted) -> dict[str, Any]:
    """The sign-off and amendment forms: who may use them, their default decision and the
    exact patient text for every decision they offer (shown before signing)."""
    may_report = request.user.may_report
    previews = explanation_previews(study, explanation) if may_report else {}
    has_ai_class = bool(primary and primary.is_brain_mri)
    sign_default = posted.get("decision") or (ReviewDecision.CONFIRM if has_ai_class else ReviewDecision.OVERRIDE)
    # An amendment starts from the signed decision (a confirmed report offers "confirm" again).
    amend_default = posted.get("decision") or (
        ReviewDecision.UNASSESSABLE if latest_review and not latest_review.is_assessable
        else ReviewDecision.CONFIRM if latest_review and latest_review.decision == ReviewDecision.CONFIRM and has_ai_class
        else ReviewDecision.OVERRIDE
    )
    amend_class = posted.get("final_class") or (latest_review.final_class if latest_review else "")
    new_images = list(study.new_images_after_sign_off().select_related("series"))
    return {
        "new_images": new_images,
        "new_image_series": list({sl.series_id: sl.series for sl in new_images}.values()),
        "may_report": may_report,
        "can_sign": may_report and study.status == StudyStatus.AWAITING_REVIEW,
        "can_amend": may_report and study.is_released,
        "explanation_previews": previews,
        "sign_default": sign_default,
        "amend_default": amend_default,
        "sign_explanation": previews.get(_preview_key(sign_default, posted.get("final_class")), ""),
        "amend_explanation": previews.get(_preview_key(amend_default, amend_class), ""),
        "class_choices": TumourClass.choices,
        "unassessable_choices": UnassessableReason.choices,
    }


@staff_view("GET")
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_study_for(request.user, pk)
    context = _study_context(request, study)
    record(
        "radiology.study.view",
        request=request,
        obj=study,
        patient_id=study.patient_id,
        series_id=context["selected_series"].pk if context["selected_series"] else None,
    )
    return render(request, "radiology/study.html", context)


def _rerender_with_error(request: HttpRequest, study, error: review_service.ReviewError, field: str) -> HttpResponse:
    record(
        "review.refused",
        request=request,
        obj=study,
        patient_id=study.patient_id,
        form=field,
        error=error.message,
    )
    messages.error(request, error.message)
    posted = request.POST.copy()
    for name, value in error.field_values.items():
        posted[name] = value
    context = _study_context(request, study, form_errors={field: error.message}, posted=posted)
    return render(request, "radiology/study.html", context, status=error.status)


def _review_action(request: HttpRequest, pk: int, *, amendment: bool) -> HttpResponse:
    study = get_study_for(request.user, pk)
    action = review_service.amend if amendment else review_service.sign_off
    explanation_text = request.POST.get("explanation_text")
    try:
        result = action(
            study,
            user=request.user,
            decision=request.POST.get("decision", ""),
            final_class=request.POST.get("final_class") or None,
            unassessable_reason=request.POST.get("unassessable_reason", ""),
            reason=request.POST.get("reason", ""),
            report_text=request.POST.get("report_text", ""),
            explanation_text=explanation_text,
            request=request,
        )
    except review_service.ReviewError as error:
        return _rerender_with_error(request, study, error, "amend" if amendment else "sign_off")
    if amendment:
        messages.success(request, _("Amendment saved as version %(v)d and released to the patient.") % {"v": result.review.version})
    else:
        messages.success(request, _("Report signed and released to the patient."))
    return redirect("radiology:study", pk=study.pk)


@reporter_view("POST")
def sign_off(request: HttpRequest, pk: int) -> HttpResponse:
    return _review_action(request, pk, amendment=False)


@reporter_view("POST")
def amend(request: HttpRequest, pk: int) -> HttpResponse:
    return _review_action(request, pk, amendment=True)


def _panel_action(
    request: HttpRequest, pk: int, *, form: str, anchor: str, run: Callable[[Any], object], done_message: str
) -> HttpResponse:
    """Run one review-panel action (`run(study)`: a note, an explanation draft) on a study.

    On success: a message and back to the panel's anchor on the study page; on a ReviewError the
    page is shown again with the error next to `form`.
    """
    study = get_study_for(request.user, pk)
    try:
        run(study)
    except review_service.ReviewError as error:
        return _rerender_with_error(request, study, error, form)
    messages.success(request, done_message)
    return redirect(reverse("radiology:study", args=[study.pk]) + f"#{anchor}")


@reporter_view("POST")
def add_note(request: HttpRequest, pk: int) -> HttpResponse:
    return _panel_action(
        request, pk, form="note", anchor="notes", done_message=_("Note added."),
        run=lambda study: review_service.add_note(
            study,
            user=request.user,
            text=request.POST.get("text", ""),
            for_patient=request.POST.get("for_patient") == "on",
            request=request,
        ),
    )


@reporter_view("POST")
def regenerate_explanation(request: HttpRequest, pk: int) -> HttpResponse:
    return _panel_action(
        request, pk, form="explanation", anchor="explanation", done_message=_("A new draft explanation was requested."),
        run=lambda study: review_service.regenerate_explanation(study, user=request.user, request=request),
    )


# --- Patient history --------------------------------------------------------------------------


@staff_view("GET")
def patient_history(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for(request.user, pk)
    studies = list(queries.with_ai_result(patient.studies.all()).order_by("-created_at", "-id"))
    reviews: dict[int, list] = {}
    for r in Review.objects.filter(study__patient=patient).select_related("author").order_by("study_id", "-version"):
        reviews.setdefault(r.study_id, []).append(r)
    notes: dict[int, list] = {}
    for n in ClinicalNote.objects.filter(study__patient=patient).select_related("author"):
        notes.setdefault(n.study_id, []).append(n)
    timeline = [{"study": s, "reviews": reviews.get(s.pk, []), "notes": notes.get(s.pk, [])} for s in studies]
    record("radiology.patient_history.view", request=request, obj=patient, patient_id=patient.pk, studies=len(studies))
    return render(request, "radiology/patient_history.html", {"patient": patient, "timeline": timeline})
