"""Issue 18: patients see only the portal's own fields, never free text copied from DICOM
headers (StudyDescription / SeriesDescription can hold names)."""
from __future__ import annotations

import pypdfium2 as pdfium
import pytest
from django.test import Client
from django.urls import reverse

from scans.models import Patient, Series, Study
from tests.factories import make_study
from tests.patient.builders import sign

pytestmark = pytest.mark.django_db
STUDY_TEXT = "Referred by Dr Jekyll re Mrs Hyde"
SERIES_TEXT = "T2 FLAIR Hyde^Edwina"


@pytest.fixture
def alice_signed(patient_alice, radiologist):
    study = make_study(Patient.objects.get(user=patient_alice), label="glioma")
    Study.objects.filter(pk=study.pk).update(description=STUDY_TEXT, status_detail=f"Series {SERIES_TEXT} classified")
    Series.objects.filter(study=study).update(description=SERIES_TEXT)
    sign(study, radiologist)
    return study


def _leaks(text: str) -> bool:
    return "Jekyll" in text or "Hyde" in text


def test_patient_api_shows_no_dicom_free_text(patient_alice, alice_signed):
    client = Client()
    client.force_login(patient_alice)
    listed = client.get(reverse("api:study_list"))
    detail = client.get(reverse("api:study_detail", args=[alice_signed.pk]))
    report = client.get(reverse("api:study_report", args=[alice_signed.pk]))
    for response in (listed, detail, report):
        assert response.status_code == 200
        assert not _leaks(response.content.decode()), response.content.decode()
    body = detail.json()
    assert body["description"] is None and body["status_detail"] is None
    assert [s["description"] for s in body["series"]] == [None]
    assert body["final_class"] == "glioma" and body["series"][0]["slice_count"] == 3


def test_staff_still_get_the_dicom_descriptions(radiologist, alice_signed):
    client = Client()
    client.force_login(radiologist)
    body = client.get(reverse("api:study_detail", args=[alice_signed.pk])).json()
    assert body["description"] == STUDY_TEXT and body["series"][0]["description"] == SERIES_TEXT


def test_patient_pages_show_no_dicom_free_text(patient_alice, alice_signed):
    client = Client()
    client.force_login(patient_alice)
    for url in (reverse("patient:home"), reverse("patient:report", args=[alice_signed.pk]), reverse("patient:history")):
        response = client.get(url)
        assert response.status_code == 200
        assert not _leaks(response.content.decode()), url
    pdf = client.get(reverse("patient:report_pdf", args=[alice_signed.pk]))
    assert pdf.status_code == 200
    document = pdfium.PdfDocument(pdf.content)
    text = " ".join(page.get_textpage().get_text_range() for page in document)
    assert "Glioma" in text or "glioma" in text  # the text layer is readable
    assert not _leaks(text)
