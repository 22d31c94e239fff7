"""Issue 14 item 4: a signed study is immutable. Images arriving for it by any route (the
upload service behind the page and the API, `import_scans`) are held as an addendum: the
study goes to NEW_IMAGES and back on the worklist, the patient keeps the signed version and
none of the new images, the grown series is classified again so every slice has a result,
and an amendment releases them. Every step is audited."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from portal.workflow.ingest import submit_upload
from portal.workflow.review import amend, sign_off
from scans.models import Prediction, Slice, Study, StudyStatus
from tests.ingest import builders as b

pytestmark = pytest.mark.django_db

STUDY_UID = "1.2.826.0.1.3680043.8.498.77"
SERIES_UID = "1.2.826.0.1.3680043.8.498.771"


def _slice(i: int, *, series_uid: str = SERIES_UID, series_number: int = 1) -> tuple[str, bytes]:
    data = b.dicom_bytes(patient_id="MRN-ALICE", study_uid=STUDY_UID, series_uid=series_uid, instance_number=i + 1,
                         position=(0.0, 0.0, 2.5 * i), seed=i, sop_uid=f"{series_uid}.{i}", SeriesNumber=series_number)
    return f"s{series_number}-{i}.dcm", data


@pytest.fixture
def signed_study(django_capture_on_commit_callbacks, patient_alice, radiologist):
    with django_capture_on_commit_callbacks(execute=True):
        result = submit_upload([_slice(i) for i in range(3)], patient=patient_alice.patient_record, user=radiologist)
    study = result.studies[0]
    study.refresh_from_db()
    assert study.status == StudyStatus.AWAITING_REVIEW
    sign_off(study, user=radiologist, decision="override", final_class="glioma", reason="Read", report_text="Version one.")
    study.refresh_from_db()
    return study


def _patient_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_new_images_after_sign_off_are_held_until_an_amendment(
    django_capture_on_commit_callbacks, signed_study, patient_alice, radiologist, client, tmp_path
):
    study = signed_study
    old_ids = set(Slice.objects.filter(series__study=study).values_list("pk", flat=True))
    # A file added to the signed series (upload service), and a new series (import_scans).
    with django_capture_on_commit_callbacks(execute=True):
        submit_upload([_slice(3)], patient=patient_alice.patient_record, user=radiologist)
    second = "1.2.826.0.1.3680043.8.498.772"
    for name, data in (_slice(0, series_uid=second, series_number=2), _slice(1, series_uid=second, series_number=2)):
        (tmp_path / name).write_bytes(data)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_scans", str(tmp_path), "--patient", "MRN-ALICE", stdout=io.StringIO())

    study.refresh_from_db()
    assert study.status == StudyStatus.NEW_IMAGES
    new_ids = set(Slice.objects.filter(series__study=study).values_list("pk", flat=True)) - old_ids
    assert len(new_ids) == 3
    assert set(study.new_images_after_sign_off().values_list("pk", flat=True)) == new_ids
    events = AuditEvent.objects.filter(action="study.new_images_after_sign_off", object_id=str(study.pk))
    assert events.count() == 2 and events.first().detail["signed_version"] == 1

    # Every slice of the grown series has a result: it was classified again.
    predictions = {p.series.series_instance_uid: p for p in Prediction.objects.filter(series__study=study).current()}
    assert predictions[SERIES_UID].slice_count == 4 and predictions[SERIES_UID].slice_results.count() == 4
    assert predictions[second].slice_results.count() == 2
    assert AuditEvent.objects.filter(action="series.reclassify", detail__slices=4).exists()

    # Back on the worklist, flagged.
    client.force_login(radiologist)
    worklist = client.get(reverse("radiology:worklist")).content.decode()
    assert f'data-study-id="{study.pk}"' in worklist and 'data-testid="new-images-flag"' in worklist
    page = client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    assert 'data-testid="new-images-banner"' in page
    for pk in new_ids:
        assert client.get(reverse("scans:slice_image", args=[pk])).status_code == 200

    # The patient keeps the signed version and sees none of the new images.
    alice = _patient_client(patient_alice)
    report = alice.get(reverse("patient:report", args=[study.pk]))
    assert report.status_code == 200 and "Version one." in report.content.decode()
    for pk in new_ids:
        assert alice.get(reverse("scans:slice_image", args=[pk])).status_code == 404
    for pk in old_ids:
        assert alice.get(reverse("scans:slice_image", args=[pk])).status_code == 200
    api = alice.get(reverse("api:study_detail", args=[study.pk])).json()
    assert [(s["series_instance_uid"], s["slice_count"]) for s in api["series"]] == [(SERIES_UID, 3)]

    # An amendment covers them: released to the patient, audited.
    amend(study, user=radiologist, decision="override", final_class="glioma", reason="Added series read",
          report_text="Version two, with the added series.")
    study.refresh_from_db()
    assert study.status == StudyStatus.AMENDED
    assert not study.new_images_after_sign_off().exists()
    assert AuditEvent.objects.get(action="review.amend").detail["covers_new_images"] == 3
    for pk in new_ids:
        assert alice.get(reverse("scans:slice_image", args=[pk])).status_code == 200
    assert "Version two" in alice.get(reverse("patient:report", args=[study.pk])).content.decode()


def test_the_same_images_again_change_nothing(django_capture_on_commit_callbacks, signed_study, patient_alice, radiologist):
    with django_capture_on_commit_callbacks(execute=True):
        submit_upload([_slice(i) for i in range(3)], patient=patient_alice.patient_record, user=radiologist)
    signed_study.refresh_from_db()
    assert signed_study.status == StudyStatus.SIGNED
    assert not AuditEvent.objects.filter(action="study.new_images_after_sign_off").exists()
    assert Study.objects.visible_to(patient_alice).get() == signed_study
