"""The report PDF renders: page 1 as an image shows the final class (text extracted and
pixels present), with the date, explanation and not-a-medical-device note."""
import io

import numpy as np
import pypdfium2 as pdfium
import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from scans.models import Patient
from tests.factories import make_study
from tests.patient.builders import sign

pytestmark = pytest.mark.django_db


def _page_one(data: bytes):
    pdf = pdfium.PdfDocument(data)
    page = pdf[0]
    text = page.get_textpage().get_text_range()
    image = page.render(scale=1.5).to_pil().convert("L")
    return len(pdf), text, np.asarray(image)


def test_pdf_download_shows_the_final_class(client, patient_alice, radiologist):
    study = make_study(Patient.objects.get(user=patient_alice), label="glioma", confidence=0.8)
    sign(study, radiologist, final_class="pituitary", decision="override", reason="Sellar mass")
    client.force_login(patient_alice)
    response = client.get(reverse("patient:report_pdf", args=[study.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    data = response.content
    assert data.startswith(b"%PDF")

    pages, text, pixels = _page_one(data)
    flat = " ".join(text.split())
    assert "Final finding: Pituitary tumour" in flat
    assert "Glioma" not in flat and "glioma" not in flat
    assert "Report signed:" in flat and "Date of the scan" in flat
    assert "What to ask your doctor" in flat
    assert "not a medical device" in flat.lower()
    # The page is really drawn: dark text on white, not a blank page.
    assert pixels.min() < 80 and pixels.max() > 240
    assert (pixels < 128).mean() > 0.005
    # The key slice is embedded as a picture.
    pdf = pdfium.PdfDocument(data)
    images = [o for page in pdf for o in page.get_objects() if o.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE]
    assert len(images) == 1
    assert AuditEvent.objects.filter(action="patient.report.pdf", object_id=str(study.pk)).exists()


def test_pdf_of_amended_report_has_the_marker(client, patient_alice, radiologist):
    study = make_study(Patient.objects.get(user=patient_alice), label="meningioma")
    sign(study, radiologist)
    sign(study, radiologist, final_class="notumor", decision="override", reason="Artefact")
    client.force_login(patient_alice)
    data = client.get(reverse("patient:report_pdf", args=[study.pk])).content
    pdf = pdfium.PdfDocument(io.BytesIO(data))
    text = " ".join(" ".join(p.get_textpage().get_text_range() for p in pdf).split())
    assert "Amended report (version 2)" in text
    assert "Final finding: No tumour" in text
