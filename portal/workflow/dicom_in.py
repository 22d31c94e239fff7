"""Studies that arrive over DICOM: the listener hands over the instances of one association
(`receive_batch`), and they go through the same ingest service as an upload
(`ingest.submit_upload`: validation, de-duplication, one processing start per study).

A PatientID with no patient record is never guessed: the instances wait in the unmatched
list (hospital.models.UnmatchedStudy) until an administrator creates a record from the
header, links them to an existing record, or rejects them. The upload page's "new patient
from the file's header" uses the same `patient_from_header`.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import record
from hospital.headers import Header, read_header
from hospital.models import UnmatchedInstance, UnmatchedState, UnmatchedStudy
from portal.workflow.ingest import submit_upload
from scans.errors import PatientMismatch, ScanError
from scans.ingest import ImportResult
from scans.models import Patient

log = logging.getLogger(__name__)


class UnmatchedError(Exception):
    """An administrator's action on an unmatched study that cannot be done (answered 400/409)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- From the listener --------------------------------------------------------------------


def receive_batch(paths: list[Path], calling_ae: str = "") -> list[ImportResult]:
    """File the instances of one association: per PatientID, under the patient record with
    that MRN (and start processing once per study), or into the unmatched list."""
    groups: dict[str, list[tuple[Path, Header]]] = {}
    for path in paths:
        header = read_header(str(path))
        groups.setdefault(header.patient_id, []).append((path, header))
    results = []
    for patient_id, items in groups.items():
        patient = Patient.objects.filter(mrn=patient_id).first() if patient_id else None
        if patient is None:
            hold_unmatched(items, calling_ae, detail=_("No patient record has this PatientID."))
            continue
        try:
            result = submit_upload([p for p, _h in items], patient=patient, user=None)
        except ScanError as exc:  # e.g. the study is already filed under another record
            log.warning("DICOM from %s for %s not filed: %s", calling_ae, patient_id, exc)
            hold_unmatched(items, calling_ae, detail=str(exc))
            continue
        results.append(result)
        record("dicom.receive", obj=patient, patient_id=patient.pk, calling_ae=calling_ae,
               studies=[s.pk for s in result.studies], new_slices=len(result.new_slice_ids))
    log.info("DICOM from %s: %d instance(s), %d filed group(s), %d unmatched", calling_ae, len(paths), len(results),
             len(groups) - len(results))
    return results


def hold_unmatched(items: list[tuple[Path, Header]], calling_ae: str, *, detail: str = "") -> list[UnmatchedStudy]:
    """Keep the instances (once each, whatever is sent twice) under a pending unmatched study."""
    by_study: dict[str, list[tuple[Path, Header]]] = {}
    for path, header in items:
        by_study.setdefault(header.study_instance_uid, []).append((path, header))
    held = []
    for study_uid, entries in by_study.items():
        head = entries[0][1]
        with transaction.atomic():
            unmatched, _created = UnmatchedStudy.objects.select_for_update().get_or_create(
                study_instance_uid=study_uid,
                state=UnmatchedState.PENDING,
                defaults=dict(patient_id=head.patient_id, patient_name=head.patient_name, birth_date=head.birth_date,
                              sex=head.sex, study_description=head.study_description, study_date=head.study_date,
                              calling_ae=calling_ae[:16], detail=detail[:500]),
            )
            known = set(unmatched.instances.values_list("sop_instance_uid", flat=True))
            for path, header in entries:
                if header.sop_instance_uid in known:
                    continue
                known.add(header.sop_instance_uid)
                _keep(unmatched, path, header)
            record("dicom.unmatched_held", obj=unmatched, calling_ae=calling_ae, instances=len(entries))
        held.append(unmatched)
    return held


def _keep(unmatched: UnmatchedStudy, path: Path, header: Header) -> None:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    name = default_storage.save(f"incoming/unmatched/{unmatched.pk}/{digest}.dcm", ContentFile(data))
    try:
        with transaction.atomic():
            UnmatchedInstance.objects.create(unmatched=unmatched, sop_instance_uid=header.sop_instance_uid,
                                             file=name, sha256=digest)
    except IntegrityError:
        default_storage.delete(name)


# --- The administrator's decisions -----------------------------------------------------------


def patient_from_header(header: Header, *, user: Any, request: Any = None) -> Patient:
    """A new patient record from a DICOM header. Refused when the PatientID is empty or a
    record with that MRN already exists (then the files belong under it: choose it)."""
    if not header.patient_id:
        raise UnmatchedError(_("The file has no PatientID: link it to an existing record instead."))
    with transaction.atomic():
        if Patient.objects.filter(mrn=header.patient_id).exists():
            raise UnmatchedError(
                _("A patient record with MRN %(mrn)s already exists: choose it instead.") % {"mrn": header.patient_id},
                status=409,
            )
        patient = Patient.objects.create(mrn=header.patient_id, full_name=header.display_name,
                                         birth_date=header.birth_date, sex=header.sex)
    record("patient.create_from_header", request=request, actor=user, obj=patient, patient_id=patient.pk)
    return patient


