"""What the viewer is given: the DICOM tag panel (staff only), the previous study for the
comparison pane, series thumbnails, and class names through the one display mapping."""
from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from portal.workflow.ingest import submit_upload
from scans.findings import class_label
from scans.models import Slice, Study
from tests.factories import make_study
from tests.ingest.builders import dicom_bytes

pytestmark = pytest.mark.django_db


def _dicom_slice(alice_record) -> Slice:
    data = dicom_bytes(patient_id=alice_record.mrn, BodyPartExamined="BRAIN", InstitutionName="St Elsewhere")
    submit_upload([("a.dcm", data)], patient=alice_record, user=None, process=False)
    return Slice.objects.get(series__study__patient=alice_record, source_format="dicom")


def test_tag_panel_lists_the_header_for_staff_only(client, radiologist, patient_alice, alice_record):
    sl = _dicom_slice(alice_record)
    url = reverse("scans:slice_tags", args=[sl.pk])
    client.force_login(patient_alice)
    assert client.get(url).status_code == 404  # a patient never sees raw headers
    client.force_login(radiologist)
    response = client.get(url)
    assert response.status_code == 200
    tags = {row["name"]: row for row in response.json()["tags"]}
    assert tags["Body Part Examined"]["value"] == "BRAIN"
    assert tags["Body Part Examined"]["tag"] == "(0018,0015)"
    assert "Pixel Data" not in tags
    assert AuditEvent.objects.filter(action="slice.tags", actor=radiologist).exists()
    sl.series.study.refresh_from_db()
    assert (sl.series.study.body_part, sl.series.study.institution) == ("BRAIN", "St Elsewhere")


def test_tag_panel_of_a_png_upload_is_empty(staff_client, study):
    sl = Slice.objects.filter(series__study=study).first()
    assert staff_client.get(reverse("scans:slice_tags", args=[sl.pk])).json()["tags"] == []


def test_previous_study_is_the_one_scanned_before(alice_record, patient_bob):
    today = dt.date.today()
    old = make_study(alice_record, study_date=today - dt.timedelta(days=300))
    older = make_study(alice_record, study_date=today - dt.timedelta(days=600))
    new = make_study(alice_record, study_date=today)
    make_study(patient_bob.patient_record, study_date=today - dt.timedelta(days=10))  # another patient
    assert new.previous_study() == old
    assert old.previous_study() == older
    assert older.previous_study() is None
    # Without a StudyDate the day it was stored counts.
    undated = make_study(alice_record)
    assert Study.objects.get(pk=undated.pk).previous_study() == new


def test_study_page_offers_comparison_thumbnails_and_class_labels(staff_client, alice_record):
    prior = make_study(alice_record, label="notumor", study_date=dt.date(2025, 1, 2))
    current = make_study(alice_record, label="glioma", study_date=dt.date(2026, 1, 2))
    html = staff_client.get(reverse("radiology:study", args=[current.pk])).content.decode()
    assert 'data-testid="compare-toggle"' in html and reverse("radiology:study", args=[prior.pk]) in html
    assert 'data-testid="series-thumb"' in html and "/thumbnail.png" in html
    html = staff_client.get(reverse("radiology:study", args=[prior.pk])).content.decode()
    assert 'data-testid="compare-toggle"' not in html  # nothing before the first study
    assert "No tumour" in html and ">notumor<" not in html and "Notumor" not in html


def test_out_of_scope_result_shows_no_class_bars(staff_client, alice_record):
    study = make_study(alice_record, label="", confidence=0.98)
    html = staff_client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    assert 'data-testid="prob-list"' not in html and 'data-testid="ai-confidence"' not in html
    assert "No AI class" in html


def test_one_display_mapping_for_class_codes():
    assert [class_label(c) for c in ("glioma", "notumor", "pituitary", "")] == [
        "Glioma", "No tumour", "Pituitary tumour", "No AI class"]
