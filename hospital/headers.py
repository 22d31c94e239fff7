"""The patient and study fields of a DICOM header, read without the pixel data."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

import pydicom
from pydicom.errors import InvalidDicomError

from scans.errors import CorruptFile

FIELDS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDescription",
          "StudyDate", "SOPInstanceUID")


@dataclass(frozen=True)
class Header:
    patient_id: str
    patient_name: str
    birth_date: date | None
    sex: str
    study_instance_uid: str
    study_description: str
    study_date: date | None
    sop_instance_uid: str

    @property
    def display_name(self) -> str:
        """PatientName as people write it: "Doe^Jane" → "Jane Doe"."""
        parts = [p for p in self.patient_name.split("^") if p]
        return " ".join(parts[1:2] + parts[:1] + parts[2:]).strip()


def _date(value: Any) -> date | None:
    try:
        return datetime.strptime(str(value)[:8], "%Y%m%d").date() if value else None
    except ValueError:
        return None


def read_header(source: str | IO[bytes], name: str = "") -> Header:
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True, specific_tags=list(FIELDS))
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise CorruptFile(name or str(source), f"not a readable DICOM header ({exc})") from exc
    text = lambda keyword, n=64: str(ds.get(keyword, "") or "").strip()[:n]  # noqa: E731
    return Header(
        patient_id=text("PatientID"),
        patient_name=text("PatientName", 200),
        birth_date=_date(ds.get("PatientBirthDate")),
        sex=text("PatientSex", 16),
        study_instance_uid=text("StudyInstanceUID"),
        study_description=text("StudyDescription", 200),
        study_date=_date(ds.get("StudyDate")),
        sop_instance_uid=text("SOPInstanceUID", 80),
    )
