"""The one import service behind the upload page, the REST endpoint and `import_scans`.

`import_files` is all-or-nothing per upload: every file is read and validated first (no
storage, no rows); then, in one transaction holding a lock on the patient row, files are
written to the default storage with their SHA-256 and the rows are created. If anything
fails, the transaction rolls back and every file already written is deleted.

Concurrency: the patient row lock (SELECT ... FOR UPDATE on PostgreSQL) serialises imports
for one patient, so ten simultaneous uploads of one series end as one series with each
instance once. Study/Series/Slice UIDs are unique in the database as the last line of
defence; a UID already used elsewhere (or a race on one) is a UidConflict, whose message
never says whose record holds it.

The steps live in their own modules, in the order they run: scans.ingest_files (sources,
zips, limits), scans.ingest_parse (validating each file), scans.ingest_series (grouping
into studies/series and their rows), scans.ingest_storage (files and Slice rows).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterable

from django.db import IntegrityError as DbIntegrityError
from django.db import transaction

from scans.addendum import hold_new_images
from scans.errors import NoImages, UidConflict
from scans.ingest_files import as_source, check_totals, expand_archives
from scans.ingest_parse import ParsedFile, check_patient, parse_all
from scans.ingest_series import group_by_series, reorder_series, resolve_series
from scans.ingest_storage import StorageWriter, store_slices
from scans.models import Patient, Series, Study

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class ImportResult:
    studies: list[Study] = field(default_factory=list)
    # series_instance_uid → number of slices the series holds after this import
    series_slices: dict[str, int] = field(default_factory=dict)
    rejected: list[dict] = field(default_factory=list)
    new_slice_ids: list[int] = field(default_factory=list)
    studies_with_new_slices: list[Study] = field(default_factory=list)

    def as_json(self) -> dict:
        studies = []
        for study in self.studies:
            studies.append(
                {
                    "id": study.pk,
                    "study_instance_uid": study.study_instance_uid,
                    "series": [
                        {"id": s.pk, "series_instance_uid": s.series_instance_uid, "slices": self.series_slices.get(s.series_instance_uid, 0)}
                        for s in study.series.order_by("series_number", "id")
                        if s.series_instance_uid in self.series_slices
                    ],
                }
            )
        return {"studies": studies, "rejected": list(self.rejected), "new_slices": len(self.new_slice_ids)}


def import_files(
    files: Iterable[Any],
    *,
    patient: Patient,
    uploaded_by: Any = None,
    allow_mismatch: bool = False,
    patient_submitted: bool = False,
    progress: Progress | None = None,
    on_stored: Callable[[ImportResult], Any] | None = None,
) -> ImportResult:
    """Import the files for the patient, all or nothing. `on_stored(result)` runs inside the
    import's transaction once the rows exist (the workflow records the processing jobs
    there, so no study is ever committed without its work)."""
    say = progress or (lambda message: None)
    sources = [as_source(f) for f in files]
    if not sources:
        raise NoImages("(none)", "no files were uploaded")
    check_totals(sources)
    result = ImportResult()
    temp_files: list[IO[bytes]] = []
    try:
        expanded = expand_archives(sources, result.rejected, temp_files)
        parsed = parse_all(expanded, result.rejected, say)
        if not parsed:
            name = sources[0].name if len(sources) == 1 else f"{len(sources)} files"
            reasons = "; ".join(r["reason"] for r in result.rejected[:3])
            raise NoImages(name, "no importable images found" + (f" ({reasons})" if reasons else ""))
        check_patient(parsed, patient, allow_mismatch)
        _store(parsed, patient, uploaded_by, patient_submitted, result, say, on_stored)
    finally:
        for handle in temp_files:
            handle.close()
    return result


def _store(
    parsed: list[ParsedFile], patient: Patient, uploaded_by: Any, patient_submitted: bool, result: ImportResult, say: Progress,
    on_stored: Callable[[ImportResult], Any] | None = None,
) -> None:
    """The transaction: rows and files for every series, then `on_stored`; on any failure
    every file written is deleted (a UID stored meanwhile by another upload: UidConflict)."""
    writer = StorageWriter()
    try:
        with transaction.atomic():
            Patient.objects.select_for_update().filter(pk=patient.pk).first()
            touched: dict[int, Study] = {}
            new_by_study: dict[int, list[int]] = {}
            series_done: dict[int, Series] = {}
            for group in group_by_series(parsed, patient):
                study, series = resolve_series(group, patient, uploaded_by=uploaded_by, patient_submitted=patient_submitted)
                new_ids = store_slices(series, group.entries, patient, writer)
                result.new_slice_ids.extend(new_ids)
                touched[study.pk] = study
                new_by_study.setdefault(study.pk, []).extend(new_ids)
                series_done[series.pk] = series
                say(f"series {series.series_instance_uid}: {len(new_ids)} new slice(s)")
            for series in series_done.values():
                result.series_slices[series.series_instance_uid] = reorder_series(series)
            result.studies = list(touched.values())
            result.studies_with_new_slices = [s for s in result.studies if new_by_study.get(s.pk)]
            for study in result.studies_with_new_slices:
                grown = [s for s in series_done.values() if s.study_id == study.pk]
                hold_new_images(study, new_by_study[study.pk], grown, actor=uploaded_by)
            if on_stored is not None:
                on_stored(result)
    except DbIntegrityError as exc:
        writer.delete_all()
        logger.warning("upload for patient %s refused on a UID already stored: %s", patient.pk, exc)
        raise UidConflict(parsed[0].name) from exc
    except BaseException:
        writer.delete_all()
        raise
