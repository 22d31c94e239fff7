"""Seed the load-test database with real scans from ../shared/data (run by run.sh through
`manage.py shell`). Writes the accounts and object ids locust needs to $LOADTEST_VAR/seed.json.

- 20 patient accounts, each with 2 signed studies (brain-tumour JPEGs, 4 slices each)
- 30 studies awaiting review for the worklist: 29 JPEG studies and the 48-slice DICOM
  series (sagittal DWI)
- 5 radiologists and one uploader (radiologist) with an API token
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pydicom
from django.db import transaction
from accounts import tokens

from accounts.models import Role, User
from portal.workflow.ingest import submit_upload
from portal.workflow.review import sign_off
from scans.models import Patient, Slice, Study, StudyStatus

PASSWORD = os.environ.get("LOADTEST_PASSWORD", "loadtest-password-2026")
SHARED = Path(os.environ.get("SHARED_DATA", "../shared/data")).resolve()
OUT = Path(os.environ["LOADTEST_VAR"]) / "seed.json"
JPEGS = sorted((SHARED / "brain-tumor-mri" / "Training" / "glioma").glob("*.jpg"))
DICOM_SERIES = SHARED / "dicom" / "brain-dwi-sagittal-48"


def user(email: str, role: str) -> User:
    account = User.objects.create_user(email=email, password=PASSWORD, role=role, full_name=email.split("@")[0])
    return account


def jpeg_study(patient: Patient, uploader: User, start: int, n: int = 4) -> Study:
    result = submit_upload(JPEGS[start:start + n], patient=patient, user=uploader, process=False)
    return result.studies[0]


def to_review(study: Study) -> None:
    study.transition_to(StudyStatus.PROCESSING)
    study.transition_to(StudyStatus.AWAITING_REVIEW)


@transaction.atomic
def main() -> None:
    radiologists = [user(f"lt-radiologist-{i:02d}@example.org", Role.RADIOLOGIST) for i in range(5)]
    uploader = user("lt-uploader@example.org", Role.RADIOLOGIST)
    token = tokens.issue(uploader, "loadtest")[1]
    cursor = 0
    patients = []
    for i in range(20):
        account = user(f"lt-patient-{i:02d}@example.org", Role.PATIENT)
        record = Patient.objects.create(mrn=f"LT-{i:04d}", full_name=f"Load Patient {i}", user=account)
        reports = []
        for _ in range(2):
            study = jpeg_study(record, radiologists[0], cursor)
            cursor += 4
            to_review(study)
            sign_off(study, user=radiologists[i % 5], decision="override", final_class="glioma",
                     reason="Load-test seed", report_text="Seeded report.")
            reports.append(study.pk)
        patients.append({"email": account.email, "reports": reports})
    worklist = []
    upload_patients = []
    for i in range(30):
        files = sorted(DICOM_SERIES.glob("*.dcm"))
        # The DICOM series carries its own PatientID: its record uses it as the MRN.
        mrn = str(pydicom.dcmread(files[0], stop_before_pixels=True).PatientID) if i == 0 else f"LT-W-{i:04d}"
        record = Patient.objects.create(mrn=mrn, full_name=f"Worklist Patient {i}")
        upload_patients.append(record.pk)
        if i == 0:
            study = submit_upload(files, patient=record, user=radiologists[0], process=False).studies[0]
        else:
            study = jpeg_study(record, radiologists[0], cursor)
            cursor += 4
        to_review(study)
        worklist.append(study.pk)
    slices = list(Slice.objects.filter(series__study_id__in=worklist).values_list("pk", flat=True))
    OUT.write_text(json.dumps({
        "password": PASSWORD,
        "patients": patients,
        "radiologists": [r.email for r in radiologists],
        "uploader_token": token,
        "worklist_studies": worklist,
        "worklist_slices": slices,
        "upload_patients": upload_patients,
        "upload_files": [str(p) for p in JPEGS[cursor:cursor + 200]],
    }))
    print(f"seeded: {len(patients)} patients, {len(worklist)} worklist studies, {len(slices)} slices -> {OUT}")


main()
