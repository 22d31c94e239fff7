"""Issue 18: API tokens expire, die with a password change or deactivation, and are named
per client: a user lists them and revokes one without logging out the others."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken, AuditEvent
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def _issue(user, name: str) -> tuple[int, str]:
    response = Client().post(reverse("api:token"), {"email": user.email, "password": TEST_PASSWORD, "name": name},
                             content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == name and body["token"].startswith(body["prefix"])
    return body["id"], body["token"]


def _works(key: str) -> bool:
    status = Client(HTTP_AUTHORIZATION=f"Token {key}").get(reverse("api:study_list")).status_code
    assert status in (200, 401)
    return status == 200


def test_tokens_expire_after_a_configurable_lifetime(radiologist, settings):
    token_id, key = _issue(radiologist, "laptop")
    token = ApiToken.objects.get(pk=token_id)
    assert token.expires_at - token.created_at == timedelta(days=30)
    assert _works(key)
    ApiToken.objects.filter(pk=token_id).update(created_at=timezone.now() - timedelta(days=400),
                                                expires_at=timezone.now() - timedelta(days=370))
    assert not _works(key)
    settings.API_TOKEN_LIFETIME_DAYS = 1
    token_id, _ = _issue(radiologist, "short")
    token = ApiToken.objects.get(pk=token_id)
    assert token.expires_at - token.created_at == timedelta(days=1)


def test_password_change_revokes_every_token(radiologist):
    _, first = _issue(radiologist, "laptop")
    _, second = _issue(radiologist, "pacs-bridge")
    radiologist.set_password("a-brand-new-password-42")
    radiologist.save()
    assert not _works(first) and not _works(second)
    assert Client(HTTP_AUTHORIZATION=f"Token {first}").get(reverse("api:token_list")).status_code == 401


def test_admin_password_reset_and_deactivation_revoke_tokens(radiologist, administrator, patient_alice):
    _, rita = _issue(radiologist, "laptop")
    _, alice = _issue(patient_alice, "phone")
    services.reset_password(radiologist)
    assert not _works(rita)
    services.deactivate(patient_alice)
    services.reactivate(patient_alice)  # reactivation does not bring old tokens back
    assert not _works(alice)
    assert ApiToken.objects.filter(user=patient_alice).count() == 0


def test_named_tokens_are_listed_and_revoked_one_by_one(radiologist, patient_alice):
    laptop_id, laptop = _issue(radiologist, "laptop")
    bridge_id, bridge = _issue(radiologist, "pacs-bridge")
    client = Client(HTTP_AUTHORIZATION=f"Token {laptop}")
    listed = client.get(reverse("api:token_list")).json()
    assert {t["name"] for t in listed} == {"laptop", "pacs-bridge"}
    assert all("token" not in t and "key_hash" not in t for t in listed)
    # Another user cannot even see that the token exists.
    _, alice = _issue(patient_alice, "phone")
    other = Client(HTTP_AUTHORIZATION=f"Token {alice}")
    assert other.delete(reverse("api:token_detail", args=[bridge_id])).status_code == 404
    assert _works(bridge)
    # Revoking one client's token leaves the others working.
    assert client.delete(reverse("api:token_detail", args=[bridge_id])).status_code == 204
    assert not _works(bridge) and _works(laptop)
    assert AuditEvent.objects.filter(action="api.token.revoke", actor=radiologist).exists()
    # DELETE /api/token/ revokes the token the request came with, and only that one.
    _, third = _issue(radiologist, "ci")
    assert Client(HTTP_AUTHORIZATION=f"Token {third}").delete(reverse("api:token")).status_code == 204
    assert not _works(third) and _works(laptop)
    assert ApiToken.objects.filter(pk=laptop_id).exists()


def test_keys_are_stored_only_as_hashes(radiologist):
    token_id, key = _issue(radiologist, "laptop")
    row = ApiToken.objects.filter(pk=token_id).values().get()
    assert key not in [str(v) for v in row.values()]


def test_token_endpoints_are_in_the_api_docs(client):
    schema = client.get(reverse("api:schema")).content.decode()
    assert "/api/tokens/" in schema and "/api/tokens/{id}/" in schema
    assert "expires_at" in schema
