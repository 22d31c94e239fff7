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
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import IntegrityError as DbIntegrityError
from django.db import transaction
from django.utils import timezone
from pydicom.uid import generate_uid

from scans import archive, dicom
from scans.addendum import hold_new_images
from scans.errors import CorruptFile, NoImages, NotAnImage, PatientMismatch, TooLarge, UidConflict, UnsupportedFileType
from scans.models import Patient, Series, Slice, SourceFormat, Study
from scans.validation import DICOM, JPEG, PNG, ZIP, open_raster, sniff

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
READ_CHUNK = 1024 * 1024


# --- Inputs ------------------------------------------------------------------------------------


@dataclass
class Source:
    """One input file: a name for messages and a way to read its bytes."""

    name: str
    size: int | None
    _open: Callable[[], IO[bytes]]
    # Inside a folder or zip: stray non-image files (README, LICENSE, a viewer program) are
    # listed as rejected instead of failing the upload.
    contained: bool = False

    def check(self) -> tuple[bytes, str]:
        """Read the file once, a chunk at a time, refusing it as soon as it passes the upload
        limit: returns its first bytes (for the type) and its SHA-256. Memory holds one chunk,
        never the whole file (Django has already streamed large uploads to temporary files)."""
        limit = int(settings.UPLOAD_MAX_BYTES)
        if self.size is not None and self.size > limit:
            raise TooLarge(self.name, f"the file is larger than the upload limit of {limit:,} bytes")
        with _ReuseOrOpen(self._open) as handle:
            head, digest = _stream(handle, limit)
        if digest is None:
            raise TooLarge(self.name, f"the file is larger than the upload limit of {limit:,} bytes")
        return head, digest


def _stream(handle: IO[bytes], limit: int | None = None) -> tuple[bytes, str | None]:
    """(first 512 bytes, SHA-256) of a file read in chunks; digest None past `limit` bytes."""
    digest = hashlib.sha256()
    head = b""
    total = 0
    while chunk := handle.read(READ_CHUNK):
        total += len(chunk)
        if limit is not None and total > limit:
            return head, None
        if len(head) < 512:
            head += chunk[: 512 - len(head)]
        digest.update(chunk)
    return head, digest.hexdigest()


class _ReuseOrOpen:
    """Opens a path each time; rewinds an already-open file object instead of closing it."""

    def __init__(self, opener: Callable[[], IO[bytes]]) -> None:
        self.opener = opener
        self.handle: IO[bytes] | None = None
        self.owned = False

    def __enter__(self) -> IO[bytes]:
        handle = self.opener()
        self.owned = getattr(handle, "_portal_owned", False)
        if hasattr(handle, "seek"):
            handle.seek(0)
        self.handle = handle
        return handle

    def __exit__(self, *exc: Any) -> None:
        if self.owned and self.handle is not None:
            self.handle.close()


def _path_opener(path: Path) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        handle = open(path, "rb")  # noqa: SIM115 - closed by _ReuseOrOpen
        handle._portal_owned = True  # type: ignore[attr-defined]
        return handle

    return opener


def as_source(item: Any) -> Source:
    """Accept an UploadedFile, a path, (name, bytes) or (name, file object)."""
    if isinstance(item, Source):
        return item
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        return Source(path.name, path.stat().st_size, _path_opener(path))
    if isinstance(item, tuple) and len(item) == 2:
        name, payload = item
        if isinstance(payload, (bytes, bytearray)):
            buffer = io.BytesIO(bytes(payload))
            return Source(str(name), len(payload), lambda: buffer)
        return Source(str(name), getattr(payload, "size", None), lambda: payload)
    if hasattr(item, "read") and hasattr(item, "name"):
        name = os.path.basename(str(item.name)) or "upload"
        return Source(name, getattr(item, "size", None), lambda: item)
    raise TypeError(f"cannot import {item!r}")


