"""The audit trail: who, role, action, object, when and client IP for logins, reviews and
admin changes; and the database refuses to rewrite it."""
from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from accounts import audit
from accounts.models import AuditEvent
from scans.models import StudyStatus
from tests.conftest import TEST_PASSWORD
from tests.factories import make_study

pytestmark = pytest.mark.django_db


def test_successful_and_failed_logins_are_audited(radiologist):
    Client(REMOTE_ADDR="192.0.2.44").post("/accounts/login/", {"username": radiologist.email, "password": "nope-nope-nope"})
    Client(REMOTE_ADDR="192.0.2.45").post("/accounts/login/", {"username": radiologist.email, "password": TEST_PASSWORD})
    failed = AuditEvent.objects.get(action="login_failed")
    assert failed.actor is None and failed.actor_email == radiologist.email and failed.client_ip == "192.0.2.44"
    assert "nope" not in str(failed.detail)  # never the password
    ok = AuditEvent.objects.get(action="login")
    assert (ok.actor, ok.actor_role, ok.client_ip) == (radiologist, "radiologist", "192.0.2.45")
    assert ok.at is not None and ok.object_type == "accounts.user" and ok.object_id == str(radiologist.pk)


def test_review_actions_are_audited_with_role_object_and_ip(radiologist, patient_alice):
    study = make_study(patient_alice.patient_record, status=StudyStatus.AWAITING_REVIEW)
    client = Client(REMOTE_ADDR="192.0.2.9")
    client.force_login(radiologist)
    client.post(reverse("radiology:add_note", args=[study.pk]), {"text": "Check the left temporal lobe"})
    client.post(reverse("radiology:sign_off", args=[study.pk]), {"decision": "confirm"})
    client.post(reverse("radiology:amend", args=[study.pk]),
                {"decision": "override", "final_class": "meningioma", "reason": "Extra-axial on review"})
    events = {e.action: e for e in AuditEvent.objects.filter(actor=radiologist)}
    for action in ("review.note_add", "review.sign_off", "review.amend"):
        event = events[action]
        assert event.actor_role == "radiologist" and event.client_ip == "192.0.2.9", action
        assert event.patient_id == study.patient_id, action


def test_orm_refuses_to_change_or_delete_audit_rows(radiologist):
    event = audit.record("test.event", actor=radiologist, object_type="x", object_id=1)
    event.action = "rewritten"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


def test_postgres_refuses_raw_update_and_delete(postgres, radiologist):
    event = audit.record("test.event", actor=radiologist, object_type="x", object_id=1)
    for sql in (
        "UPDATE accounts_auditevent SET action = 'rewritten' WHERE id = %s",
        "UPDATE accounts_auditevent SET client_ip = NULL, actor_email = '' WHERE id = %s",
        "DELETE FROM accounts_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    with connection.cursor() as cursor:
        cursor.execute("SELECT action, actor_email FROM accounts_auditevent WHERE id = %s", [event.pk])
        assert cursor.fetchone() == ("test.event", radiologist.email)
        # Appending still works.
        cursor.execute(
            "INSERT INTO accounts_auditevent (at, actor_email, actor_role, action, object_type, object_id, detail) "
            "VALUES (now(), '', '', 'raw.insert', '', '', '{}'::jsonb)"
        )
    assert AuditEvent.objects.filter(action="raw.insert").exists()
