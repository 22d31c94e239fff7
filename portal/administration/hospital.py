"""Administration of the hospital connection: remote DICOM nodes (with a C-ECHO test), the
log of results sent to PACS (with re-send), and the studies waiting in the unmatched list."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import audit
from accounts.views import admin_view
from hospital import scu
from hospital.models import DicomSend, RemoteNode, UnmatchedState, UnmatchedStudy
from portal.workflow import dicom_in, pacs
from scans.models import Patient


class RemoteNodeForm(forms.ModelForm):
    class Meta:
        model = RemoteNode
        fields = ["name", "ae_title", "host", "port", "receives_results", "may_send", "enabled"]


class LinkPatientForm(forms.Form):
    patient = forms.ModelChoiceField(label=gettext_lazy("Existing patient record"), queryset=Patient.objects.order_by("mrn"))


@admin_view("GET", "POST")
def nodes(request: HttpRequest) -> HttpResponse:
    form = RemoteNodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        node = form.save()
        audit.record("admin.dicom_node.create", request=request, obj=node, ae_title=node.ae_title, host=node.host,
                     port=node.port)
        messages.success(request, _("Added %(node)s.") % {"node": node})
        return redirect("administration:dicom_nodes")
    return render(request, "administration/dicom_nodes.html",
                  {"nodes": RemoteNode.objects.all(), "form": form}, status=400 if form.errors else 200)


@admin_view("POST")
def node_echo(request: HttpRequest, pk: int) -> HttpResponse:
    node = get_object_or_404(RemoteNode, pk=pk)
    result = scu.echo(node)
    audit.record("admin.dicom_node.echo", request=request, obj=node, ok=result.ok)
    (messages.success if result.ok else messages.error)(request, f"{node.ae_title}: {result.message}")
    return redirect("administration:dicom_nodes")


@admin_view("GET")
def sends(request: HttpRequest) -> HttpResponse:
    log = DicomSend.objects.select_related("job", "node", "review", "job__study__patient")
    page = Paginator(log, 50).get_page(request.GET.get("page"))
    return render(request, "administration/dicom_sends.html", {"page": page})


@admin_view("POST")
def resend(request: HttpRequest, pk: int) -> HttpResponse:
    send = get_object_or_404(DicomSend.objects.select_related("job__study", "node"), pk=pk)
    pacs.resend(send, user=request.user, request=request)
    messages.success(request, _("Queued again for %(node)s.") % {"node": send.node.ae_title})
    return redirect("administration:dicom_sends")


@admin_view("GET")
def unmatched(request: HttpRequest) -> HttpResponse:
    pending = UnmatchedStudy.objects.filter(state=UnmatchedState.PENDING)
    decided = UnmatchedStudy.objects.exclude(state=UnmatchedState.PENDING)[:50]
    return render(request, "administration/unmatched.html", {"pending": pending, "decided": decided})


@admin_view("GET")
def unmatched_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(UnmatchedStudy, pk=pk)
    return render(request, "administration/unmatched_detail.html",
                  {"item": item, "count": item.instances.count(), "link_form": LinkPatientForm()})


def _decide(request: HttpRequest, pk: int, action) -> HttpResponse:
    item = get_object_or_404(UnmatchedStudy, pk=pk)
    try:
        message = action(item)
    except dicom_in.UnmatchedError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, message)
    return redirect("administration:unmatched_detail", pk=pk)


@admin_view("POST")
def unmatched_create(request: HttpRequest, pk: int) -> HttpResponse:
    def create(item: UnmatchedStudy) -> str:
        result = dicom_in.file_unmatched(item, user=request.user, request=request)
        return _("Created the record and filed %(n)d image(s).") % {"n": len(result.new_slice_ids)}

    return _decide(request, pk, create)


@admin_view("POST")
def unmatched_link(request: HttpRequest, pk: int) -> HttpResponse:
    form = LinkPatientForm(request.POST)

    def link(item: UnmatchedStudy) -> str:
        if not form.is_valid():
            raise dicom_in.UnmatchedError(_("Choose the patient record to file these images under."))
        result = dicom_in.file_unmatched(item, user=request.user, patient=form.cleaned_data["patient"], request=request)
        return _("Filed %(n)d image(s) under %(mrn)s.") % {"n": len(result.new_slice_ids),
                                                           "mrn": form.cleaned_data["patient"].mrn}

    return _decide(request, pk, link)


@admin_view("POST")
def unmatched_reject(request: HttpRequest, pk: int) -> HttpResponse:
    def reject(item: UnmatchedStudy) -> str:
        dicom_in.reject_unmatched(item, user=request.user, reason=request.POST.get("reason", "")[:500], request=request)
        return _("Rejected; the images were deleted.")

    return _decide(request, pk, reject)
