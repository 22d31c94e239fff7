"""The signed report in hospital formats: DICOM SR and a FHIR R4 Bundle. Same access rules as
`api:study_report`: the latest signed version of a released study, 404 before sign-off."""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts import audit
from hospital import fhir, results
from portal.api.views import ActiveUser
from scans.access import get_signed_report_for
from scans.models import Review, Study


def _signed(request: Request, pk: int) -> tuple[Study, Review]:
    return get_signed_report_for(request.user, pk)


class StudySR(APIView):
    """The DICOM SR (TID 1500 style) of the latest signed version, as stored in the PACS."""

    permission_classes = [ActiveUser]

    @extend_schema(responses={(200, "application/dicom"): OpenApiResponse(description="DICOM SR file"),
                              404: OpenApiResponse(description="Not found or not signed")})
    def get(self, request: Request, pk: int) -> HttpResponse:
        study, review = _signed(request, pk)
        data = results.encode(results.build_sr(results.Subject(study, review.prediction, review)))
        audit.record("api.report.sr", request=request._request, obj=study, patient_id=study.patient_id,
                     version=review.version)
        response = HttpResponse(data, content_type="application/dicom")
        response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-report-v{review.version}.dcm"'
        response["Cache-Control"] = "private, no-store"
        return response


class StudyFHIR(APIView):
    """A FHIR R4 Bundle: Patient, ImagingStudy, Observations and the DiagnosticReport."""

    permission_classes = [ActiveUser]

    @extend_schema(responses={(200, "application/fhir+json"): OpenApiResponse(description="FHIR R4 Bundle"),
                              404: OpenApiResponse(description="Not found or not signed")})
    def get(self, request: Request, pk: int) -> HttpResponse:
        study, review = _signed(request, pk)
        bundle = fhir.study_bundle(study, review)
        audit.record("api.report.fhir", request=request._request, obj=study, patient_id=study.patient_id,
                     version=review.version)
        response = HttpResponse(bundle.model_dump_json(exclude_none=True), content_type="application/fhir+json")
        response["Cache-Control"] = "private, no-store"
        return response
