"""Issue 14 item 5: the patient's report carries the radiologist's own report text, their
name and the signing time, on the page and in the PDF (the latest signed version's)."""
import pypdfium2 as pdfium
import pytest
from django.urls import reverse
from django.utils import formats, timezone

from portal.workflow.review import amend, sign_off
from tests.factories import make_study

pytestmark = pytest.mark.django_db


def _pdf_text(data: bytes) -> str:
    pdf = pdfium.PdfDocument(data)
    return " ".join(" ".join(p.get_textpage().get_text_range() for p in pdf).split())


def test_page_and_pdf_show_report_text_signer_and_time(client, patient_alice, radiologist, second_radiologist):
    study = make_study(patient_alice.patient_record, label="glioma", confidence=0.95)
    sign_off(study, user=radiologist, decision="confirm", report_text="Enhancing left frontal lesion, 3 cm.")
    client.force_login(patient_alice)
    page = client.get(reverse("patient:report", args=[study.pk])).content.decode()
    review = study.latest_review()
    when = formats.date_format(timezone.localtime(review.signed_at), "DATETIME_FORMAT")
    assert "Enhancing left frontal lesion, 3 cm." in page
    assert "Dr Rita Radiologist" in page and when in page
    text = _pdf_text(client.get(reverse("patient:report_pdf", args=[study.pk])).content)
    assert "Enhancing left frontal lesion, 3 cm." in text
    assert f"Signed by Dr Rita Radiologist on {when}" in text

    # An amendment by another radiologist: the patient reads the new words and the new name.
    amend(study, user=second_radiologist, decision="confirm", reason="Second read",
          report_text="Lesion measures 3.4 cm on the coronal images.")
    page = client.get(reverse("patient:report", args=[study.pk])).content.decode()
    assert "Lesion measures 3.4 cm" in page and "Enhancing left frontal" not in page
    assert "Dr Sam Second" in page
    text = _pdf_text(client.get(reverse("patient:report_pdf", args=[study.pk])).content)
    assert "Lesion measures 3.4 cm" in text and "Signed by Dr Sam Second" in text
