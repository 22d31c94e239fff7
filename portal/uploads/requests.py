"""What the upload page and POST /api/uploads/ share about an HTTP upload: the size checks
before the body is parsed, and the JSON answer."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest
from django.urls import reverse

from scans.errors import TooLarge
from scans.ingest import ImportResult

# Multipart framing (boundaries, part headers, form fields) on top of the files themselves.
MULTIPART_OVERHEAD = 1024 * 1024


def request_too_large(request: HttpRequest) -> TooLarge | None:
    """A TooLarge error when the declared body exceeds the upload limit, else None."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return TooLarge("(request)", "invalid Content-Length")
    limit = int(settings.UPLOAD_MAX_BYTES)
    if length > limit + MULTIPART_OVERHEAD:
        return TooLarge("(upload)", f"the upload is {length:,} bytes; the limit is {limit:,} bytes")
    return None


def files_refused(parse: Any) -> TooLarge | None:
    """Run parse() (which reads the multipart body) and turn Django's limit errors into the
    documented 413 answer instead of its HTML 400 page. None when the body parsed."""
    try:
        parse()
    except TooManyFilesSent:
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return TooLarge("(upload)", f"too many files in one upload (limit {limit:,}); upload a zip instead")
    except (RequestDataTooBig, TooManyFieldsSent) as exc:
        return TooLarge("(upload)", str(exc))
    return None


def result_payload(result: ImportResult, user: Any) -> dict:
    payload = result.as_json()
    for study in payload["studies"]:
        study["url"] = reverse("uploads:study", args=[study["id"]]) if user.is_clinical_staff else None
        study["status_url"] = reverse("uploads:study_status", args=[study["id"]]) if user.is_clinical_staff else None
    return payload
