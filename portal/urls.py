"""URL map. Each area has its own module; tests/security enumerate every pattern here, so
a new endpoint without an access rule fails the access-control matrix test."""
from django.contrib import admin
from django.urls import include, path

from portal import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/", include("accounts.urls")),
    path("patient/", include("portal.patient.urls")),
    path("radiology/", include("portal.radiology.urls")),
    path("uploads/", include("portal.uploads.urls")),
    path("scans/", include("scans.urls")),
    path("api/", include("portal.api.urls")),
    path("administration/", include("portal.administration.urls")),
    path("django-admin/", admin.site.urls),
]
