"""REST API views. Every object is fetched through scans.access (single objects) or
`visible_to(user)` (lists and DRF detail querysets), so an object the user
may not see is a 404, exactly as in the HTML pages."""
from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.templatetags.static import static
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import generics, permissions, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import audit
from portal.api import serializers as s
from scans.access import get_signed_report_for, get_study_for
from scans.models import Patient, Prediction, Series, Slice, Study, StudyStatus

ERR = s.ErrorSerializer
AUTH_ERRORS = {401: OpenApiResponse(ERR, "Not authenticated"), 403: OpenApiResponse(ERR, "CSRF failure or not allowed")}
NOT_FOUND = {404: OpenApiResponse(ERR, "No such object, or not yours to see")}
BAD_REQUEST = {400: OpenApiResponse(description="Invalid input: field name → list of messages")}


def _user_agent(request: Request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:200]


class ActiveUser(permissions.BasePermission):
    """Authenticated and active (session auth already drops inactive users; token auth
    refuses them with 401)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_active)


class ReporterOr404(permissions.BasePermission):
    """Reporting actions (sign, amend, notes): the one rule is User.may_report. Users outside
    the radiology area get 404, as in the pages, so the endpoint does not confirm the study
    exists; administrators, who see studies but may not report, get 403."""

    message = "Only a radiologist may sign, amend or add to a report."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.user.is_authenticated and not request.user.is_clinical_staff:
            raise Http404
        return bool(request.user.is_authenticated and request.user.may_report)


# --- Patients -------------------------------------------------------------------------------


class PatientList(generics.ListAPIView):
    """Patients you may see: your own record (patients) or every record (clinical staff)."""

    serializer_class = s.PatientSerializer
    permission_classes = [ActiveUser]

    def get_queryset(self) -> QuerySet[Patient]:
        return Patient.objects.visible_to(self.request.user).order_by("mrn")

    @extend_schema(responses={200: s.PatientSerializer(many=True), **AUTH_ERRORS, **NOT_FOUND})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class PatientDetail(generics.RetrieveAPIView):
    serializer_class = s.PatientSerializer
    permission_classes = [ActiveUser]

    def get_queryset(self) -> QuerySet[Patient]:
        return Patient.objects.visible_to(self.request.user)

    @extend_schema(responses={200: s.PatientSerializer, **AUTH_ERRORS, **NOT_FOUND})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        audit.record("api.patient.view", request=request._request, object_type="scans.patient",
                     object_id=kwargs["pk"], patient_id=kwargs["pk"], via="api")
        return response


# --- Studies --------------------------------------------------------------------------------


def _studies_for(user: Any) -> QuerySet[Study]:
    # A patient sees the series and slices the latest signed version covers, nothing newer.
    slices = Slice.objects.visible_to(user)
    series = Series.objects.filter(pk__in=slices.values("series_id")).prefetch_related(
        Prefetch("slices", queryset=slices), Prefetch("predictions", queryset=Prediction.objects.current())
    )
    return (
        Study.objects.visible_to(user)
        .select_related("patient")
        .prefetch_related(Prefetch("series", queryset=series), "reviews")
    )


class StudyList(generics.ListAPIView):
    """Studies you may see. Patients see only their own signed (released) studies."""

    serializer_class = s.StudySerializer
    permission_classes = [ActiveUser]

    def get_queryset(self) -> QuerySet[Study]:
        query = s.StudyQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        studies = _studies_for(self.request.user).order_by("-created_at", "-id")
        if "status" in query.validated_data:
            studies = studies.filter(status=query.validated_data["status"])
        if "patient" in query.validated_data:
            studies = studies.filter(patient_id=query.validated_data["patient"])
        return studies

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[c for c, _ in StudyStatus.choices], description="Only studies in this status"),
            OpenApiParameter("patient", int, description="Only this patient's studies (a patient id)"),
        ],
        responses={200: s.StudySerializer(many=True), **BAD_REQUEST, **AUTH_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class StudyDetail(generics.RetrieveAPIView):
    """One study with its series, the AI result per series (clinical staff) and its status."""

    serializer_class = s.StudyDetailSerializer
    permission_classes = [ActiveUser]

    def get_queryset(self) -> QuerySet[Study]:
        return _studies_for(self.request.user)

    @extend_schema(responses={200: s.StudyDetailSerializer, **AUTH_ERRORS, **NOT_FOUND})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        study = self.get_object()
        audit.record("api.study.view", request=request._request, obj=study, patient_id=study.patient_id, via="api")
        return Response(self.get_serializer(study).data)


class StudyReport(APIView):
    """The signed report of a released study (latest signed version). 404 until a
    radiologist has signed it, for everyone."""

    permission_classes = [ActiveUser]

    @extend_schema(responses={200: s.ReportSerializer, **AUTH_ERRORS, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        study, review = get_signed_report_for(request.user, pk)
        audit.record("api.report.view", request=request._request, obj=study, patient_id=study.patient_id,
                     version=review.version, via="api")
        return Response(s.ReportSerializer(s.ReportSerializer.build(study, review)).data)


def _review_error(exc: Any) -> Response:
    return Response({"detail": exc.message}, status=exc.status)


CONFLICT = {409: OpenApiResponse(ERR, "The study is in the wrong state for this action")}


class StudyNotes(APIView):
    """Add a clinical note to a study (radiologists only)."""

    permission_classes = [ActiveUser, ReporterOr404]

    @extend_schema(request=s.NoteCreateSerializer,
                   responses={201: s.NoteSerializer, **BAD_REQUEST, **AUTH_ERRORS, **NOT_FOUND})
    def post(self, request: Request, pk: int) -> Response:
        from portal.workflow import review as review_service

        study = get_study_for(request.user, pk)
        data = s.NoteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            note = review_service.add_note(
                study, user=request.user, text=data.validated_data["text"],
                for_patient=data.validated_data["for_patient"], request=request._request,
            )
        except review_service.ReviewError as exc:
            return _review_error(exc)
        body = {"id": note.pk, "study": study.pk, "author": str(note.author), "text": note.text,
                "for_patient": note.for_patient, "created_at": note.created_at}
        return Response(s.NoteSerializer(body).data, status=status.HTTP_201_CREATED)


class StudyReviews(APIView):
    """Write a report version: the first sign-off of a study awaiting review, or an
    amendment (a reason is required) of a released one."""

    permission_classes = [ActiveUser, ReporterOr404]

    @extend_schema(request=s.SignOffSerializer,
                   responses={201: s.ReportSerializer, **BAD_REQUEST, **AUTH_ERRORS, **NOT_FOUND, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        from portal.workflow import review as review_service

        study = get_study_for(request.user, pk)
        data = s.SignOffSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        action = review_service.amend if study.is_released else review_service.sign_off
        try:
            result = action(study, user=request.user, request=request._request, **data.validated_data)
        except review_service.ReviewError as exc:
            return _review_error(exc)
        study.refresh_from_db()
        return Response(s.ReportSerializer(s.ReportSerializer.build(study, result.review)).data,
                        status=status.HTTP_201_CREATED)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([permissions.AllowAny])
@authentication_classes([])
def not_found(request: Request) -> Response:
    return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)


# --- Docs -------------------------------------------------------------------------------------


class SwaggerDocsView(SpectacularSwaggerSplitView):
    """Swagger UI from the app's own static files (drf-spectacular-sidecar): no CDN, and
    the init script is a separate request, so the CSP needs no 'unsafe-inline'."""

    template_name = "api/swagger_ui.html"
    permission_classes = [permissions.AllowAny]

    def _swagger_ui_resource(self, filename: str) -> str:
        return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")

    def _swagger_ui_favicon(self) -> str:
        return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")
