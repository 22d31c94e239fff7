"""The patient report like a real portal's: what was scanned, newest first with distinct
titles, a PDF with identifiers and no heading left at a page foot, and an e-mail "a new
report is ready" that carries no health data."""
from __future__ import annotations

import datetime as dt
import re

import pypdfium2 as pdfium
import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from portal.workflow.review import add_note, sign_off
from scans.models import Patient, Study
from tests.factories import make_study
from tests.patient.builders import sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(patient_alice) -> Patient:
    record = Patient.objects.get(user=patient_alice)
    record.birth_date = dt.date(1980, 2, 29)
    record.save()
    return record


def _brain(study: Study, **fields) -> Study:
    fields = {"body_part": "BRAIN", "institution": "St Elsewhere", "modality": "MR", **fields}
    Study.objects.filter(pk=study.pk).update(**fields)
    study.refresh_from_db()
    return study


def test_reports_newest_scan_first_with_distinct_titles(client, patient_alice, alice, radiologist):
    old = _brain(make_study(alice, study_date=dt.date(2024, 5, 1)))
    new_a = _brain(make_study(alice, study_date=dt.date(2026, 3, 9)))
    new_b = _brain(make_study(alice, study_date=dt.date(2026, 3, 9)))
    for study in (new_a, new_b, old):  # the old scan is signed (and uploaded) last
        sign(study, radiologist)
    client.force_login(patient_alice)
    html = client.get(reverse("patient:home")).content.decode()
    order = [int(m) for m in re.findall(r'href="/patient/reports/(\d+)/"', html)]
    assert order == [new_b.pk, new_a.pk, old.pk]
    titles = re.findall(r'data-testid="report-title"><a [^>]*>([^<]+)</a>', html)
    assert len(set(titles)) == 3
    assert titles[2] == "MRI of the brain, May 1, 2024"
    assert titles[1].startswith("MRI of the brain, March 9, 2026") and "1 of 2" in titles[1]

    page = client.get(reverse("patient:report", args=[old.pk])).content.decode()
    scanned = page[page.index('data-testid="what-was-scanned"'):]
    assert "MRI" in scanned and "Brain" in scanned and "May 1, 2024" in scanned and "St Elsewhere" in scanned


def _pdf(client, study) -> pdfium.PdfDocument:
    response = client.get(reverse("patient:report_pdf", args=[study.pk]))
    assert response.status_code == 200
    return pdfium.PdfDocument(response.content)


def _text(page) -> str:
    return " ".join(page.get_textpage().get_text_range().split())


def test_pdf_carries_identifiers_on_page_one_and_every_footer(client, patient_alice, alice, radiologist):
    study = _brain(make_study(alice, study_date=dt.date(2026, 1, 15)), accession_number="ACC-77")
    sign(study, radiologist)
    client.force_login(patient_alice)
    pdf = _pdf(client, study)
    first = _text(pdf[0])
    for expected in ("Alice Patient", "MRN-ALICE", "Feb. 29, 1980", "MRI of the brain", "Jan. 15, 2026",
                     "St Elsewhere", "ACC-77"):
        assert expected in first, expected
    for page in pdf:
        assert "MRN MRN-ALICE" in _text(page)


@pytest.mark.parametrize("lines", range(0, 60, 4))
def test_pdf_never_leaves_a_heading_at_a_page_foot(client, patient_alice, alice, radiologist, lines):
    """Notes of growing length push the key-slice picture down the page: wherever the break
    falls, its heading is on the page that holds the picture."""
    study = _brain(make_study(alice))
    if lines:
        add_note(study, user=radiologist, text="\n".join(f"Line {i} of a long note for you." for i in range(lines)),
                 for_patient=True)
    sign(study, radiologist)
    client.force_login(patient_alice)
    pdf = _pdf(client, study)
    with_heading = [i for i in range(len(pdf)) if "A picture from your scan" in _text(pdf[i])]
    with_image = [i for i in range(len(pdf)) if any(o.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE for o in pdf[i].get_objects())]
    assert len(with_heading) == 1 and with_heading == with_image


def test_sign_off_emails_the_patient_that_a_report_is_ready_without_health_data(
    patient_alice, alice, radiologist, mailoutbox, django_capture_on_commit_callbacks
):
    study = _brain(make_study(alice, label="glioma", study_date=dt.date(2026, 2, 2)))
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(study, user=radiologist, decision="confirm", report_text="Enhancing left frontal mass.")
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [patient_alice.email]
    assert mail.subject == "A new report is ready in your patient portal"
    assert "/patient/" in mail.body
    words = (mail.subject + " " + mail.body).lower()
    for secret in ("glioma", "tumour", "mass", "brain", "mri", "2026", "alice", "mrn", "frontal", "radiologist"):
        assert secret not in words, secret
    assert AuditEvent.objects.filter(action="patient.notify.report_ready", patient_id=alice.pk).count() == 1


def test_no_email_when_the_patient_has_no_active_account(alice, radiologist, patient_alice, mailoutbox,
                                                        django_capture_on_commit_callbacks):
    patient_alice.is_active = False
    patient_alice.save()
    study = make_study(alice, label="glioma")
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(study, user=radiologist, decision="confirm")
    assert mailoutbox == []
