"""Upload → store → start processing. The upload page, the REST endpoint and the
`import_scans` command all come through here."""
from __future__ import annotations

from typing import Any, Iterable

from portal.workflow.classification import start_processing
from scans.errors import PatientMismatch
from scans.ingest import ImportResult, Progress, import_files
from scans.models import Patient


class UploadNotAllowed(PermissionError):
    """The user may not upload for this patient (views answer 404, as for any record
    the user cannot see)."""


def check_upload_allowed(user: Any, patient: Patient, allow_mismatch: bool) -> bool:
    """Returns patient_submitted. Staff upload for anyone; a patient only for their own
    record; only an administrator may override a PatientID mismatch."""
    if user is None:  # the management command: an operator at the server
        return False
    if not (user.is_authenticated and user.is_active):
        raise UploadNotAllowed("not logged in")
    if user.is_clinical_staff:
        if allow_mismatch and not user.is_administrator:
            raise PatientMismatch("(upload)", "only an administrator may override a patient ID mismatch")
        return False
    if user.is_patient and patient.user_id == user.pk:
        if allow_mismatch:
            raise PatientMismatch("(upload)", "only an administrator may override a patient ID mismatch")
        return True
    raise UploadNotAllowed("not this patient's account")


def start_processing_for(result: ImportResult) -> list:
    jobs = []
    for study in result.studies_with_new_slices:
        jobs.extend(start_processing(study) or [])
    return jobs


def submit_upload(
    files: Iterable[Any],
    *,
    patient: Patient,
    user: Any,
    allow_mismatch: bool = False,
    process: bool = True,
    progress: Progress | None = None,
) -> ImportResult:
    patient_submitted = check_upload_allowed(user, patient, allow_mismatch)
    result = import_files(
        files,
        patient=patient,
        uploaded_by=user,
        allow_mismatch=allow_mismatch,
        patient_submitted=patient_submitted,
        progress=progress,
        # The jobs are recorded in the import's own transaction: no study is committed
        # without its work, whatever happens to the broker (messages go out on commit).
        on_stored=start_processing_for if process else None,
    )
    return result
