"""Which study and series each parsed file belongs to, and their rows.

DICOM files are grouped by (StudyInstanceUID, SeriesInstanceUID), the first file of a series
giving its fields; PNG/JPEG files form one study with one series whose UIDs are derived from
the patient and the content, so importing the same images again adds nothing. Existing
Study/Series rows are reused only when they belong to the uploading patient (UidConflict
otherwise, a message that never says whose record holds the UID)."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Iterator

from django.utils import timezone
from pydicom.uid import generate_uid

from scans import dicom
from scans.errors import UidConflict
from scans.ingest_files import natural_key
from scans.ingest_parse import ParsedFile
from scans.models import Patient, Series, Slice, Study

logger = logging.getLogger(__name__)
Entry = tuple[ParsedFile, dicom.DicomFrame]  # a file and one of its frames: one slice


@dataclass
class SeriesGroup:
    study_fields: dict[str, Any]  # Study fields, study_instance_uid included
    series_fields: dict[str, Any]  # Series fields, series_instance_uid included
    entries: list[Entry]


def group_by_series(parsed: list[ParsedFile], patient: Patient) -> Iterator[SeriesGroup]:
    """One SeriesGroup per series, in a stable order: DICOM series first, then the rasters."""
    by_series: dict[tuple[str, str], list[Entry]] = {}
    heads: dict[tuple[str, str], dicom.DicomObject] = {}
    reasons: dict[tuple[str, str], str] = {}
    rasters: list[ParsedFile] = []
    for item in parsed:
        if item.dicom is None:
            rasters.append(item)
            continue
        key = (item.dicom.study_instance_uid, item.dicom.series_instance_uid)
        heads.setdefault(key, item.dicom)
        if item.dicom.scope_reason:  # one out-of-scope instance puts its series out of scope
            reasons.setdefault(key, item.dicom.scope_reason)
        by_series.setdefault(key, []).extend((item, frame) for frame in item.dicom.frames)
    for key, entries in by_series.items():
        yield _dicom_group(key, heads[key], reasons.get(key, ""), entries)
    if rasters:
        yield _raster_group(rasters, patient)


def _dicom_group(key: tuple[str, str], head: dicom.DicomObject, scope_reason: str, entries: list[Entry]) -> SeriesGroup:
    study_fields = {
        "study_instance_uid": key[0],
        "description": head.study_description,
        "study_date": head.study_date,
        "modality": head.modality or "MR",
        "accession_number": head.accession_number,
        "body_part": head.body_part,
        "institution": head.institution,
    }
    series_fields = {
        "series_instance_uid": key[1],
        "series_number": head.series_number,
        "description": head.series_description,
        "modality": head.modality or "MR",
        "scope_reason": scope_reason,
    }
    return SeriesGroup(study_fields, series_fields, entries)


def _raster_group(rasters: list[ParsedFile], patient: Patient) -> SeriesGroup:
    rasters.sort(key=lambda i: natural_key(i.name))
    study_uid, series_uid, sops = _raster_uids(rasters, patient)
    entries = []
    for number, item in enumerate(rasters, 1):
        frame = dicom.DicomFrame(0, sops[item.sha256], number, None, item.rows, item.columns, None, None)
        entries.append((item, frame))
    return SeriesGroup(
        {"study_instance_uid": study_uid, "description": "Uploaded images", "modality": "OT", "study_date": timezone.localdate()},
        {"series_instance_uid": series_uid, "series_number": 1, "description": f"{len(rasters)} uploaded image(s)", "modality": "OT"},
        entries,
    )


def _raster_uids(items: list[ParsedFile], patient: Patient) -> tuple[str, str, dict[str, str]]:
    """Deterministic UIDs (generate_uid with the content as entropy), so re-importing the
    same images for the same patient adds nothing."""
    seed = f"patient:{patient.pk}:" + ",".join(sorted(i.sha256 for i in items))
    study_uid = generate_uid(entropy_srcs=["study", seed])
    series_uid = generate_uid(entropy_srcs=["series", seed])
    sops = {i.sha256: generate_uid(entropy_srcs=["sop", f"patient:{patient.pk}", i.sha256]) for i in items}
    return study_uid, series_uid, sops


# --- Rows ---------------------------------------------------------------------------------------


def resolve_series(
    group: SeriesGroup, patient: Patient, *, uploaded_by: Any, patient_submitted: bool
) -> tuple[Study, Series]:
    """The group's Study (locked: a sign-off cannot interleave with new images, see
    scans.addendum) and Series, found or created. Call inside the import's transaction."""
    study_fields, series_fields = dict(group.study_fields), dict(group.series_fields)
    study, _ = Study.objects.get_or_create(
        study_instance_uid=study_fields.pop("study_instance_uid"),
        defaults={**study_fields, "patient": patient, "uploaded_by": uploaded_by, "patient_submitted": patient_submitted},
    )
    study = Study.objects.select_for_update().get(pk=study.pk)
    first_name = group.entries[0][0].name
    if study.patient_id != patient.pk:
        logger.warning("upload refused: study %s belongs to patient %s, not %s", study.pk, study.patient_id, patient.pk)
        raise UidConflict(first_name)
    series, _ = Series.objects.get_or_create(
        series_instance_uid=series_fields.pop("series_instance_uid"), defaults={**series_fields, "study": study}
    )
    if series.study_id != study.pk:
        logger.warning("upload refused: series %s belongs to study %s, not %s", series.pk, series.study_id, study.pk)
        raise UidConflict(first_name)
    reason = series_fields.get("scope_reason", "")
    if reason and not series.scope_reason:  # new instances put an existing series out of scope
        series.scope_reason = reason
        series.save(update_fields=["scope_reason"])
    return study, series


def _slice_sort_key(sl: Slice) -> tuple:
    return (
        sl.instance_number if sl.instance_number is not None else math.inf,
        sl.frame_index,
        natural_key(sl.original_filename or ""),
        sl.sop_instance_uid,
    )


def reorder_series(series: Series) -> int:
    """Geometric order when every slice has a position along the normal, else
    InstanceNumber, then natural file name. Returns the slice count."""
    slices = list(series.slices.all())
    if slices and all(sl.slice_location is not None for sl in slices):
        slices.sort(key=lambda sl: (sl.slice_location, *_slice_sort_key(sl)))
    else:
        slices.sort(key=_slice_sort_key)
    changed = []
    for index, sl in enumerate(slices):
        if sl.order_index != index:
            sl.order_index = index
            changed.append(sl)
    if changed:
        Slice.objects.bulk_update(changed, ["order_index"])
    return len(slices)
