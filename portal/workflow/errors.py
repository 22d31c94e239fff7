"""Which job errors are worth a retry.

A permanent error (bad input: scans.errors.ScanError, undecodable pixels, anything
unexpected) fails the job at once with its message; a transient one (storage OSError or
timeout, database OperationalError, LLM timeout or connection error) puts the job back in
the queue and the Celery task retries it with exponential backoff (`RetryLater.countdown`).
"""
from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from PIL import UnidentifiedImageError

from scans.errors import ScanError
from scans.jobs import ERROR_MAX_CHARS, JobKind

MAX_BACKOFF_SECONDS = 600.0


class PermanentError(Exception):
    """Bad input: retrying cannot help."""


class RetryLater(Exception):
    """A transient failure: the job is queued again; retry the task after `countdown` s."""

    def __init__(self, job_id: int, attempts: int, cause: BaseException):
        self.job_id = job_id
        self.attempts = attempts
        self.cause = cause
        self.countdown = backoff_seconds(attempts)
        super().__init__(f"job {job_id}: transient error on attempt {attempts}: {describe(cause)}")


def max_attempts(kind: str | None = None) -> int:
    """Attempts per job; a send to a PACS that may be down for a while gets more."""
    if kind == JobKind.SEND:
        return int(settings.DICOM_SEND_MAX_ATTEMPTS)
    return int(settings.JOB_MAX_ATTEMPTS)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff: base, 2·base, 4·base ... capped (JOB_RETRY_BACKOFF_SECONDS)."""
    base = float(settings.JOB_RETRY_BACKOFF_SECONDS)
    return min(base * (2 ** max(attempts - 1, 0)), MAX_BACKOFF_SECONDS)


def describe(exc: BaseException) -> str:
    """The message recorded on the job: the exception's text, named by its type."""
    message = str(exc) or type(exc).__name__
    if type(exc).__name__ not in message:
        message = f"{type(exc).__name__}: {message}"
    return message[:ERROR_MAX_CHARS]


def _optional_types(*names: tuple[str, str]) -> tuple[type[BaseException], ...]:
    """Exception classes of client libraries that may not be installed (the LLM SDKs)."""
    types = []
    for module, name in names:
        try:
            types.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


# Checked first: an UnidentifiedImageError is an OSError, but the bytes will not change.
PERMANENT_TYPES: tuple[type[BaseException], ...] = (
    ScanError, PermanentError, ValueError, TypeError, UnidentifiedImageError,
)
TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, OperationalError, InterfaceError, SoftTimeLimitExceeded,
) + _optional_types(("httpx", "TimeoutException"), ("httpx", "NetworkError"), ("openai", "APITimeoutError"),
                    ("openai", "APIConnectionError"))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PERMANENT_TYPES):
        return False
    return isinstance(exc, TRANSIENT_TYPES)


def is_soft_limit(exc: BaseException) -> bool:
    return isinstance(exc, SoftTimeLimitExceeded)
