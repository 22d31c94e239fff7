"""POST /api/uploads/: the REST way in for scans (multipart; session or token auth). Same
rules as the upload page: staff for any patient, a patient only for their own record, an
administrator may override a PatientID mismatch. The declared request size is checked before
authentication parses the body."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import record
from portal.uploads.requests import files_refused, request_too_large, result_payload
from portal.workflow.ingest import UploadNotAllowed, flag, resolve_patient, submit_upload
from scans.errors import ScanError


class UploadRequestSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), help_text="DICOM, JPEG, PNG or zip files")
    patient = serializers.IntegerField(required=False, help_text="Patient id (staff only; patients upload for themselves)")
    allow_mismatch = serializers.BooleanField(
        required=False, default=False, help_text="Administrators only: import although PatientID differs from the MRN"
    )


class SeriesResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    series_instance_uid = serializers.CharField()
    slices = serializers.IntegerField()


class StudyResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study_instance_uid = serializers.CharField()
    series = SeriesResultSerializer(many=True)
    url = serializers.CharField(allow_null=True)
    status_url = serializers.CharField(allow_null=True)


class RejectedSerializer(serializers.Serializer):
    file = serializers.CharField()
    reason = serializers.CharField()


class UploadResultSerializer(serializers.Serializer):
    studies = StudyResultSerializer(many=True)
    rejected = RejectedSerializer(many=True)
    new_slices = serializers.IntegerField()


class UploadErrorSerializer(serializers.Serializer):
    file = serializers.CharField()
    error = serializers.CharField()
    code = serializers.CharField()


class UploadRefused(APIException):
    def __init__(self, exc: ScanError) -> None:
        self.status_code = exc.status
        super().__init__(detail=exc.as_dict())


def _refuse(request: Any, exc: ScanError) -> Response:
    record("scans.upload_refused", request=request, file=exc.filename, error=exc.message, status=exc.status, api=True)
    return Response(exc.as_dict(), status=exc.status)


class UploadView(APIView):
    parser_classes = [MultiPartParser]
    permission_classes = [permissions.IsAuthenticated]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        too_large = request_too_large(request._request)
        if too_large is not None:
            raise UploadRefused(too_large)
        # Authentication (CSRF of a session reads the form) and then the body itself may hit
        # Django's file and field limits: answer them as the documented 413 JSON.
        def authenticate_and_parse() -> None:
            super(UploadView, self).initial(request, *args, **kwargs)
            request.FILES  # noqa: B018 - parse the body here

        too_large = files_refused(authenticate_and_parse)
        if too_large is not None:
            raise UploadRefused(too_large)

    @extend_schema(
        operation_id="upload_scans",
        request={"multipart/form-data": UploadRequestSerializer},
        responses={
            201: UploadResultSerializer,
            400: OpenApiResponse(UploadErrorSerializer, "A bad file: names the file and the problem"),
            401: OpenApiResponse(description="Not authenticated"),
            404: OpenApiResponse(description="No such patient, or not yours"),
            409: OpenApiResponse(UploadErrorSerializer, "PatientID in the files differs from the patient's MRN"),
            413: OpenApiResponse(UploadErrorSerializer, "Upload, image or archive too large"),
            415: OpenApiResponse(UploadErrorSerializer, "Not a DICOM, JPEG, PNG or zip file"),
        },
        summary="Upload scans for a patient",
    )
    def post(self, request: Request) -> Response:
        user = request.user
        if not user.is_active or not (user.is_clinical_staff or user.is_patient):
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        allow_mismatch = flag(request.data.get("allow_mismatch"))
        try:
            patient = resolve_patient(user, request.data.get("patient"))
            result = submit_upload(request.FILES.getlist("files"), patient=patient, user=user,
                                   allow_mismatch=allow_mismatch, request=request, api=True)
        except ScanError as exc:
            return _refuse(request, exc)
        except UploadNotAllowed:
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        return Response(result_payload(result, user), status=status.HTTP_201_CREATED)
