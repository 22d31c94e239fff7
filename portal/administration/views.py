"""Administration of patient records and their accounts. A patient account sees exactly
one scans.Patient; these views create, link and unlink that pairing, and audit it."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts import audit, services
from accounts.models import Role, User
from accounts.views import admin_view, create_account_from_form
from portal.administration.forms import LinkAccountForm, PatientAccountForm, PatientFilterForm
from scans.access import get_patient_for
from scans.models import Patient


@admin_view("GET")
def patients(request: HttpRequest) -> HttpResponse:
    form = PatientFilterForm(request.GET or None)
    records = Patient.objects.select_related("user").order_by("mrn")
    if form.is_valid():
        if q := form.cleaned_data["q"].strip():
            records = records.filter(Q(mrn__icontains=q) | Q(full_name__icontains=q))
        if linked := form.cleaned_data["linked"]:
            records = records.filter(user__isnull=linked == "0")
    page = Paginator(records, 50).get_page(request.GET.get("page"))
    return render(request, "administration/patients.html", {"form": form, "page": page})


@admin_view("GET")
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_patient_for(request.user, pk)
    return render(request, "administration/patient_detail.html", {"record": record, "link_form": LinkAccountForm()})


def _create_linked_patient_account(request: HttpRequest, data: dict) -> User:
    """A patient account linked to an existing record or to a new one, in one transaction."""
    with transaction.atomic():
        user = services.create_account(email=data["email"], full_name=data["full_name"], role=Role.PATIENT, request=request)
        record = data["existing_record"]
        if record is None:
            record = Patient.objects.create(mrn=data["mrn"], full_name=data["full_name"], birth_date=data["birth_date"])
            audit.record("admin.patient.create", request=request, obj=record, patient_id=record.pk, mrn=record.mrn)
        # Lock the row: two administrators must not link the same record at once.
        record = Patient.objects.select_for_update().get(pk=record.pk)
        if record.user_id is not None:
            raise services.AccountError(_("This record was linked to another account meanwhile."))
        record.user = user  # also sets user.patient_record
        record.save(update_fields=["user"])
        audit.record("admin.patient.link", request=request, obj=record, patient_id=record.pk, user_id=user.pk)
    return user


@admin_view("GET", "POST")
def patient_account_create(request: HttpRequest) -> HttpResponse:
    form = PatientAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = create_account_from_form(
            request, form, lambda: _create_linked_patient_account(request, form.cleaned_data),
            invited_message=_("Patient account created, linked and invited: %(email)s."),
            created_message=_("Patient account created and linked: %(email)s."),
        )
        if user is not None:
            return redirect("administration:patient_detail", pk=user.patient_record.pk)
    return render(request, "administration/patient_account_form.html", {"form": form})


@admin_view("POST")
def patient_link(request: HttpRequest, pk: int) -> HttpResponse:
    form = LinkAccountForm(request.POST)
    with transaction.atomic():
        record = get_patient_for(request.user, pk, lock=True)
        if record.user_id is not None:
            messages.error(request, _("This record already has an account; unlink it first."))
        elif not form.is_valid():
            messages.error(request, _("Choose an active patient account that has no record yet."))
        else:
            record.user = form.cleaned_data["user"]
            record.save(update_fields=["user"])
            audit.record("admin.patient.link", request=request, obj=record, patient_id=record.pk, user_id=record.user_id)
            messages.success(request, _("Linked %(email)s to this record.") % {"email": record.user.email})
    return redirect("administration:patient_detail", pk=pk)


@admin_view("POST")
def patient_unlink(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():
        record = get_patient_for(request.user, pk, lock=True)
        if record.user is None:
            messages.error(request, _("This record has no account."))
        else:
            user = record.user
            record.user = None
            record.save(update_fields=["user"])
            # The account now sees nothing; end its sessions so no open page keeps showing data.
            services.end_sessions(user)
            audit.record("admin.patient.unlink", request=request, obj=record, patient_id=record.pk, user_id=user.pk)
            messages.success(request, _("Unlinked %(email)s from this record.") % {"email": user.email})
    return redirect("administration:patient_detail", pk=pk)
