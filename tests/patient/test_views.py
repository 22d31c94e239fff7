"""Patient pages: own signed reports only, the radiologist's class, the amended marker,
the approved explanation, notes for the patient, the key slice, history, and the audit."""
import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from portal.workflow.explanations import draft_explanation
from scans.models import ClinicalNote, Patient, StudyStatus
from tests.factories import make_study
from tests.patient.builders import sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, patient_alice):
    client.force_login(patient_alice)
    return client


@pytest.fixture
def alice_signed(patient_alice, radiologist):
    study = make_study(Patient.objects.get(user=patient_alice), label="glioma", confidence=0.95)
    sign(study, radiologist)
    return study


def test_home_lists_only_own_signed_reports(alice_client, alice_signed, patient_alice, patient_bob, radiologist):
    unsigned = make_study(Patient.objects.get(user=patient_alice), label="meningioma")
    draft_explanation(unsigned)
    bob_study = make_study(Patient.objects.get(user=patient_bob), label="pituitary")
    sign(bob_study, radiologist)
    response = alice_client.get(reverse("patient:home"))
    assert response.status_code == 200
    reports = response.context["reports"]
    assert [r.study.pk for r in reports] == [alice_signed.pk]
    html = response.content.decode()
    assert reverse("patient:report", args=[alice_signed.pk]) in html
    assert reverse("patient:report", args=[unsigned.pk]) not in html
    assert "Glioma" in html and "Pituitary" not in html
    assert AuditEvent.objects.filter(action="patient.reports.list", actor=patient_alice).exists()


def test_own_signed_report_shows_finding_explanation_slice_and_date(alice_client, alice_signed, patient_alice):
    response = alice_client.get(reverse("patient:report", args=[alice_signed.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="final-class">Glioma<' in html
    assert "What to ask your doctor" in html and "Do I need more tests, such as a biopsy?" in html
    key_slice = alice_signed.series.first().predictions.first().key_slice
    assert reverse("scans:slice_image", args=[key_slice.pk]) in html
    assert reverse("patient:report_pdf", args=[alice_signed.pk]) in html
    assert 'data-testid="amended-marker"' not in html
    event = AuditEvent.objects.get(action="patient.report.view", actor=patient_alice)
    assert event.object_id == str(alice_signed.pk) and event.patient_id == alice_signed.patient_id


def test_key_slice_image_loads_for_the_patient(alice_client, alice_signed):
    key_slice = alice_signed.series.first().predictions.first().key_slice
    response = alice_client.get(reverse("scans:slice_image", args=[key_slice.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


@pytest.mark.parametrize("status", [StudyStatus.AWAITING_REVIEW, StudyStatus.PROCESSING, StudyStatus.FAILED])
def test_unsigned_report_is_404(alice_client, patient_alice, status):
    study = make_study(Patient.objects.get(user=patient_alice), status=status)
    draft_explanation(study)
    for name in ("patient:report", "patient:report_pdf"):
        assert alice_client.get(reverse(name, args=[study.pk])).status_code == 404


def test_other_patients_report_is_404(alice_client, patient_bob, radiologist):
    bob_study = make_study(Patient.objects.get(user=patient_bob))
    sign(bob_study, radiologist)
    for name in ("patient:report", "patient:report_pdf"):
        assert alice_client.get(reverse(name, args=[bob_study.pk])).status_code == 404
    assert alice_client.get(reverse("patient:report", args=[999999])).status_code == 404


def test_staff_and_anonymous_do_not_use_the_patient_pages(client, radiologist, alice_signed):
    url = reverse("patient:report", args=[alice_signed.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(radiologist)
    assert client.get(url).status_code == 404
    assert client.get(reverse("patient:history")).status_code == 404


def test_overridden_report_shows_the_radiologists_class_not_the_ai(alice_client, patient_alice, radiologist):
    study = make_study(Patient.objects.get(user=patient_alice), label="glioma", confidence=0.97)
    sign(study, radiologist, final_class="meningioma", decision="override", reason="Extra-axial, dural tail")
    html = alice_client.get(reverse("patient:report", args=[study.pk])).content.decode()
    assert 'data-testid="final-class">Meningioma<' in html
    assert "glioma" not in html.lower()
    assert "Extra-axial" not in html  # the clinical reason is not the patient's note


def test_amended_report_shows_the_latest_version_and_a_marker(alice_client, alice_signed, radiologist):
    sign(alice_signed, radiologist, final_class="notumor", decision="override", reason="Artefact on review")
    response = alice_client.get(reverse("patient:report", args=[alice_signed.pk]))
    html = response.content.decode()
    assert 'data-testid="amended-marker"' in html and "version 2" in html
    assert 'data-testid="final-class">No tumour<' in html
    assert "Your scan shows no tumour." in html
    home = alice_client.get(reverse("patient:home")).content.decode()
    assert 'data-testid="amended-marker"' in home


def test_only_notes_for_the_patient_are_shown(alice_client, alice_signed, radiologist):
    # Notes written before sign-off; one is for the patient.
    study = alice_signed
    html_before = alice_client.get(reverse("patient:report", args=[study.pk])).content.decode()
    assert "A note from your radiologist" not in html_before
    # A new amendment releases the notes written before it.
    ClinicalNote.objects.create(study=study, author=radiologist, text="Please book a follow-up scan.", for_patient=True)
    ClinicalNote.objects.create(study=study, author=radiologist, text="Internal: compare with 2019 CT.")
    html_unreleased = alice_client.get(reverse("patient:report", args=[study.pk])).content.decode()
    assert "Please book a follow-up scan." not in html_unreleased  # written after the signed version
    sign(study, radiologist, reason="Added a note")
    html = alice_client.get(reverse("patient:report", args=[study.pk])).content.decode()
    assert "Please book a follow-up scan." in html
    assert "Internal: compare" not in html


def test_unapproved_explanation_is_never_shown(alice_client, patient_alice, radiologist):
    study = make_study(Patient.objects.get(user=patient_alice), label="pituitary")
    sign(study, radiologist)
    # A later draft (e.g. regenerated) is not shown until a radiologist approves it.
    draft = draft_explanation(study)
    type(draft).objects.filter(pk=draft.pk).update(text="UNAPPROVED DRAFT TEXT about the pituitary tumour")
    html = alice_client.get(reverse("patient:report", args=[study.pk])).content.decode()
    assert "UNAPPROVED DRAFT TEXT" not in html
    assert "Is the growth making too much of a hormone?" in html  # the approved text


def test_history_timeline(alice_client, alice_signed, radiologist, patient_alice):
    sign(alice_signed, radiologist, final_class="meningioma", decision="override", reason="Second look")
    response = alice_client.get(reverse("patient:history"))
    assert response.status_code == 200
    kinds = [e.kind for e in response.context["events"]]
    assert sorted(kinds) == ["amended", "scan", "signed"]
    html = response.content.decode()
    assert "Report amended" in html and "Finding: Meningioma" in html and "Finding: Glioma" in html
    assert AuditEvent.objects.filter(action="patient.history.view", actor=patient_alice).exists()
