"""Ends the session of a user who has been deactivated (or deleted) since logging in."""
from __future__ import annotations

from typing import Callable

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse


class ActiveUserSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # ModelBackend turns an inactive user into AnonymousUser on each request, but the
        # session row would live on; flushing it makes deactivation end the session for good.
        user = getattr(request, "user", None)
        if user is not None and not user.is_authenticated and SESSION_KEY in request.session:
            request.session.flush()
        return self.get_response(request)
