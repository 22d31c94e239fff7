"""One decorator shape for every role-gated area of the portal."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods


def guarded_view(check: Callable[[Any], None], *methods: str) -> Callable:
    """Log-in required, then `check(user)` (which raises Http404 for anyone outside the area,
    whatever the method, so the area does not reveal itself), then the allowed methods (405)."""

    def decorate(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            check(request.user)
            return require_http_methods(list(methods))(view)(request, *args, **kwargs)

        return wrapper

    return decorate
