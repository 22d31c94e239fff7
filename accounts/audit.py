"""The one way to write the audit trail."""
from __future__ import annotations

from typing import Any, Callable

from django.http import HttpRequest

from accounts.models import AuditEvent, User


# Patient records live in scans, which depends on accounts (not the other way round): scans
# registers how to find patient ids from what an administrator types (an MRN or a name).
PatientLookup = Callable[[str], list[int]]
_patient_lookup: PatientLookup | None = None


def register_patient_lookup(lookup: PatientLookup) -> None:
    global _patient_lookup
    _patient_lookup = lookup


def patient_ids_matching(text: str) -> list[int]:
    """Patient ids for the audit filter: the id itself when digits are typed, plus any record
    whose MRN or name matches."""
    text = text.strip()
    ids = [int(text)] if text.isdigit() else []
    if _patient_lookup is not None and text:
        ids += _patient_lookup(text)
    return ids


def client_ip(request: HttpRequest | None) -> str | None:
    # The socket address only: X-Forwarded-For is client-controlled, and gunicorn is reached
    # directly (docker-compose has no reverse proxy in front of it).
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: User | None = None,
    obj: Any = None,
    object_type: str = "",
    object_id: Any = "",
    patient_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    return AuditEvent.objects.create(
        actor=actor,
        actor_email=getattr(actor, "email", "") or detail.pop("email", ""),
        actor_role=getattr(actor, "role", ""),
        action=action,
        object_type=object_type,
        object_id=str(object_id or ""),
        patient_id=patient_id,
        client_ip=client_ip(request),
        detail=detail,
    )
