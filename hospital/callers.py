"""Who may open an association with the listener: one rule, used when it is requested."""
from __future__ import annotations

from django.conf import settings

from hospital.models import RemoteNode

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _configured() -> list[tuple[str, str]]:
    entries = []
    for entry in getattr(settings, "DICOM_ALLOWED_CALLERS", []) or []:
        ae, _, host = entry.partition("@")
        entries.append((ae.strip(), (host or "*").strip()))
    return entries


def caller_allowed(ae_title: str, host: str) -> bool:
    """Allowed: a configured caller (DICOM_ALLOWED_CALLERS "AE@host", host may be "*") or an
    enabled remote node marked "may send" (same AE title and host). With neither configured
    (the embedded default), any caller connecting from this machine."""
    ae_title = ae_title.strip()
    configured = _configured()
    nodes = list(RemoteNode.objects.filter(enabled=True, may_send=True).values_list("ae_title", "host"))
    if not configured and not nodes:
        return host in LOOPBACK
    return any(ae == ae_title and allowed in ("*", host) for ae, allowed in configured + nodes)
