"""Issue 18: e-mail logins in any case (with one account per lower-cased address), and no
caching of anything that carries health data."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from accounts.models import User
from scans.models import Patient
from tests.conftest import TEST_PASSWORD
from tests.factories import make_study
from tests.patient.builders import sign

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"


def test_login_page_accepts_the_email_in_any_case(radiologist):
    client = Client()
    response = client.post(LOGIN, {"username": "RITA@EXAMPLE.ORG", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(radiologist.pk)


def test_token_endpoint_accepts_the_email_in_any_case(radiologist):
    response = Client().post(reverse("api:token"), {"email": "Rita@Example.ORG", "password": TEST_PASSWORD},
                             content_type="application/json")
    assert response.status_code in (200, 201) and response.json()["token"]


def test_one_account_per_address_whatever_its_case(radiologist):
    # The database refuses it even when the manager (which lower-cases) is bypassed.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.bulk_create([User(email="RITA@example.org", role="radiologist")])
    with pytest.raises(IntegrityError), transaction.atomic():
        User(email="Rita@Example.org", role="patient").save()
    assert User.objects.get_by_natural_key("rItA@eXample.org") == radiologist


def test_case_variants_share_one_lockout_counter(radiologist):
    variants = ["RITA@example.org", "rita@EXAMPLE.org", "Rita@Example.Org", "rita@example.ORG", "RiTa@example.org"]
    for email in variants[: settings.AXES_FAILURE_LIMIT]:
        Client().post(LOGIN, {"username": email, "password": "not-the-password-1"})
    assert Client().post(LOGIN, {"username": "rita@example.org", "password": TEST_PASSWORD}).status_code == 429


# --- Cache-Control --------------------------------------------------------------------------


def _no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


@pytest.fixture
def alice_signed(patient_alice, radiologist):
    study = make_study(Patient.objects.get(user=patient_alice), label="glioma")
    sign(study, radiologist)
    return study


def test_every_page_and_answer_with_health_data_is_no_store(patient_alice, radiologist, alice_signed):
    patient = Client()
    patient.force_login(patient_alice)
    key_slice = alice_signed.series.first().predictions.first().key_slice
    for url in (
        reverse("patient:home"),
        reverse("patient:report", args=[alice_signed.pk]),
        reverse("patient:report_pdf", args=[alice_signed.pk]),
        reverse("patient:history"),
        reverse("scans:slice_image", args=[key_slice.pk]),
        reverse("api:study_list"),
        reverse("api:study_detail", args=[alice_signed.pk]),
        reverse("api:study_report", args=[alice_signed.pk]),
        reverse("api:patient_list"),
    ):
        response = patient.get(url)
        assert response.status_code == 200, url
        assert _no_store(response), f"{url}: Cache-Control {response.get('Cache-Control')!r}"
    staff = Client()
    staff.force_login(radiologist)
    for url in (
        reverse("radiology:worklist"),
        reverse("scans:slice_thumbnail", args=[key_slice.pk]),
        reverse("scans:series_export", args=[key_slice.series_id]),
        reverse("uploads:study", args=[alice_signed.pk]),
    ):
        response = staff.get(url)
        assert response.status_code == 200, url
        assert _no_store(response), f"{url}: Cache-Control {response.get('Cache-Control')!r}"
    assert _no_store(Client().get(LOGIN))
