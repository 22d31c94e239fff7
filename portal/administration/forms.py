from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import NewAccountEmailMixin
from accounts.models import Role, User
from scans.models import Patient


class PatientAccountForm(NewAccountEmailMixin, forms.Form):
    """A patient account and the one record it may see: an existing record without an
    account, or a new record."""

    email = forms.EmailField(label=_("Patient's e-mail"), max_length=254)
    full_name = forms.CharField(label=_("Full name"), max_length=200)
    existing_record = forms.ModelChoiceField(
        label=_("Existing patient record"),
        queryset=Patient.objects.filter(user__isnull=True).order_by("mrn"),
        required=False,
        empty_label=_("— create a new record —"),
    )
    mrn = forms.CharField(label=_("MRN of the new record"), max_length=64, required=False)
    birth_date = forms.DateField(label=_("Birth date of the new record"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    send_invitation = forms.BooleanField(label=_("E-mail a set-password link now"), required=False, initial=True)


    def clean(self):
        data = super().clean()
        mrn = (data.get("mrn") or "").strip()
        if data.get("existing_record") is None:
            if not mrn:
                self.add_error("mrn", _("Choose an existing record or give the MRN of a new one."))
            elif Patient.objects.filter(mrn=mrn).exists():
                self.add_error("mrn", _("A record with this MRN exists; choose it from the list instead."))
        elif mrn:
            self.add_error("mrn", _("Leave the MRN empty when you choose an existing record."))
        data["mrn"] = mrn
        return data


class LinkAccountForm(forms.Form):
    user = forms.ModelChoiceField(
        label=_("Patient account"),
        queryset=User.objects.filter(role=Role.PATIENT, is_active=True, patient_record__isnull=True).order_by("email"),
        empty_label=None,
    )


class PatientFilterForm(forms.Form):
    q = forms.CharField(label=_("MRN or name"), required=False, max_length=200)
    linked = forms.ChoiceField(
        label=_("Account"), required=False, choices=[("", _("Any")), ("1", _("Linked")), ("0", _("No account"))]
    )
