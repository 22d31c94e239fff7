"""Nobody but clinical staff reaches the radiologist workspace: patients get 404 (even for
their own study), anonymous users are sent to log in, deactivated users lose access."""
from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from scans.models import ClinicalNote, Review, StudyStatus

pytestmark = pytest.mark.django_db

GET_PAGES = ["worklist", "study", "patient_history"]
POST_ACTIONS = ["sign_off", "amend", "add_note", "regenerate_explanation"]


def _url(name, study):
    if name == "worklist":
        return reverse("radiology:worklist")
    if name == "patient_history":
        return reverse("radiology:patient_history", args=[study.patient_id])
    return reverse(f"radiology:{name}", args=[study.pk])


def _post_data(name):
    return {
        "worklist": {},
        "study": {},
        "patient_history": {},
        "sign_off": {"decision": "confirm"},
        "amend": {"decision": "override", "final_class": "notumor", "reason": "x"},
        "add_note": {"text": "note from a patient"},
        "regenerate_explanation": {},
    }[name]


@pytest.mark.parametrize("name", GET_PAGES + POST_ACTIONS)
def test_patient_gets_404_everywhere_even_for_own_study(client, patient_alice, study, name):
    client.force_login(patient_alice)
    url = _url(name, study)
    assert client.get(url).status_code == 404
    assert client.post(url, _post_data(name)).status_code == 404
    # Nothing was written on the patient's behalf.
    assert not Review.objects.exists()
    assert not ClinicalNote.objects.exists()
    study.refresh_from_db()
    assert study.status == StudyStatus.AWAITING_REVIEW


@pytest.mark.parametrize("name", GET_PAGES + POST_ACTIONS)
def test_patient_gets_404_after_sign_off_too(client, patient_alice, radiologist, study, name):
    from portal.workflow.review import sign_off

    sign_off(study, user=radiologist, decision="confirm")
    client.force_login(patient_alice)
    assert client.post(_url(name, study), _post_data(name)).status_code == 404
    assert Review.objects.count() == 1


@pytest.mark.parametrize("name", GET_PAGES + POST_ACTIONS)
def test_anonymous_is_sent_to_login(client, study, name):
    response = client.post(_url(name, study), _post_data(name)) if name in POST_ACTIONS else client.get(_url(name, study))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert not Review.objects.exists()


@pytest.mark.parametrize("name", GET_PAGES)
def test_deactivated_user_loses_access(client, radiologist, study, name):
    client.force_login(radiologist)
    assert client.get(_url(name, study)).status_code == 200
    radiologist.is_active = False
    radiologist.save()
    response = client.get(_url(name, study))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("name", GET_PAGES)
def test_staff_pages_open_for_radiologist_and_administrator_and_are_audited(client, radiologist, administrator, study, name):
    for user in (radiologist, administrator):
        client.force_login(user)
        before = AuditEvent.objects.filter(actor=user).count()
        assert client.get(_url(name, study)).status_code == 200
        assert AuditEvent.objects.filter(actor=user).count() == before + 1


def test_post_only_actions_refuse_get(staff_client, study):
    for name in POST_ACTIONS:
        assert staff_client.get(_url(name, study)).status_code == 405


def test_unknown_study_is_404_for_staff(staff_client, study):
    assert staff_client.get(reverse("radiology:study", args=[study.pk + 999])).status_code == 404
    assert staff_client.post(reverse("radiology:sign_off", args=[study.pk + 999]), {"decision": "confirm"}).status_code == 404
