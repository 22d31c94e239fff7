"""Issue 14: what the patient reads always matches what a radiologist signed.

The explanation approved at sign-off names the signed finding and no other (a browser's
CRLF newlines do not make an untouched draft "edited"; an override redrafts; a text naming
another class is refused and the redraft is shown), and only radiologists sign and amend
(User.may_report, used by the service, the pages and the API)."""
from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import tokens
from accounts.models import AuditEvent
from portal.workflow.explanations import draft_explanation, previews
from portal.workflow.review import ReviewError, add_note, amend, sign_off
from scans.explanations import ExplanationStatus
from scans.models import Review, StudyStatus
from tests.factories import make_study

pytestmark = pytest.mark.django_db


def _crlf(text: str) -> str:
    """What a browser posts for a textarea holding `text`."""
    return text.replace("\n", "\r\n")


@pytest.fixture
def meningioma_study(alice_record):
    """The issue's case: the AI says meningioma; the radiologist clicks Generate."""
    study = make_study(alice_record, label="meningioma", confidence=0.88)
    draft_explanation(study)
    return study


# --- 1. The explanation names the signed class and no other -------------------------------------


def test_untouched_draft_posted_with_crlf_is_not_an_edit(meningioma_study, radiologist):
    draft = meningioma_study.explanations.get()
    result = sign_off(meningioma_study, user=radiologist, decision="confirm", explanation_text=_crlf(draft.text) + " \r\n")
    assert result.explanation.pk == draft.pk and result.explanation.edited_by is None
    assert result.explanation.text == draft.text
    assert AuditEvent.objects.get(action="review.sign_off").detail["explanation_edited"] is False


def test_override_with_the_untouched_draft_is_refused_and_the_redraft_proposed(meningioma_study, radiologist):
    """The issue's steps over the service: Generate, override to pituitary, leave the box as it
    was (CRLF, as a browser posts it), sign. Nothing meningioma-worded reaches the patient."""
    draft = meningioma_study.explanations.get()
    with pytest.raises(ReviewError) as refused:
        sign_off(meningioma_study, user=radiologist, decision="override", final_class="pituitary",
                 reason="Sellar mass", explanation_text=_crlf(draft.text))
    assert "meningioma" in refused.value.message and "pituitary tumour" in refused.value.message
    proposed = refused.value.field_values["explanation_text"]
    assert "pituitary" in proposed and "meningioma" not in proposed.lower()
    assert not Review.objects.exists()
    meningioma_study.refresh_from_db()
    assert meningioma_study.status == StudyStatus.AWAITING_REVIEW
    # Signing the proposed text (as the page now shows it) approves exactly that text.
    approved = sign_off(meningioma_study, user=radiologist, decision="override", final_class="pituitary",
                        reason="Sellar mass", explanation_text=_crlf(proposed)).explanation
    assert approved.text == proposed and approved.final_class == "pituitary" and approved.edited_by is None


def test_the_preview_shown_before_signing_is_the_text_the_patient_gets(meningioma_study, radiologist):
    draft = meningioma_study.explanations.get()
    shown = previews(meningioma_study, draft)
    assert shown["confirm:"] == draft.text
    assert "meningioma" not in shown["override:pituitary"].lower() and "did not agree" in shown["override:pituitary"]
    approved = sign_off(meningioma_study, user=radiologist, decision="override", final_class="pituitary",
                        reason="Sellar mass", explanation_text=_crlf(shown["override:pituitary"])).explanation
    assert approved.text == shown["override:pituitary"]
    assert meningioma_study.explanations.filter(status=ExplanationStatus.APPROVED).get() == approved


def test_override_without_a_text_redrafts_for_the_final_class(meningioma_study, radiologist):
    approved = sign_off(meningioma_study, user=radiologist, decision="override", final_class="pituitary",
                        reason="Sellar mass").explanation
    assert "pituitary" in approved.text and "meningioma" not in approved.text.lower()


@pytest.mark.parametrize("text, problem", [
    ("Your scan shows a meningioma. It is not a glioma. Please talk with your doctor about next steps.", "glioma"),
    ("Your scan shows a growth. Please talk with your doctor about what happens next and what it means.", "does not name"),
])
def test_an_edited_text_naming_another_class_or_none_is_refused(meningioma_study, radiologist, text, problem):
    with pytest.raises(ReviewError, match=problem):
        sign_off(meningioma_study, user=radiologist, decision="confirm", explanation_text=text)
    assert not Review.objects.exists()


def test_the_page_refuses_the_untouched_draft_and_shows_the_redraft(client, meningioma_study, radiologist):
    """No script: the browser posts the meningioma draft with CRLF newlines."""
    draft = meningioma_study.explanations.get()
    client.force_login(radiologist)
    response = client.post(reverse("radiology:sign_off", args=[meningioma_study.pk]), {
        "decision": "override", "final_class": "pituitary", "reason": "Sellar mass",
        "explanation_text": _crlf(draft.text),
    })
    assert response.status_code == 400
    assert not Review.objects.exists()
    box = response.context["posted"]["explanation_text"]
    assert "pituitary" in box and "meningioma" not in box.lower()
    assert "speaks of meningioma" in response.content.decode()


# --- 2. Only radiologists sign and amend --------------------------------------------------------


