"""Errors raised while reading an upload. Each names the file and the problem, and carries
the HTTP status a view should answer with (the management command turns it into a
CommandError). Nothing is stored when one of these escapes `scans.ingest.import_files`."""
from __future__ import annotations


class ScanError(Exception):
    status = 400
    code = "bad_file"

    def __init__(self, filename: str, message: str, status: int | None = None) -> None:
        self.filename = str(filename)
        self.message = str(message)
        if status is not None:
            self.status = status
        super().__init__(f"{self.filename}: {self.message}")

    def as_dict(self) -> dict:
        return {"file": self.filename, "error": self.message, "code": self.code}


class UnsupportedFileType(ScanError):
    status = 415
    code = "unsupported_type"


class NotAnImage(UnsupportedFileType):
    """A valid DICOM object whose SOP class is not an image the portal stores as slices
    (SEG, SR, PR, KO, RT, encapsulated PDF...). Inside a folder or zip it is listed as
    rejected; uploaded on its own it answers 415."""

    code = "not_an_image"


class TooLarge(ScanError):
    status = 413
    code = "too_large"


class CorruptFile(ScanError):
    code = "corrupt"


class ImageBomb(ScanError):
    status = 413
    code = "image_bomb"


class ZipBomb(ScanError):
    status = 413
    code = "zip_bomb"


class UnsafeArchive(ScanError):
    code = "unsafe_archive"


class NoImages(ScanError):
    code = "no_images"


class PatientMismatch(ScanError):
    status = 409
    code = "patient_mismatch"


class UidConflict(ScanError):
    """A Study/Series/SOP Instance UID of the upload is already used elsewhere in the
    archive. One fixed message whatever the other record is, so an upload never confirms
    that another patient's study exists; the server log names the records for operators."""

    status = 409
    code = "uid_conflict"
    MESSAGE = (
        "the DICOM identifiers (UIDs) in this file cannot be accepted for this patient; "
        "re-export the study from the scanner or PACS, or ask an administrator to check it"
    )

    def __init__(self, filename: str) -> None:
        super().__init__(filename, self.MESSAGE)


class IntegrityError(ScanError):
    """A stored file no longer matches the SHA-256 recorded when it was imported."""

    status = 500
    code = "integrity"
