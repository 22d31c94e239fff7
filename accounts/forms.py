from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, User, normalise_email


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label=_("E-mail"), widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))

    def clean_username(self) -> str:
        return normalise_email(self.cleaned_data["username"])


class NewAccountEmailMixin:
    """For forms that create an account: the e-mail must be new (compared case-insensitively)."""

    cleaned_data: dict

    def clean_email(self) -> str:
        email = normalise_email(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this e-mail address already exists."))
        return email


class StaffAccountForm(NewAccountEmailMixin, forms.Form):
    """Radiologist and administrator accounts. Patient accounts are created together with
    their patient record in the administration area (portal.administration)."""

    email = forms.EmailField(label=_("E-mail"), max_length=254)
    full_name = forms.CharField(label=_("Full name"), max_length=200)
    role = forms.ChoiceField(
        label=_("Role"), choices=[(Role.RADIOLOGIST.value, Role.RADIOLOGIST.label), (Role.ADMINISTRATOR.value, Role.ADMINISTRATOR.label)]
    )
    send_invitation = forms.BooleanField(label=_("E-mail a set-password link now"), required=False, initial=True)



class UserFilterForm(forms.Form):
    q = forms.CharField(label=_("Name or e-mail"), required=False, max_length=200)
    role = forms.ChoiceField(label=_("Role"), required=False, choices=[("", _("Any"))] + list(Role.choices))
    active = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any")), ("1", _("Active")), ("0", _("Deactivated"))]
    )


class AuditFilterForm(forms.Form):
    actor = forms.CharField(label=_("Actor e-mail contains"), required=False, max_length=254)
    action = forms.CharField(label=_("Action contains (e.g. review)"), required=False, max_length=64,
                             widget=forms.TextInput(attrs={"list": "audit-actions"}))
    object_type = forms.CharField(label=_("Object type"), required=False, max_length=64)
    object_id = forms.CharField(label=_("Object id"), required=False, max_length=64)
    patient = forms.CharField(label=_("Patient (MRN or name)"), required=False, max_length=200)
    date_from = forms.DateField(label=_("From (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("The start date is after the end date."))
        return data
