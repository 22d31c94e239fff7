"""Validating each file of an upload before anything is stored: type sniffed from the
first bytes, size and SHA-256 from one streamed pass, then the DICOM or raster parser reads
the file. Only a description (ParsedFile) is kept; the bytes are re-read when stored."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from scans import dicom
from scans.dicom_read import SkipFile
from scans.errors import CorruptFile, NotAnImage, PatientMismatch, UnsupportedFileType
from scans.ingest_files import Source
from scans.models import Patient
from scans.validation import DICOM, JPEG, PNG, ZIP, open_raster, sniff

Progress = Callable[[str], None]


@dataclass
class ParsedFile:
    source: Source
    name: str
    kind: str
    sha256: str
    dicom: dicom.DicomObject | None = None
    rows: int = 0
    columns: int = 0


def parse_file(source: Source) -> ParsedFile:
    """Size, type and hash from one streamed pass; then the parser reads the file itself
    (pydicom and PIL take the open file). Only the description is kept: the bytes are
    re-read from the source when stored, so memory holds at most one decoded image."""
    head, digest = source.check()
    kind = sniff(head, source.name)
    if kind == ZIP:
        raise CorruptFile(source.name, "nested archive: zips inside zips are not followed")
    if kind not in (DICOM, PNG, JPEG):
        raise CorruptFile(source.name, "unsupported file")
    with source.opened() as handle:
        if kind == DICOM:
            return ParsedFile(source, source.name, DICOM, digest, dicom=dicom.parse(handle, source.name))
        image = open_raster(handle, source.name, kind)
        width, height = image.size
        image.close()
    return ParsedFile(source, source.name, kind, digest, rows=height, columns=width)


def parse_all(sources: list[Source], rejected: list[dict], say: Progress) -> list[ParsedFile]:
    """Every file parsed, or listed in `rejected` when it may be skipped. A SEG/SR/PR...
    among other files is listed; when the upload holds nothing else it answers 415."""
    parsed: list[ParsedFile] = []
    refused: list[NotAnImage] = []
    for n, source in enumerate(sources, 1):
        try:
            item = parse_file(source)
        except SkipFile as skip:
            rejected.append({"file": skip.filename, "reason": skip.reason})
            say(f"[{n}/{len(sources)}] {source.name}: skipped ({skip.reason})")
            continue
        except UnsupportedFileType as exc:
            if not source.skippable() and not (len(sources) > 1 and isinstance(exc, NotAnImage)):
                raise
            refused += [exc] if isinstance(exc, NotAnImage) else []
            rejected.append({"file": exc.filename, "reason": f"{exc.message}: skipped"})
            say(f"[{n}/{len(sources)}] {source.name}: skipped ({exc.message})")
            continue
        parsed.append(item)
        say(f"[{n}/{len(sources)}] {source.name}: {item.kind} ok")
    if not parsed and refused:
        raise refused[0]
    return parsed


def check_patient(items: list[ParsedFile], patient: Patient, allow_mismatch: bool) -> None:
    """PatientMismatch when a DICOM file's PatientID is not the chosen patient's MRN."""
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
