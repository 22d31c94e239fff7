"""The account name django-axes counts failures against: the e-mail lower-cased, so
"RITA@example.org" and "rita@example.org" share one lockout counter."""
from __future__ import annotations

from typing import Any

from accounts.models import normalise_email


def lockout_username(request: Any, credentials: dict | None = None) -> str:
    if credentials and credentials.get("username"):
        return normalise_email(credentials["username"])
    data = getattr(request, "data", None) or getattr(request, "POST", {})
    return normalise_email(data.get("username") or data.get("email") or "")
