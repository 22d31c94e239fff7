"""The administrators' area: every task of the issue, each one audited."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import AuditEvent, User
from scans.models import Patient
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-and-unusual-passphrase-42"


@pytest.fixture
def admin_client(client, administrator):
    client.force_login(administrator)
    return client


def _link_from_outbox(to: str) -> str:
    message = [m for m in mail.outbox if to in m.to][-1]
    return re.search(r"https?://\S+/accounts/set-password/\S+/", message.body).group(0)


def _set_password(client, link: str, password: str = NEW_PASSWORD):
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.context["validlink"], "the link from the e-mail must work"
    return client.post(form_page.redirect_chain[-1][0], {"new_password1": password, "new_password2": password}, follow=True)


def test_create_radiologist_sends_invitation_and_audits(admin_client, administrator, client):
    response = admin_client.post(
        reverse("accounts:user_create"),
        {"email": "New.Doc@Example.org", "full_name": "Dr New", "role": "radiologist", "send_invitation": "on"},
    )
    user = User.objects.get(email="new.doc@example.org")
    assert response.status_code == 302 and user.role == "radiologist" and not user.has_usable_password()
    assert response["Location"] == reverse("accounts:user_detail", args=[user.pk])
    assert AuditEvent.objects.filter(action="admin.user.create", actor=administrator, object_id=str(user.pk)).exists()
    assert AuditEvent.objects.filter(action="admin.user.set_password_link", object_id=str(user.pk)).exists()
    link = _link_from_outbox(user.email)
    admin_client.logout()
    done = _set_password(admin_client, link)
    assert done.redirect_chain[-1][0] == reverse("accounts:login")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    # One-time: the same link no longer works once the password is set.
    assert not admin_client.get(link.split("testserver", 1)[1], follow=True).context["validlink"]


def test_staff_form_refuses_patient_role_and_duplicate_email(admin_client, radiologist):
    r1 = admin_client.post(reverse("accounts:user_create"), {"email": "x@example.org", "full_name": "X", "role": "patient"})
    r2 = admin_client.post(reverse("accounts:user_create"), {"email": "RITA@example.org", "full_name": "X", "role": "radiologist"})
    assert r1.status_code == 200 and "role" in r1.context["form"].errors
    assert r2.status_code == 200 and "email" in r2.context["form"].errors
    assert not User.objects.filter(email="x@example.org").exists()


def test_create_patient_account_with_new_record(admin_client, administrator):
    response = admin_client.post(
        reverse("administration:patient_account_create"),
        {"email": "pat@example.org", "full_name": "Pat New", "mrn": "MRN-NEW-1", "send_invitation": "on"},
    )
    record = Patient.objects.get(mrn="MRN-NEW-1")
    assert response.status_code == 302 and response["Location"] == reverse("administration:patient_detail", args=[record.pk])
    assert record.user.email == "pat@example.org" and record.user.role == "patient"
    actions = set(AuditEvent.objects.filter(actor=administrator).values_list("action", flat=True))
    assert {"admin.user.create", "admin.patient.create", "admin.patient.link", "admin.user.set_password_link"} <= actions
    assert AuditEvent.objects.get(action="admin.patient.link").patient_id == record.pk


def test_create_patient_account_for_existing_record_and_validation(admin_client, patient_alice):
    record = Patient.objects.create(mrn="MRN-OLD", full_name="Old Record")
    linked = patient_alice.patient_record
    # A record that already has an account is not offered.
    bad = admin_client.post(
        reverse("administration:patient_account_create"),
        {"email": "p2@example.org", "full_name": "P2", "existing_record": linked.pk},
    )
    assert bad.status_code == 200 and "existing_record" in bad.context["form"].errors
    neither = admin_client.post(reverse("administration:patient_account_create"), {"email": "p2@example.org", "full_name": "P2"})
    assert "mrn" in neither.context["form"].errors
    ok = admin_client.post(
        reverse("administration:patient_account_create"),
        {"email": "p2@example.org", "full_name": "P2", "existing_record": record.pk},
    )
    assert ok.status_code == 302 and ok["Location"] == reverse("administration:patient_detail", args=[record.pk])
    record.refresh_from_db()
    assert record.user.email == "p2@example.org"


def test_link_and_unlink_existing_account(admin_client, client):
    user = User.objects.create_user("solo@example.org", TEST_PASSWORD, role="patient")
    record = Patient.objects.create(mrn="MRN-SOLO")
    admin_client.post(reverse("administration:patient_link", args=[record.pk]), {"user": user.pk})
    record.refresh_from_db()
    assert record.user == user
    admin_client.post(reverse("administration:patient_unlink", args=[record.pk]))
    record.refresh_from_db()
    assert record.user is None
    assert AuditEvent.objects.filter(action="admin.patient.unlink", patient_id=record.pk).exists()


def test_reset_password_invalidates_old_password_and_sessions(admin_client, radiologist, client):
    from django.test import Client

    victim = Client()
    assert victim.post(reverse("accounts:login"), {"username": radiologist.email, "password": TEST_PASSWORD}).status_code == 302
    assert victim.get(reverse("radiology:worklist")).status_code == 200
    admin_client.post(reverse("accounts:user_reset_password", args=[radiologist.pk]))
    radiologist.refresh_from_db()
    assert not radiologist.has_usable_password()
    assert victim.get(reverse("radiology:worklist")).status_code == 302  # back to login
    assert AuditEvent.objects.filter(action="admin.user.password_reset", object_id=str(radiologist.pk)).exists()
    link = _link_from_outbox(radiologist.email)
    _set_password(Client(), link)
    radiologist.refresh_from_db()
    assert radiologist.check_password(NEW_PASSWORD)


def test_set_password_enforces_rules(admin_client, radiologist):
    from django.test import Client

    admin_client.post(reverse("accounts:user_send_link", args=[radiologist.pk]))
    response = _set_password(Client(), _link_from_outbox(radiologist.email), password="password1234")
    assert response.context["form"].errors  # common password refused
    response = _set_password(Client(), _link_from_outbox(radiologist.email), password="Sh0rt!x")
    assert "new_password2" in response.context["form"].errors  # under 12 characters
    radiologist.refresh_from_db()
    assert radiologist.check_password(TEST_PASSWORD)


def test_deactivate_ends_sessions_and_reactivate(admin_client, administrator, radiologist):
    from django.test import Client

    victim = Client()
    victim.force_login(radiologist)
    assert victim.get(reverse("radiology:worklist")).status_code == 200
    admin_client.post(reverse("accounts:user_deactivate", args=[radiologist.pk]))
    radiologist.refresh_from_db()
    assert not radiologist.is_active
    assert victim.get(reverse("radiology:worklist")).status_code == 302
    assert AuditEvent.objects.get(action="admin.user.deactivate").detail["sessions_ended"] == 1
    # Cannot deactivate yourself.
    admin_client.post(reverse("accounts:user_deactivate", args=[administrator.pk]))
    administrator.refresh_from_db()
    assert administrator.is_active
    admin_client.post(reverse("accounts:user_reactivate", args=[radiologist.pk]))
    radiologist.refresh_from_db()
    assert radiologist.is_active


def test_audit_log_filters(admin_client, administrator, radiologist, patient_alice):
    from accounts import audit

    audit.record("api.study.view", actor=radiologist, object_type="scans.study", object_id=7, patient_id=99)
    audit.record("api.report.view", actor=patient_alice, object_type="scans.study", object_id=8, patient_id=100)
    url = reverse("accounts:audit_log")
    page = admin_client.get(url, {"actor": "rita"})
    assert {e.action for e in page.context["page"]} == {"api.study.view"}
    assert {e.action for e in admin_client.get(url, {"patient": 100}).context["page"]} == {"api.report.view"}
    assert {e.object_id for e in admin_client.get(url, {"object_type": "scans.study", "object_id": "7"}).context["page"]} == {"7"}
    assert list(admin_client.get(url, {"date_from": "2000-01-01", "date_to": "2000-01-02"}).context["page"]) == []
    bad = admin_client.get(url, {"date_from": "2020-01-02", "date_to": "2020-01-01"})
    assert bad.status_code == 200 and bad.context["form"].errors


def test_user_list_filters(admin_client, radiologist, patient_alice, deactivated_user):
    url = reverse("accounts:admin_home")
    assert {u.email for u in admin_client.get(url, {"role": "patient"}).context["page"]} == {patient_alice.email}
    assert {u.email for u in admin_client.get(url, {"active": "0"}).context["page"]} == {deactivated_user.email}
    assert {u.email for u in admin_client.get(url, {"q": "rita"}).context["page"]} == {radiologist.email}


@pytest.mark.parametrize(
    "url_name, action",
    [
        ("accounts:user_send_link", "admin.user.set_password_link"),
        ("accounts:user_reset_password", "admin.user.password_reset"),
        ("accounts:user_deactivate", "admin.user.deactivate"),
        ("accounts:user_reactivate", "admin.user.reactivate"),
    ],
)
def test_every_user_change_is_audited_with_who_role_and_ip(url_name, action, administrator, radiologist):
    from django.test import Client

    admin = Client(REMOTE_ADDR="198.51.100.20")
    admin.force_login(administrator)
    assert admin.post(reverse(url_name, args=[radiologist.pk])).status_code == 302
    event = AuditEvent.objects.get(action=action)
    assert (event.actor, event.actor_role, event.client_ip) == (administrator, "administrator", "198.51.100.20")
    assert (event.object_type, event.object_id) == ("accounts.user", str(radiologist.pk))


def test_admin_pages_refuse_get_on_actions_and_other_roles(client, radiologist, patient_alice):
    client.force_login(radiologist)
    assert client.get(reverse("accounts:admin_home")).status_code == 404
    assert client.post(reverse("accounts:user_deactivate", args=[patient_alice.pk])).status_code == 404
    patient_alice.refresh_from_db()
    assert patient_alice.is_active
