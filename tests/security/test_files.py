"""Scan files have no public URL: they exist only behind the permission-checked views."""
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from scans.models import StudyStatus
from tests.factories import make_study

pytestmark = pytest.mark.django_db


def test_stored_scan_files_are_not_reachable_by_url(administrator, patient_alice):
    study = make_study(patient_alice.patient_record, status=StudyStatus.SIGNED)
    sl = study.series.first().slices.first()
    client = Client()
    client.force_login(administrator)
    assert sl.file.name and not settings.MEDIA_URL.startswith("/media/")
    for url in (settings.MEDIA_URL + sl.file.name, "/media/" + sl.file.name, "/static/../" + sl.file.name, "/" + sl.file.name):
        response = client.get(url)
        assert response.status_code == 404, url
    # The same image through the permission-checked view works, privately cached only.
    response = client.get(reverse("scans:slice_image", args=[sl.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"].startswith("private")
    assert settings.MEDIA_ROOT.resolve() not in [p.resolve() for p in map(__import__("pathlib").Path, settings.STATICFILES_DIRS)]
