"""Patient portal views."""
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from scans.models import Study


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_patient:
        raise Http404
    studies = Study.objects.visible_to(request.user).select_related("patient")
    return render(request, "patient/home.html", {"studies": studies})
