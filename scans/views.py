"""Permission-checked file views: slice images, previews, heat maps and the de-identified
series export. Scan files never have a public URL: every response here is built after
scans.access has decided the user may see the object (404 otherwise), is audited, and is
sent with Cache-Control: private, no-store (portal.middleware adds it to every answer)."""
from __future__ import annotations

import io
import math
import zipfile

import pydicom
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from accounts.audit import record
from scans import imaging
from scans.access import get_series_for, get_slice_for, require_clinical_staff
from scans.deid import UidMapper, deidentify_dataset, pseudonym
from scans.dicom_read import header_tags
from scans.errors import ScanError
from scans.models import SlicePrediction, SourceFormat


def _private(response: HttpResponse, filename: str, disposition: str = "inline") -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


def _png_response(data: bytes, filename: str) -> HttpResponse:
    return _private(HttpResponse(data, content_type="image/png"), filename)


def _error(exc: ScanError) -> JsonResponse:
    return JsonResponse(exc.as_dict(), status=exc.status)


def _float_param(request: HttpRequest, name: str) -> float | None:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite")
    return value


@require_GET
@login_required
def slice_image(request: HttpRequest, pk: int) -> HttpResponse:
    """PNG of a slice at its default window, or ?wc=&ww= (window centre/width) and ?size=."""
    sl = get_slice_for(request.user, pk)
    try:
        wc, ww = _float_param(request, "wc"), _float_param(request, "ww")
        size = request.GET.get("size")
        size_value = int(size) if size else None
        if ww is not None and ww <= 0:
            raise ValueError("ww must be positive")
        if size_value is not None and not 8 <= size_value <= imaging.MAX_RENDER_SIZE:
            raise ValueError(f"size must be between 8 and {imaging.MAX_RENDER_SIZE}")
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    if (wc is None) != (ww is None):
        return JsonResponse({"error": "give both wc and ww, or neither"}, status=400)
    try:
        data = imaging.render_png(sl, wc, ww, size_value)
    except ScanError as exc:
        return _error(exc)
    record("slice.view", request=request, obj=sl, patient_id=sl.series.study.patient_id, wc=wc, ww=ww)
    return _png_response(data, f"slice-{sl.pk}.png")


@require_GET
@login_required
def slice_thumbnail(request: HttpRequest, pk: int) -> HttpResponse:
    sl = get_slice_for(request.user, pk)
    try:
        data = imaging.render_thumbnail(sl)
    except ScanError as exc:
        return _error(exc)
    record("slice.thumbnail", request=request, obj=sl, patient_id=sl.series.study.patient_id)
    return _png_response(data, f"slice-{sl.pk}-thumb.png")


@require_GET
@login_required
def slice_heatmap(request: HttpRequest, pk: int) -> HttpResponse:
    """The heat-map overlay of the slice's latest prediction (404 if there is none)."""
    sl = get_slice_for(request.user, pk)
    result = (
        SlicePrediction.objects.filter(slice=sl).exclude(heatmap="").select_related("prediction")
        .order_by("-prediction__created_at", "-pk").first()
    )
    if result is None:
        raise Http404
    try:
        with result.heatmap.open("rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise Http404 from exc
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise Http404
    record("slice.heatmap", request=request, obj=sl, patient_id=sl.series.study.patient_id, prediction=result.prediction_id)
    return _png_response(data, f"slice-{sl.pk}-heatmap.png")


@require_GET
@login_required
def slice_tags(request: HttpRequest, pk: int) -> JsonResponse:
    """Staff only: the DICOM header of the slice's file for the viewer's tag panel (a JPEG or
    PNG upload has none: an empty list)."""
    require_clinical_staff(request.user)
    sl = get_slice_for(request.user, pk)
    tags: list[dict[str, str]] = []
    if sl.source_format == SourceFormat.DICOM:
        try:
            tags = header_tags(imaging.read_verified(sl.file, sl.sha256, sl.original_filename), sl.original_filename)
        except ScanError as exc:
            return _error(exc)
    record("slice.tags", request=request, obj=sl, patient_id=sl.series.study.patient_id)
    response = JsonResponse({"slice": sl.pk, "format": sl.source_format, "tags": tags})
    response["Cache-Control"] = "private, max-age=300"
    return response


def build_series_export(series) -> bytes:
    """A zip of the series de-identified (PS3.15 Basic profile): DICOM slices as DICOM with
    consistent new UIDs, JPEG/PNG slices re-encoded from pixels (no metadata survives)."""
    uids = UidMapper()
    patient_alias = pseudonym(series.study.patient.mrn)
    buffer = io.BytesIO()
    done: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, sl in enumerate(series.ordered_slices(), 1):
            if sl.source_format == SourceFormat.DICOM:
                if sl.file.name in done:  # frames of one multi-frame object share a file
                    continue
                done.add(sl.file.name)
                data = imaging.read_verified(sl.file, sl.sha256, sl.original_filename)
                ds = pydicom.dcmread(io.BytesIO(data))
                deidentify_dataset(ds, uids=uids, patient_pseudonym=patient_alias)
                out = io.BytesIO()
                ds.save_as(out, enforce_file_format=True)
                archive.writestr(f"series/{n:04d}.dcm", out.getvalue())
            else:
                archive.writestr(f"series/{n:04d}.png", imaging.encode_png(imaging.slice_pixels(sl)))
    return buffer.getvalue()


@require_GET
@login_required
def series_export(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff only: the series as a de-identified DICOM zip."""
    require_clinical_staff(request.user)
    series = get_series_for(request.user, pk)
    try:
        data = build_series_export(series)
    except ScanError as exc:
        return _error(exc)
    record("series.export", request=request, obj=series, patient_id=series.study.patient_id, deidentified=True)
    response = HttpResponse(data, content_type="application/zip")
    return _private(response, f"series-{series.pk}-deidentified.zip", disposition="attachment")
