"""Every login, logout and failed login goes to the audit trail."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts import audit


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record("login", request=request, actor=user, obj=user)


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record("logout", request=request, actor=user, obj=user)


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Never log the password; the attempted account name is what an investigator needs.
    audit.record("login_failed", request=request, actor=None, email=str(credentials.get("username", ""))[:254])
