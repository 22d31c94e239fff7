"""Upload → store → start processing: the one entry point for scans. The upload page, the
REST endpoint, the `import_scans` command and the DICOM listener all come through here; it
resolves the patient, decides who may upload for whom, and writes the audit row."""
from __future__ import annotations

from typing import Any, Iterable

from django.http import Http404
from django.utils.translation import gettext as _

from accounts.audit import record
from portal.workflow.classification import start_processing
from scans.access import get_patient_for
from scans.errors import PatientMismatch, ScanError
from scans.ingest import ImportResult, Progress, import_files
from scans.models import Patient


class UploadNotAllowed(PermissionError):
    """The user may not upload for this patient (views answer 404, as for any record
    the user cannot see)."""


def flag(value: Any) -> bool:
    """A form or API boolean such as allow_mismatch: "on", "true", "1" (any case) or True."""
    return str(value if value is not None else "").strip().lower() in ("on", "true", "1")


def resolve_patient(user: Any, value: Any) -> Patient:
    """The patient an upload is for: staff choose any patient (by id, 404 when there is no
    such record); a patient always uploads for their own record."""
    if user.is_clinical_staff:
        if value in (None, ""):
            raise ScanError("(upload)", _("choose the patient these scans belong to"))
        if not str(value).isdigit():
            raise Http404
        return get_patient_for(user, int(value))
    own = Patient.objects.visible_to(user).first() if user.is_patient else None
    if own is None:
        raise Http404
    return own


def check_upload_allowed(user: Any, patient: Patient, allow_mismatch: bool) -> bool:
    """Who may upload for whom. Returns patient_submitted. Staff upload for anyone; a patient
    only for the record they may see (their own); only an administrator may override a
    PatientID mismatch."""
    if user is None:  # the management command or the DICOM listener: the server itself
        return False
    if not (user.is_authenticated and user.is_active):
        raise UploadNotAllowed("not logged in")
    if user.is_clinical_staff:
        if allow_mismatch and not user.is_administrator:
            raise PatientMismatch("(upload)", "only an administrator may override a patient ID mismatch")
        return False
    if user.is_patient and Patient.objects.visible_to(user).filter(pk=patient.pk).exists():
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
    request: Any = None,
    **audit: Any,
) -> ImportResult:
    """Store the files for the patient (checked: check_upload_allowed), start processing in
    the same transaction, and audit the upload (`audit`: extra fields for the row)."""
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
    record(
        "scans.upload",
        request=request,
        actor=user,
        obj=patient,
        patient_id=patient.pk,
        studies=[s.pk for s in result.studies],
        new_slices=len(result.new_slice_ids),
        rejected=len(result.rejected),
        allow_mismatch=allow_mismatch,
        **audit,
    )
    return result
