"""Storing an upload's slices: each file is copied to the default storage (named by its
SHA-256, checked again while copying) and one Slice row is made per new frame. The writer
remembers what it wrote, so a failed import can delete it."""
from __future__ import annotations

import logging

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.utils import timezone

from scans.errors import CorruptFile, UidConflict
from scans.ingest_files import stream_digest
from scans.ingest_parse import ParsedFile
from scans.ingest_series import Entry
from scans.models import Patient, Series, Slice, SourceFormat
from scans.validation import DICOM, JPEG, PNG

logger = logging.getLogger(__name__)
EXTENSIONS = {DICOM: "dcm", PNG: "png", JPEG: "jpg"}
SOURCE_FORMATS = {DICOM: SourceFormat.DICOM, PNG: SourceFormat.PNG, JPEG: SourceFormat.JPEG}


def storage_name(item: ParsedFile) -> str:
    return f"scans/{timezone.now():%Y/%m/%d}/{item.sha256[:2]}/{item.sha256}.{EXTENSIONS[item.kind]}"


class StorageWriter:
    """Writes files to the default storage and remembers them for clean-up."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.storage = default_storage

    def save(self, item: ParsedFile) -> str:
        """Copy the source to storage in chunks (never whole in memory), after checking it is
        still the file that was validated."""
        with item.source.opened() as handle:
            if stream_digest(handle)[1] != item.sha256:
                raise CorruptFile(item.name, "the file changed while it was being imported")
            handle.seek(0)
            name = self.storage.save(storage_name(item), File(handle))
        self.written.append(name)
        return name

    def delete_all(self) -> None:
        for name in self.written:
            try:
                self.storage.delete(name)
            except Exception:  # noqa: BLE001 - clean-up is best effort, log and go on
                logger.exception("could not delete %s after a failed import", name)
        self.written.clear()


def _refuse_other_patients_instances(entries: list[Entry], existing: dict[str, int], patient: Patient) -> None:
    for item, frame in entries:
        owner = existing.get(frame.sop_instance_uid)
        if owner is not None and owner != patient.pk:
            logger.warning("upload refused: SOP instance %s belongs to patient %s, not %s", frame.sop_instance_uid, owner, patient.pk)
            raise UidConflict(item.name)


def store_slices(series: Series, entries: list[Entry], patient: Patient, writer: StorageWriter) -> list[int]:
    """A Slice per entry whose SOP instance is not stored yet (each file written once);
    UidConflict when one is stored for another patient. Returns the new slices' ids."""
    sops = [frame.sop_instance_uid for _, frame in entries]
    existing = dict(
        Slice.objects.filter(sop_instance_uid__in=sops).values_list("sop_instance_uid", "series__study__patient_id")
    )
    _refuse_other_patients_instances(entries, existing, patient)
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
            source_format=SOURCE_FORMATS[item.kind],
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