def patient_from_upload(files: list[Any], *, user: Any, request: Any = None) -> Patient:
    """The upload page's "new patient from the file's header": the first DICOM file's header
    makes the record (same rules as for the unmatched list)."""
    for item in files:
        handle = getattr(item, "file", item)
        try:
            handle.seek(0)
            header = read_header(handle, getattr(item, "name", ""))
        except (ScanError, AttributeError):
            continue
        finally:
            if hasattr(handle, "seek"):
                handle.seek(0)
        return patient_from_header(header, user=user, request=request)
    raise UnmatchedError(_("A new patient record is made from a DICOM file's header: these files have none "
                           "(choose the patient instead)."))


def _pending(unmatched: UnmatchedStudy) -> UnmatchedStudy:
    locked = UnmatchedStudy.objects.select_for_update().get(pk=unmatched.pk)
    if locked.state != UnmatchedState.PENDING:
        raise UnmatchedError(_("This study was already %(state)s.") % {"state": locked.get_state_display().lower()},
                             status=409)
    return locked


def _header_of(unmatched: UnmatchedStudy) -> Header:
    return Header(unmatched.patient_id, unmatched.patient_name, unmatched.birth_date, unmatched.sex,
                  unmatched.study_instance_uid, unmatched.study_description, unmatched.study_date, "")


def _decide(unmatched: UnmatchedStudy, state: str, user: Any, detail: str = "", **fields: Any) -> None:
    unmatched.state = state
    unmatched.decided_by = user
    unmatched.decided_at = timezone.now()
    unmatched.detail = detail[:500] if detail else unmatched.detail
    for key, value in fields.items():
        setattr(unmatched, key, value)
    unmatched.save()
    names = list(unmatched.instances.values_list("file", flat=True))
    unmatched.instances.all().delete()
    transaction.on_commit(lambda: [default_storage.delete(n) for n in names])


def file_unmatched(unmatched: UnmatchedStudy, *, user: Any, patient: Patient | None = None, request: Any = None) -> ImportResult:
    """File the study under `patient` (linking: an administrator's override of the PatientID
    check), or under a new record made from its header when `patient` is None."""
    with transaction.atomic():
        locked = _pending(unmatched)
        target = patient or patient_from_header(_header_of(locked), user=user, request=request)
        files = [(Path(i.file.name).name, i.file.open("rb")) for i in locked.instances.all()]
        try:
            result = submit_upload(files, patient=target, user=user, allow_mismatch=patient is not None)
        except PatientMismatch as exc:
            raise UnmatchedError(exc.message, status=409) from exc
        except ScanError as exc:
            raise UnmatchedError(exc.message) from exc
        finally:
            for _name, handle in files:
                handle.close()
        _decide(locked, UnmatchedState.FILED, user, filed_patient=target,
                filed_study=result.studies[0] if result.studies else None)
        record("dicom.unmatched_filed", request=request, actor=user, obj=locked, patient_id=target.pk,
               linked=patient is not None, studies=[s.pk for s in result.studies])
    return result


def reject_unmatched(unmatched: UnmatchedStudy, *, user: Any, reason: str = "", request: Any = None) -> None:
    with transaction.atomic():
        locked = _pending(unmatched)
        _decide(locked, UnmatchedState.REJECTED, user, detail=reason.strip() or _("Rejected by an administrator."))
        record("dicom.unmatched_rejected", request=request, actor=user, obj=locked)


# --- The listener process ---------------------------------------------------------------------


def _own_connection(fn):
    """Listener callbacks run on pynetdicom's threads: each closes its database connection
    when done, so a long-running listener does not pile up connections."""
    from django.db import connection

    def run(*args: Any) -> Any:
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


def make_listener(*, ae_title: str | None = None, port: int | None = None, bind: str | None = None,
                  spool_dir: Path | None = None, quiet_seconds: float | None = None):
    """The C-ECHO/C-STORE SCP of `manage.py dicom_listener`, configured from settings."""
    from django.conf import settings

    from hospital.callers import caller_allowed
    from hospital.scp import Listener

    return Listener(
        ae_title=ae_title or settings.DICOM_AE_TITLE,
        port=int(port if port is not None else settings.DICOM_PORT),
        bind=bind or settings.DICOM_BIND_ADDRESS,
        spool_dir=Path(spool_dir or settings.DICOM_SPOOL_DIR),
        on_batch=_own_connection(receive_batch),
        caller_allowed=_own_connection(caller_allowed),
        quiet_seconds=float(quiet_seconds if quiet_seconds is not None else settings.DICOM_QUIET_SECONDS),
    )
