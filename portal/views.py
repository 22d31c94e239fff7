"""Landing views: each role goes to its own home page after login."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import reverse

from accounts.models import Role

ROLE_HOME = {
    Role.PATIENT: "patient:home",
    Role.RADIOLOGIST: "radiology:worklist",
    Role.ADMINISTRATOR: "accounts:admin_home",
}


def home_url_for(user) -> str:
    return reverse(ROLE_HOME[user.role])


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect(home_url_for(request.user))


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for the load balancer and docker-compose: no database, no session."""
    return JsonResponse({"status": "ok"})


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says: send them to the static file."""
    return redirect(static("favicon.ico"), permanent=True)
