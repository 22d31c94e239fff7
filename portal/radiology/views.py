"""Radiologist workspace views."""
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from scans.access import require_clinical_staff
from scans.models import Study


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    require_clinical_staff(request.user)
    studies = Study.objects.awaiting_review().select_related("patient")[:50]
    return render(request, "radiology/worklist.html", {"studies": studies})