def sources_from_path(path: Path) -> list[Source]:
    """A file, or every file under a folder (natural name order)."""
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: dicom.natural_key(str(p.relative_to(path))))
        sources = []
        for p in files:
            source = as_source(p)
            source.name = str(p.relative_to(path))
            source.contained = True
            sources.append(source)
        return sources
    return [as_source(path)]


# --- Parsed items ------------------------------------------------------------------------------


@dataclass
class _Parsed:
    source: Source
    name: str
    kind: str
    sha256: str
    dicom: dicom.DicomObject | None = None
    rows: int = 0
    columns: int = 0


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


# --- The service -------------------------------------------------------------------------------


def _check_totals(sources: list[Source]) -> None:
    max_files = int(settings.UPLOAD_MAX_FILES)
    if len(sources) > max_files:
        raise TooLarge(sources[max_files].name, f"too many files in one upload ({len(sources):,}; limit {max_files:,})")
    limit = int(settings.UPLOAD_MAX_BYTES)
    total = 0
    for source in sources:
        total += source.size or 0
        if total > limit:
            raise TooLarge(source.name, f"the upload is larger than the limit of {limit:,} bytes")


def _expand(sources: list[Source], rejected: list[dict], cleanup: list[IO[bytes]]) -> list[Source]:
    """Replace each zip by its (checked) members; everything else passes through."""
    out: list[Source] = []
    for source in sources:
        with _ReuseOrOpen(source._open) as handle:
            if handle.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
                out.append(source)
                continue
            handle.seek(0)
            members, skipped = archive.extract(handle, source.name)
        rejected.extend({"file": s.name, "reason": s.reason} for s in skipped)
        for member in members:
            cleanup.append(member.file)
            out.append(Source(member.name, member.size, (lambda f=member.file: f), contained=True))
    max_files = int(settings.UPLOAD_MAX_FILES)
    if len(out) > max_files:
        raise TooLarge(out[max_files].name, f"too many files in one upload ({len(out):,}; limit {max_files:,})")
    return out


IMAGE_SUFFIXES = {".dcm", ".dicom", ".ima", ".png", ".jpg", ".jpeg", ".jpe", ".jfif"}


def _skippable(source: Source) -> bool:
    """A stray document in a folder/zip is skipped; a file named as an image that is not
    one (a PDF renamed .png) fails the upload wherever it is."""
    return source.contained and Path(source.name).suffix.lower() not in IMAGE_SUFFIXES


def _parse(source: Source) -> _Parsed | None:
    """Size, type and hash from one streamed pass; then the parser reads the file itself
    (pydicom and PIL take the open file). Only the description is kept: the bytes are
    re-read from the source when stored, so memory holds at most one decoded image."""
    head, digest = source.check()
    kind = sniff(head, source.name)
    if kind == ZIP:
        raise CorruptFile(source.name, "nested archive: zips inside zips are not followed")
    if kind not in (DICOM, PNG, JPEG):
        raise CorruptFile(source.name, "unsupported file")
    with _ReuseOrOpen(source._open) as handle:
        if kind == DICOM:
            return _Parsed(source, source.name, DICOM, digest, dicom=dicom.parse(handle, source.name))
        image = open_raster(handle, source.name, kind)
        width, height = image.size
        image.close()
    return _Parsed(source, source.name, kind, digest, rows=height, columns=width)


def _check_patient(items: list[_Parsed], patient: Patient, allow_mismatch: bool) -> None:
    if allow_mismatch:
        return
    for item in items:
        if item.dicom is None:
            continue
        found = item.dicom.patient_id
        if found != patient.mrn:
            shown = found or "(empty)"
            raise PatientMismatch(
                item.name,
                f"the file's PatientID is '{shown}' but the chosen patient's MRN is '{patient.mrn}'; "
                "check that this is the right patient (an administrator may override)",
            )


def _storage_name(item: _Parsed) -> str:
    ext = {DICOM: "dcm", PNG: "png", JPEG: "jpg"}[item.kind]
    return f"scans/{timezone.now():%Y/%m/%d}/{item.sha256[:2]}/{item.sha256}.{ext}"


