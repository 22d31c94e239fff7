"""Issue 14 in the browser, exactly as a radiologist does it: the AI says meningioma, they
click Generate, override to pituitary tumour with a reason, leave the explanation box as it
is and sign. The patient's page and PDF must never mention meningioma."""
from __future__ import annotations

import pypdfium2 as pdfium
import pytest
from django.urls import reverse

from scans.explanations import ExplanationStatus
from scans.models import Review
from tests.browser.conftest import log_in
from tests.factories import make_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _pdf_text(data: bytes) -> str:
    pdf = pdfium.PdfDocument(data)
    return " ".join(" ".join(p.get_textpage().get_text_range() for p in pdf).split())


def _patient_reads(page, patient, study) -> tuple[str, str]:
    """Log out, log in as the patient: (report page text, PDF text)."""
    page.get_by_role("button", name="Log out").click()
    log_in(page, patient.email)
    page.goto(reverse("patient:report", args=[study.pk]))
    pdf = page.request.get(reverse("patient:report_pdf", args=[study.pk]))
    assert pdf.status == 200
    return page.locator("main").inner_text(), _pdf_text(pdf.body())


def _sign_off(page, study, *, final_class_shown: str) -> Review:
    """Click "Sign off"; the page shows the final class; returns the signed Review."""
    page.get_by_test_id("sign-off").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("final-class").inner_text() == final_class_shown
    return Review.objects.get(study=study)


def test_override_with_untouched_explanation_never_shows_the_ai_class(page, radiologist, patient_alice):
    study = make_study(patient_alice.patient_record, label="meningioma", confidence=0.88, n_slices=3)
    log_in(page, radiologist.email)
    page.goto(reverse("radiology:study", args=[study.pk]))
    page.get_by_test_id("regenerate").click()  # "Generate"
    page.wait_for_load_state("networkidle")
    box = page.get_by_test_id("explanation-text")
    assert "meningioma" in box.input_value()  # the draft for the AI class, as the issue found it

    page.get_by_test_id("decision-override").check()
    page.get_by_test_id("final-class-select").select_option("pituitary")
    page.get_by_test_id("override-reason").fill("Sellar mass arising from the pituitary gland.")
    # Before signing, the box already holds the text the patient will get.
    shown = box.input_value()
    assert "pituitary" in shown and "meningioma" not in shown.lower()
    review = _sign_off(page, study, final_class_shown="Pituitary tumour")
    assert (review.decision, review.final_class) == ("override", "pituitary")
    approved = study.explanations.get(status=ExplanationStatus.APPROVED)
    assert " ".join(approved.text.split()) == " ".join(shown.split())

    body, text = _patient_reads(page, patient_alice, study)
    assert "Pituitary tumour" in body
    assert "meningioma" not in body.lower()
    assert "Final finding: Pituitary tumour" in text
    assert "meningioma" not in text.lower()


def test_images_that_cannot_be_assessed_reach_the_patient_as_a_plain_message(page, radiologist, patient_alice):
    """A colour photo the AI called "not a brain MRI": the radiologist records that the images
    cannot be assessed; the patient is told so plainly, with no class and no picture."""
    study = make_study(patient_alice.patient_record, label="", n_slices=1)
    log_in(page, radiologist.email)
    page.goto(reverse("radiology:study", args=[study.pk]))
    assert not page.get_by_test_id("unassessable-reason-sign").is_visible()
    page.get_by_test_id("decision-unassessable").check()
    page.get_by_test_id("unassessable-reason-sign").select_option("not_brain_mri")
    page.get_by_test_id("override-reason").fill("A colour photograph, not an MRI of the brain.")
    shown = page.get_by_test_id("explanation-text").input_value()
    assert "could not be assessed" in shown and "tumour" not in shown.lower()
    review = _sign_off(page, study, final_class_shown="Images could not be assessed")
    assert (review.decision, review.unassessable_reason) == ("unassessable", "not_brain_mri")

    body, text = _patient_reads(page, patient_alice, study)
    assert "could not be assessed" in body and "care team will contact you" in body
    for word in ("glioma", "meningioma", "pituitary", "tumour", "your scan"):
        assert word not in body.lower(), word
    assert page.get_by_test_id("key-slice").count() == 0
    assert "could not be assessed" in text
    for word in ("glioma", "meningioma", "pituitary", "tumour", "picture from your scan"):
        assert word not in text.lower(), word
