"""Foundation: model invariants enforced by the database, role homes, settings."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import AuditEvent
from scans.models import (
    ClinicalNote,
    InvalidTransition,
    Job,
    Prediction,
    Review,
    StudyStatus,
)
from tests.conftest import REPO_ROOT, TEST_PASSWORD
from tests.factories import make_patient, make_study

pytestmark = pytest.mark.django_db


def _violates(fn) -> bool:
    try:
        with transaction.atomic():
            fn()
    except IntegrityError:
        return True
    return False


class TestModelInvariants:
    def test_prediction_unique_per_series_and_model_version(self):
        study = make_study(make_patient())
        series = study.series.get()
        assert _violates(
            lambda: Prediction.objects.create(
                series=series, model_name="m", model_version="test-1", label="glioma", confidence=0.5, slice_count=3
            )
        )

    def test_prediction_without_mri_has_no_class(self):
        study = make_study(make_patient(), label=None)
        series = study.series.get()
        assert _violates(
            lambda: Prediction.objects.create(
                series=series, model_name="m", model_version="v", label="glioma", confidence=0.9, is_brain_mri=False
            )
        )
        assert _violates(
            lambda: Prediction.objects.create(series=series, model_name="m", model_version="v2", label="glioma", confidence=1.5)
        )

    def test_override_requires_reason_and_versions_are_unique(self, radiologist):
        study = make_study(make_patient())
        assert _violates(
            lambda: Review.objects.create(study=study, decision="override", final_class="meningioma", reason="", author=radiologist)
        )
        Review.objects.create(study=study, decision="confirm", final_class="glioma", author=radiologist, signed_at="2025-01-01T00:00Z")
        assert _violates(
            lambda: Review.objects.create(study=study, version=1, decision="confirm", final_class="glioma", author=radiologist)
        )

    def test_slice_sha256_must_be_hex(self):
        study = make_study(make_patient(), n_slices=1)
        sl = study.series.get().slices.get()
        sl.sha256 = "not-a-hash"
        assert _violates(lambda: sl.save())

    def test_only_one_active_classification_job_per_series(self):
        study = make_study(make_patient())
        series = study.series.get()
        Job.objects.create(kind="classify", study=study, series=series)
        assert _violates(lambda: Job.objects.create(kind="classify", study=study, series=series))
        Job.objects.filter(series=series).update(state="done")
        Job.objects.create(kind="classify", study=study, series=series)  # a new run after the old one finished

    def test_notes_and_audit_rows_are_append_only(self, radiologist):
        study = make_study(make_patient())
        note = ClinicalNote.objects.create(study=study, author=radiologist, text="Enhancing lesion, left frontal.")
        note.text = "rewritten"
        with pytest.raises(PermissionError):
            note.save()
        event = AuditEvent.objects.create(action="test")
        with pytest.raises(PermissionError):
            event.save()
        with pytest.raises(PermissionError):
            AuditEvent.objects.all().delete()

    def test_study_state_machine(self):
        study = make_study(make_patient(), status=StudyStatus.RECEIVED, label=None)
        study.transition_to(StudyStatus.PROCESSING)
        study.transition_to(StudyStatus.AWAITING_REVIEW)
        with pytest.raises(InvalidTransition):
            study.transition_to(StudyStatus.AMENDED)  # amendments only after a sign-off
        study.transition_to(StudyStatus.SIGNED)
        with pytest.raises(InvalidTransition):
            study.transition_to(StudyStatus.PROCESSING)  # a signed report changes only by amendment
        study.transition_to(StudyStatus.AMENDED)
        assert study.is_released


class TestRoleHomes:
    @pytest.mark.parametrize(
        "fixture,home",
        [("patient_alice", "patient:home"), ("radiologist", "radiology:worklist"), ("administrator", "accounts:admin_home")],
    )
    def test_each_role_lands_on_its_own_home(self, client, request, fixture, home):
        user = request.getfixturevalue(fixture)
        response = client.post(reverse("accounts:login"), {"username": user.email, "password": TEST_PASSWORD}, follow=True)
        assert response.redirect_chain[-1][0] == reverse(home)
        assert response.status_code == 200

    @pytest.mark.parametrize(
        "fixture,forbidden",
        [
            ("patient_alice", ["radiology:worklist", "accounts:admin_home"]),
            ("radiologist", ["patient:home", "accounts:admin_home"]),
            ("administrator", ["patient:home"]),
        ],
    )
    def test_each_role_reaches_only_its_own_home(self, client, request, fixture, forbidden):
        client.force_login(request.getfixturevalue(fixture))
        for name in forbidden:
            assert client.get(reverse(name)).status_code == 404, name

    def test_anonymous_is_sent_to_login(self, client):
        response = client.get(reverse("home"))
        assert response.status_code == 302 and reverse("accounts:login") in response["Location"]

    def test_patient_sees_only_own_signed_studies(self, client, patient_alice, patient_bob):
        own_signed = make_study(patient_alice.patient_record, status=StudyStatus.SIGNED, description="ALICE-SIGNED")
        make_study(patient_alice.patient_record, status=StudyStatus.AWAITING_REVIEW, description="ALICE-UNSIGNED")
        make_study(patient_bob.patient_record, status=StudyStatus.SIGNED, description="BOB-SIGNED")
        from scans.models import Study

        visible = set(Study.objects.visible_to(patient_alice).values_list("pk", flat=True))
        assert visible == {own_signed.pk}


def _run_manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; a deployment never has it.
    env = {k: v for k, v in env.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 20 + "-production-secret-key-for-the-deploy-check-0123456789",
    "DJANGO_ALLOWED_HOSTS": "portal.example.org",
    "DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


class TestProductionSettings:
    def test_refuses_to_start_without_secrets(self):
        env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
        result = _run_manage(["check", "--settings=portal.settings.production"], env)
        assert result.returncode != 0
        assert "DJANGO_SECRET_KEY" in result.stderr

    def test_check_deploy_passes_with_required_variables(self):
        env = {**os.environ, **PRODUCTION_ENV}
        result = _run_manage(["check", "--deploy", "--settings=portal.settings.production", "--fail-level", "WARNING"], env)
        assert result.returncode == 0, result.stderr + result.stdout