def _slice_sort_key(sl: Slice) -> tuple:
    return (
        sl.instance_number if sl.instance_number is not None else math.inf,
        sl.frame_index,
        dicom.natural_key(sl.original_filename or ""),
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


class _Writer:
    """Writes files to the default storage and remembers them for clean-up."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.storage = default_storage

    def save(self, item: _Parsed) -> str:
        """Copy the source to storage in chunks (never whole in memory), after checking it is
        still the file that was validated."""
        with _ReuseOrOpen(item.source._open) as handle:
            if _stream(handle)[1] != item.sha256:
                raise CorruptFile(item.name, "the file changed while it was being imported")
            handle.seek(0)
            name = self.storage.save(_storage_name(item), File(handle))
        self.written.append(name)
        return name

    def delete_all(self) -> None:
        for name in self.written:
            try:
                self.storage.delete(name)
            except Exception:  # noqa: BLE001 - clean-up is best effort, log and go on
                logger.exception("could not delete %s after a failed import", name)
        self.written.clear()


def _raster_uids(items: list[_Parsed], patient: Patient) -> tuple[str, str, dict[str, str]]:
    """Deterministic UIDs (generate_uid with the content as entropy), so re-importing the
    same images for the same patient adds nothing."""
    seed = f"patient:{patient.pk}:" + ",".join(sorted(i.sha256 for i in items))
    study_uid = generate_uid(entropy_srcs=["study", seed])
    series_uid = generate_uid(entropy_srcs=["series", seed])
    sops = {i.sha256: generate_uid(entropy_srcs=["sop", f"patient:{patient.pk}", i.sha256]) for i in items}
    return study_uid, series_uid, sops


def _parse_all(expanded: list[Source], result: ImportResult, say: Progress) -> list[_Parsed]:
    """Every file parsed, or listed in result.rejected when it may be skipped. A SEG/SR/PR...
    among other files is listed; when the upload holds nothing else it answers 415."""
    parsed: list[_Parsed] = []
    refused: list[NotAnImage] = []
    for n, source in enumerate(expanded, 1):
        try:
            item = _parse(source)
        except dicom.SkipFile as skip:
            result.rejected.append({"file": skip.filename, "reason": skip.reason})
            say(f"[{n}/{len(expanded)}] {source.name}: skipped ({skip.reason})")
            continue
        except UnsupportedFileType as exc:
            if not _skippable(source) and not (len(expanded) > 1 and isinstance(exc, NotAnImage)):
                raise
            refused += [exc] if isinstance(exc, NotAnImage) else []
            result.rejected.append({"file": exc.filename, "reason": f"{exc.message}: skipped"})
            say(f"[{n}/{len(expanded)}] {source.name}: skipped ({exc.message})")
            continue
        if item is not None:
            parsed.append(item)
            say(f"[{n}/{len(expanded)}] {source.name}: {item.kind} ok")
    if not parsed and refused:
        raise refused[0]
    return parsed


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
    _check_totals(sources)
    result = ImportResult()
    temp_files: list[IO[bytes]] = []
    try:
        expanded = _expand(sources, result.rejected, temp_files)
        parsed = _parse_all(expanded, result, say)
        if not parsed:
            name = sources[0].name if len(sources) == 1 else f"{len(sources)} files"
            reasons = "; ".join(r["reason"] for r in result.rejected[:3])
            raise NoImages(name, "no importable images found" + (f" ({reasons})" if reasons else ""))
        _check_patient(parsed, patient, allow_mismatch)
        _store(parsed, patient, uploaded_by, patient_submitted, result, say, on_stored)
    finally:
        for handle in temp_files:
            handle.close()
    return result


def _store(
    parsed: list[_Parsed], patient: Patient, uploaded_by: Any, patient_submitted: bool, result: ImportResult, say: Progress,
    on_stored: Callable[[ImportResult], Any] | None = None,
) -> None:
    writer = _Writer()
    try:
        with transaction.atomic():
            Patient.objects.select_for_update().filter(pk=patient.pk).first()
            touched: dict[int, Study] = {}
            new_by_study: dict[int, list[int]] = {}
            series_done: dict[int, Series] = {}
            for study_fields, series_fields, entries in _groups(parsed, patient):
                study, _ = Study.objects.get_or_create(
                    study_instance_uid=study_fields.pop("study_instance_uid"),
                    defaults={**study_fields, "patient": patient, "uploaded_by": uploaded_by, "patient_submitted": patient_submitted},
                )
                # Locked: a sign-off cannot interleave with new images (see scans.addendum).
                study = Study.objects.select_for_update().get(pk=study.pk)
                first_name = entries[0][0].name
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
                new_ids = _store_slices(series, entries, patient, writer)
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


def _groups(parsed: list[_Parsed], patient: Patient):
    """(study fields, series fields, [(item, frame)]) per series, in a stable order."""
    by_series: dict[tuple[str, str], list] = {}
    heads: dict[tuple[str, str], dicom.DicomObject] = {}
    reasons: dict[tuple[str, str], str] = {}
    rasters: list[_Parsed] = []
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
        head = heads[key]
        yield (
            {
                "study_instance_uid": key[0],
                "description": head.study_description,
                "study_date": head.study_date,
                "modality": head.modality or "MR",
                "accession_number": head.accession_number,
                "body_part": head.body_part,
                "institution": head.institution,
            },
            {
                "series_instance_uid": key[1],
                "series_number": head.series_number,
                "description": head.series_description,
                "modality": head.modality or "MR",
                "scope_reason": reasons.get(key, ""),
            },
            entries,
        )
    if rasters:
        rasters.sort(key=lambda i: dicom.natural_key(i.name))
        study_uid, series_uid, sops = _raster_uids(rasters, patient)
        entries = []
        for number, item in enumerate(rasters, 1):
            frame = dicom.DicomFrame(0, sops[item.sha256], number, None, item.rows, item.columns, None, None)
            entries.append((item, frame))
        yield (
            {"study_instance_uid": study_uid, "description": "Uploaded images", "modality": "OT", "study_date": timezone.localdate()},
            {"series_instance_uid": series_uid, "series_number": 1, "description": f"{len(rasters)} uploaded image(s)", "modality": "OT"},
            entries,
        )


def _store_slices(series: Series, entries: list, patient: Patient, writer: _Writer) -> list[int]:
    sops = [frame.sop_instance_uid for _, frame in entries]
    existing = dict(
        Slice.objects.filter(sop_instance_uid__in=sops).values_list("sop_instance_uid", "series__study__patient_id")
    )
    for item, frame in entries:
        owner = existing.get(frame.sop_instance_uid)
        if owner is not None and owner != patient.pk:
            logger.warning("upload refused: SOP instance %s belongs to patient %s, not %s", frame.sop_instance_uid, owner, patient.pk)
            raise UidConflict(item.name)
    names: dict[int, str] = {}
    new_slices = []
    seen: set[str] = set()
    for item, frame in entries:
        if frame.sop_instance_uid in existing or frame.sop_instance_uid in seen:
            continue
        seen.add(frame.sop_instance_uid)
        if id(item) not in names:
            names[id(item)] = writer.save(item)
        sl = Slice(
            series=series,
            sop_instance_uid=frame.sop_instance_uid,
            sha256=item.sha256,
            source_format={DICOM: SourceFormat.DICOM, PNG: SourceFormat.PNG, JPEG: SourceFormat.JPEG}[item.kind],
            original_filename=item.name[-255:],
            frame_index=frame.frame_index,
            instance_number=frame.instance_number,
            slice_location=frame.slice_location,
            rows=frame.rows,
            columns=frame.columns,
            window_center=frame.window_center,
            window_width=frame.window_width,
        )
        sl.file.name = names[id(item)]
        new_slices.append(sl)
    created = Slice.objects.bulk_create(new_slices)
    if created and created[0].pk is None:  # backends without RETURNING
        return list(Slice.objects.filter(sop_instance_uid__in=[s.sop_instance_uid for s in created]).values_list("pk", flat=True))
    return [s.pk for s in created]
