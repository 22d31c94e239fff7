"""Named, expiring API tokens: issue, authenticate, list, revoke.

`Authorization: Token <key>` as before, but each client gets its own token (revoking one
logs out only that client), every token expires (API_TOKEN_LIFETIME_DAYS, default 30), and
all of a user's tokens stop working when the password changes or the account is deactivated.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts import audit
from accounts.models import ApiToken, User

# last_used_at is written at most this often per token (not one UPDATE per request).
TOUCH_EVERY = timedelta(minutes=1)


def lifetime() -> timedelta:
    return timedelta(days=float(getattr(settings, "API_TOKEN_LIFETIME_DAYS", 30)))


def issue(user: User, name: str, *, request: HttpRequest | None = None) -> tuple[ApiToken, str]:
    token, key = ApiToken.issue(user, name.strip() or "API client", lifetime())
    audit.record("api.token.issue", request=request, actor=user, obj=user, token=token.pk, name=token.name)
    return token, key


def tokens_of(user: User) -> list[ApiToken]:
    """The user's tokens that still work, newest first."""
    return [t for t in ApiToken.objects.live().filter(user=user).select_related("user") if t.is_valid()]


def revoke(token: ApiToken, *, request: HttpRequest | None = None) -> None:
    token.delete()
    audit.record("api.token.revoke", request=request, object_type="accounts.user", object_id=token.user_id,
                 token=token.pk, name=token.name)


def revoke_all(user: User) -> int:
    deleted, _ = ApiToken.objects.filter(user=user).delete()
    return deleted


class ApiTokenAuthentication(TokenAuthentication):
    """DRF authentication by `Authorization: Token <key>` against ApiToken."""

    def authenticate_credentials(self, key: str) -> tuple[User, ApiToken]:
        token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key)).first()
        if token is None or not token.is_valid():
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.user, token