def test_an_administrator_cannot_sign_amend_or_write_notes(study, radiologist, administrator):
    for action in (lambda: sign_off(study, user=administrator, decision="confirm"),
                   lambda: add_note(study, user=administrator, text="hello", for_patient=True)):
        with pytest.raises(ReviewError) as refused:
            action()
        assert refused.value.status == 403
    sign_off(study, user=radiologist, decision="confirm")
    with pytest.raises(ReviewError) as refused:
        amend(study, user=administrator, decision="override", final_class="meningioma", reason="Second look")
    assert refused.value.status == 403
    assert Review.objects.filter(study=study).count() == 1


def test_an_administrator_is_refused_by_the_pages_and_the_api(client, study, radiologist, administrator):
    client.force_login(administrator)
    page = client.post(reverse("radiology:sign_off", args=[study.pk]), {"decision": "confirm"})
    assert page.status_code == 403
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token " + tokens.issue(administrator, "test")[1])
    url = reverse("api:study_reviews", args=[study.pk])
    assert api.post(url, {"decision": "confirm"}, format="json").status_code == 403
    sign_off(study, user=radiologist, decision="confirm")
    assert api.post(url, {"decision": "override", "final_class": "meningioma", "reason": "x"}, format="json").status_code == 403
    assert client.post(reverse("radiology:amend", args=[study.pk]),
                       {"decision": "override", "final_class": "meningioma", "reason": "x"}).status_code == 403
    assert Review.objects.filter(study=study).count() == 1
    # The study page shows an administrator no review forms.
    body = client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    assert 'data-testid="amend-form"' not in body and 'data-testid="not-a-reporter"' in body


# --- 3. Images that cannot be assessed ------------------------------------------------------------

CLASS_WORDS = ("glioma", "meningioma", "pituitary", "tumour", "tumor")


def _pdf_text(data: bytes) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    return " ".join(" ".join(p.get_textpage().get_text_range() for p in pdf).split())


@pytest.fixture
def photo_study(alice_record):
    """The issue's case: a colour photo the AI called "Not a brain MRI"."""
    return make_study(alice_record, label="", n_slices=1)


def test_unassessable_needs_a_category_and_a_reason(photo_study, radiologist):
    with pytest.raises(ReviewError, match="Choose why"):
        sign_off(photo_study, user=radiologist, decision="unassessable", reason="A holiday photo")
    with pytest.raises(ReviewError, match="reason is required"):
        sign_off(photo_study, user=radiologist, decision="unassessable", unassessable_reason="not_brain_mri")
    with pytest.raises(ReviewError, match="no tumour class"):
        sign_off(photo_study, user=radiologist, decision="unassessable", unassessable_reason="not_brain_mri",
                 reason="A holiday photo", final_class="notumor")
    with pytest.raises(ReviewError, match="cannot be assessed"):
        sign_off(photo_study, user=radiologist, decision="confirm")
    assert not Review.objects.exists()


def test_patient_gets_a_plain_message_no_class_and_no_image(client, photo_study, radiologist, patient_alice):
    result = sign_off(photo_study, user=radiologist, decision="unassessable", unassessable_reason="not_brain_mri",
                      reason="A colour photograph, not an MRI.")
    assert (result.review.final_class, result.review.unassessable_reason) == ("unassessable", "not_brain_mri")
    assert "could not be assessed" in result.explanation.text
    assert AuditEvent.objects.get(action="review.sign_off").detail["unassessable_reason"] == "not_brain_mri"

    client.force_login(patient_alice)
    page = client.get(reverse("patient:report", args=[photo_study.pk])).content.decode()
    assert "could not be assessed" in page and "care team will contact you" in page
    assert not any(word in page.lower() for word in CLASS_WORDS)
    assert 'data-testid="key-slice"' not in page and "your scan" not in page.lower()
    text = _pdf_text(client.get(reverse("patient:report_pdf", args=[photo_study.pk])).content)
    assert "could not be assessed" in text and "care team will contact you" in text
    assert not any(word in text.lower() for word in CLASS_WORDS)
    assert "picture from your scan" not in text.lower()
    photo = photo_study.series.get().slices.get()
    assert client.get(reverse("scans:slice_image", args=[photo.pk])).status_code == 404
    history = client.get(reverse("patient:history")).content.decode()
    assert "Images could not be assessed" in history and not any(w in history.lower() for w in CLASS_WORDS)


def test_the_api_signs_unassessable_and_reports_it(photo_study, radiologist, patient_alice):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token " + tokens.issue(radiologist, "test")[1])
    url = reverse("api:study_reviews", args=[photo_study.pk])
    refused = api.post(url, {"decision": "unassessable", "reason": "Motion"}, format="json")
    assert refused.status_code == 400 and "why" in refused.json()["detail"]
    signed = api.post(url, {"decision": "unassessable", "unassessable_reason": "non_diagnostic",
                            "reason": "Severe motion artefact"}, format="json")
    assert signed.status_code == 201, signed.content
    body = signed.json()
    assert body["final_class"] == "unassessable" and body["final_class_display"] == "Images could not be assessed"
    patient = APIClient()
    patient.force_authenticate(patient_alice)
    report = patient.get(reverse("api:study_report", args=[photo_study.pk])).json()
    assert report["final_class"] == "unassessable" and "could not be assessed" in report["explanation"]
