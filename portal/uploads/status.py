"""Live processing status of a study as JSON, polled by static/js/live-status.js."""
from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from django.contrib.auth.decorators import login_required

from portal.workflow.progress import study_progress
from scans.access import get_study_for


@never_cache
@require_GET
@login_required
def study_status(request: HttpRequest, pk: int) -> JsonResponse:
    """404 for a study the user may not see (patients only see their released studies)."""
    study = get_study_for(request.user, pk)
    return JsonResponse(study_progress(study))
