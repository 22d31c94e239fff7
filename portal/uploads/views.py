"""Upload page: staff upload for any patient, a patient for their own record. The browser
posts with XHR (static/js/upload.js: real progress bar) and gets JSON back; without
JavaScript the form posts normally and gets a page.

The request size is checked from CONTENT_LENGTH BEFORE the body is parsed. That is why the
view is csrf_exempt on the outside and applies CSRF protection itself after the size check:
Django's CSRF middleware reads request.POST, which would stream the whole body to disk first.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import record
from portal.uploads.requests import files_refused, request_too_large, result_payload
from portal.workflow.dicom_in import UnmatchedError, patient_from_upload
from portal.workflow.ingest import UploadNotAllowed, flag, resolve_patient, submit_upload
from scans.access import get_study_for, require_clinical_staff
from scans.errors import ScanError
from scans.models import Patient, Prediction

# The patient choice that makes a new record from the first DICOM file's header.
NEW_FROM_HEADER = "new-from-header"


def _is_xhr(request: HttpRequest) -> bool:
    return request.headers.get("x-requested-with") == "XMLHttpRequest" or "application/json" in request.headers.get("accept", "")


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_clinical_staff or request.user.is_patient):
        raise Http404
    if request.method == "POST":
        too_large = request_too_large(request)
        if too_large is not None:
            return _failure(request, too_large)
        # Parse now (the size is known to be fine) to answer limits clearly.
        refused = files_refused(lambda: request.FILES)
        if refused is not None:
            return _failure(request, refused)
    return _upload_checked(request)


def _failure(request: HttpRequest, exc: ScanError) -> HttpResponse:
    record("scans.upload_refused", request=request, file=exc.filename, error=exc.message, status=exc.status)
    if _is_xhr(request) or request.method != "POST" or exc.status == 413:
        return JsonResponse(exc.as_dict(), status=exc.status)
    return _render_form(request, error=exc, status=exc.status)


def _render_form(request: HttpRequest, *, error: ScanError | None = None, status: int = 200) -> HttpResponse:
    user = request.user
    context = {
        "patients": Patient.objects.visible_to(user).order_by("mrn") if user.is_clinical_staff else None,
        "own_patient": None if user.is_clinical_staff else Patient.objects.filter(user=user).first(),
        "can_override": user.is_administrator,
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "max_files": settings.UPLOAD_MAX_FILES,
        "error": error,
        "new_from_header": NEW_FROM_HEADER,
        "selected_patient": request.POST.get("patient", "") if request.method == "POST" else request.GET.get("patient", ""),
    }
    return render(request, "uploads/upload.html", context, status=status)


def _patient_for_upload(request: HttpRequest, files: list) -> Patient:
    if request.user.is_clinical_staff and request.POST.get("patient") == NEW_FROM_HEADER:
        return patient_from_upload(files, user=request.user, request=request)
    return resolve_patient(request.user, request.POST.get("patient"))


@csrf_protect
def _upload_checked(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render_form(request)
    user = request.user
    try:
        files = request.FILES.getlist("files")
        allow_mismatch = flag(request.POST.get("allow_mismatch"))
        with transaction.atomic():  # a record made from the header exists only if the upload succeeds
            patient = _patient_for_upload(request, files)
            result = submit_upload(files, patient=patient, user=user, allow_mismatch=allow_mismatch, request=request)
    except ScanError as exc:
        return _failure(request, exc)
    except UnmatchedError as exc:
        return _failure(request, ScanError("(upload)", exc.message, status=exc.status))
    except UploadNotAllowed:
        raise Http404 from None
    payload = result_payload(result, user)
    payload["already_uploaded"] = not result.new_slice_ids
    if payload["already_uploaded"]:
        messages.info(request, _("These files were already uploaded: nothing new was stored."))
    if user.is_clinical_staff and result.studies:
        payload["next"] = reverse("uploads:study", args=[result.studies[0].pk])
    else:
        if not payload["already_uploaded"]:
            messages.success(request, _("Thank you: your scans were received. A radiologist will review them."))
        payload["next"] = reverse("uploads:upload")
    if _is_xhr(request):
        return JsonResponse(payload, status=201)
    return redirect(payload["next"])


@require_GET
@login_required
def study(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff view of an uploaded study: its series with thumbnails and live processing status."""
    require_clinical_staff(request.user)
    study_obj = get_study_for(request.user, pk)
    series = []
    latest = {p.series_id: p for p in Prediction.objects.filter(series__study=study_obj).current()}
    for s in study_obj.series.order_by("series_number", "id"):
        slices = list(s.ordered_slices())
        step = max(1, len(slices) // 8)
        series.append({"series": s, "count": len(slices), "preview": slices[::step][:8], "prediction": latest.get(s.pk)})
    record("study.view", request=request, obj=study_obj, patient_id=study_obj.patient_id, page="upload-result")
    return render(request, "uploads/study.html", {"study": study_obj, "series_list": series})
