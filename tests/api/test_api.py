"""REST API: token and session auth, object-level visibility, pagination, signed reports,
note and sign-off through the review service, and the audit rows they write."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts import tokens
from accounts.models import ApiToken, AuditEvent
from scans.models import ClinicalNote, StudyStatus
from tests.conftest import TEST_PASSWORD
from tests.factories import make_patient, make_study

pytestmark = pytest.mark.django_db


def token_client(user) -> Client:
    _, key = tokens.issue(user, "test client")
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture
def studies(patient_alice, patient_bob, radiologist):
    from portal.workflow.review import sign_off

    alice_signed = make_study(patient_alice.patient_record, status=StudyStatus.AWAITING_REVIEW)
    sign_off(alice_signed, user=radiologist, decision="override", final_class="meningioma", reason="Dural tail")
    alice_pending = make_study(patient_alice.patient_record, status=StudyStatus.AWAITING_REVIEW)
    bob_signed = make_study(patient_bob.patient_record, status=StudyStatus.AWAITING_REVIEW)
    sign_off(bob_signed, user=radiologist, decision="confirm")
    return {"alice_signed": alice_signed, "alice_pending": alice_pending, "bob_signed": bob_signed}


def test_token_endpoint_issues_token_and_refuses_bad_credentials(client, radiologist):
    url = reverse("api:token")
    ok = client.post(url, {"email": radiologist.email, "password": TEST_PASSWORD}, content_type="application/json")
    assert ok.status_code == 200
    key = ok.json()["token"]
    assert ApiToken.objects.get(user=radiologist).key_hash == ApiToken.hash_key(key)
    assert AuditEvent.objects.filter(action="api.token.issue", actor=radiologist).exists()
    bad = client.post(url, {"email": radiologist.email, "password": "wrong-password-123"}, content_type="application/json")
    assert bad.status_code == 400
    assert AuditEvent.objects.filter(action="login_failed", actor_email=radiologist.email).exists()
    authed = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert authed.get(reverse("api:study_list")).status_code == 200
    assert authed.delete(url).status_code == 204
    assert authed.get(reverse("api:study_list")).status_code == 401


def test_token_endpoint_locks_out_in_json(client, radiologist, settings):
    url = reverse("api:token")
    body = {"email": radiologist.email, "password": "wrong-password-123"}
    codes = [client.post(url, body, content_type="application/json").status_code for _ in range(settings.AXES_FAILURE_LIMIT + 1)]
    assert codes[:settings.AXES_FAILURE_LIMIT - 1] == [400] * (settings.AXES_FAILURE_LIMIT - 1)
    assert codes[-1] == 429
    right = client.post(url, {"email": radiologist.email, "password": TEST_PASSWORD}, content_type="application/json")
    assert right.status_code == 429 and right["Content-Type"] == "application/json"


def test_anonymous_gets_401_and_deactivated_token_is_refused(client, deactivated_user):
    assert client.get(reverse("api:study_list")).status_code == 401
    assert token_client(deactivated_user).get(reverse("api:study_list")).status_code == 401


def test_patient_sees_only_own_released_studies(patient_alice, studies):
    api = token_client(patient_alice)
    listed = api.get(reverse("api:study_list")).json()
    assert [s["id"] for s in listed["results"]] == [studies["alice_signed"].pk]
    assert listed["results"][0]["prediction"] is None  # patients get the signed class, not the AI's
    assert listed["results"][0]["final_class"] == "meningioma"
    assert api.get(reverse("api:study_detail", args=[studies["alice_pending"].pk])).status_code == 404
    assert api.get(reverse("api:study_detail", args=[studies["bob_signed"].pk])).status_code == 404
    assert api.get(reverse("api:study_report", args=[studies["bob_signed"].pk])).status_code == 404
    assert api.get(reverse("api:study_report", args=[studies["alice_pending"].pk])).status_code == 404
    patients = api.get(reverse("api:patient_list")).json()["results"]
    assert [p["mrn"] for p in patients] == ["MRN-ALICE"]
    bob_record = studies["bob_signed"].patient_id
    assert api.get(reverse("api:patient_detail", args=[bob_record])).status_code == 404


def test_report_is_the_signed_final_class_and_is_audited(patient_alice, studies):
    study = studies["alice_signed"]
    response = token_client(patient_alice).get(reverse("api:study_report", args=[study.pk]))
    assert response.status_code == 200
    report = response.json()
    assert report["final_class"] == "meningioma" and report["version"] == 1 and report["amended"] is False
    assert report["signed_by"] == "Dr Rita Radiologist"
    event = AuditEvent.objects.filter(action="api.report.view", actor=patient_alice).get()
    assert event.object_id == str(study.pk) and event.patient_id == study.patient_id and event.client_ip == "127.0.0.1"


def test_staff_see_everything_with_prediction_and_series(radiologist, studies):
    api = token_client(radiologist)
    listed = api.get(reverse("api:study_list"), {"status": "awaiting_review"}).json()
    assert [s["id"] for s in listed["results"]] == [studies["alice_pending"].pk]
    detail = api.get(reverse("api:study_detail", args=[studies["alice_pending"].pk])).json()
    assert detail["prediction"]["label"] == "glioma" and detail["final_class"] is None
    assert detail["series"][0]["slice_count"] == 3 and detail["series"][0]["prediction"]["confidence"] == pytest.approx(0.93)
    assert AuditEvent.objects.filter(action="api.study.view", actor=radiologist, object_id=str(studies["alice_pending"].pk)).exists()
    # No report before sign-off, for staff too.
    assert api.get(reverse("api:study_report", args=[studies["alice_pending"].pk])).status_code == 404
    assert api.get(reverse("api:study_list"), {"status": "nonsense"}).status_code == 400


def test_pagination(radiologist):
    patient = make_patient()
    for _ in range(27):
        make_study(patient, n_slices=1, label=None)
    api = token_client(radiologist)
    first = api.get(reverse("api:study_list")).json()
    assert first["count"] == 27 and len(first["results"]) == 25 and first["next"]
    second = api.get(reverse("api:study_list"), {"page": 2}).json()
    assert len(second["results"]) == 2 and second["next"] is None
    assert api.get(reverse("api:study_list"), {"page": 9}).status_code == 404


def test_radiologist_adds_note_and_signs_off(radiologist, patient_alice, studies):
    api = token_client(radiologist)
    study = studies["alice_pending"]
    note = api.post(reverse("api:study_notes", args=[study.pk]), {"text": "Compare with 2024", "for_patient": False},
                    content_type="application/json")
    assert note.status_code == 201 and ClinicalNote.objects.filter(study=study).count() == 1
    assert api.post(reverse("api:study_notes", args=[study.pk]), {"text": "  "}, content_type="application/json").status_code == 400
    bad = api.post(reverse("api:study_reviews", args=[study.pk]), {"decision": "override", "final_class": "pituitary"},
                   content_type="application/json")
    assert bad.status_code == 400  # an override needs a reason
    signed = api.post(reverse("api:study_reviews", args=[study.pk]), {"decision": "confirm"}, content_type="application/json")
    assert signed.status_code == 201 and signed.json()["final_class"] == "glioma"
    study.refresh_from_db()
    assert study.status == StudyStatus.SIGNED
    amend_without_reason = api.post(reverse("api:study_reviews", args=[study.pk]), {"decision": "confirm"},
                                    content_type="application/json")
    assert amend_without_reason.status_code == 400
    assert {"review.note_add", "review.sign_off"} <= set(AuditEvent.objects.filter(actor=radiologist).values_list("action", flat=True))
    # Now released: Alice reads it.
    assert token_client(patient_alice).get(reverse("api:study_report", args=[study.pk])).status_code == 200


def test_patient_cannot_write(patient_alice, studies):
    api = token_client(patient_alice)
    study = studies["alice_signed"]
    assert api.post(reverse("api:study_notes", args=[study.pk]), {"text": "hi"}, content_type="application/json").status_code == 404
    assert api.post(reverse("api:study_reviews", args=[study.pk]), {"decision": "confirm"},
                    content_type="application/json").status_code == 404


def test_session_auth_requires_csrf_for_writes(radiologist, studies):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(radiologist)
    assert browser.get(reverse("api:study_list")).status_code == 200
    response = browser.post(reverse("api:study_notes", args=[studies["alice_pending"].pk]), {"text": "x"},
                            content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_schema_and_docs_are_self_hosted(client):
    schema = client.get(reverse("api:schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/studies/{id}/report/" in paths and "/api/token/" in paths
    docs = client.get(reverse("api:docs"))
    html = docs.content.decode()
    assert docs.status_code == 200 and "cdn" not in html.lower() and "<script>" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    script = client.get(reverse("api:docs") + "?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
