from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from portal.api import results, tokens, uploads, views

app_name = "api"
urlpatterns = [
    path("token/", tokens.TokenView.as_view(), name="token"),
    path("tokens/", tokens.TokenList.as_view(), name="token_list"),
    path("tokens/<int:pk>/", tokens.TokenDetail.as_view(), name="token_detail"),
    path("patients/", views.PatientList.as_view(), name="patient_list"),
    path("patients/<int:pk>/", views.PatientDetail.as_view(), name="patient_detail"),
    path("studies/", views.StudyList.as_view(), name="study_list"),
    path("studies/<int:pk>/", views.StudyDetail.as_view(), name="study_detail"),
    path("studies/<int:pk>/report/", views.StudyReport.as_view(), name="study_report"),
    path("studies/<int:pk>/sr.dcm", results.StudySR.as_view(), name="study_sr"),
    path("studies/<int:pk>/fhir/", results.StudyFHIR.as_view(), name="study_fhir"),
    path("studies/<int:pk>/notes/", views.StudyNotes.as_view(), name="study_notes"),
    path("studies/<int:pk>/reviews/", views.StudyReviews.as_view(), name="study_reviews"),
    path("uploads/", uploads.UploadView.as_view(), name="uploads"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path("docs/", views.SwaggerDocsView.as_view(url_name="api:schema"), name="docs"),
    # Keep last: any other /api/ path answers a JSON 404, never Django's HTML page.
    re_path(r"^", views.not_found, name="not_found"),
]
