"""seed_demo fills the portal: demo accounts, and studies for the demo patient with real AI
results (the classifier runs in-process): one signed with a note for the patient, one
awaiting review, one out of scope."""
from __future__ import annotations

import pytest
from django.core.management import call_command

from accounts.models import User
from portal.demo import seed_studies
from scans.models import ClinicalNote, Patient, Study, StudyStatus

# transaction=True: the pipeline enqueues its jobs on commit, as in `make run`.
pytestmark = pytest.mark.django_db(transaction=True)


def _check_demo(studies: list[Study], generated: bool = False) -> None:
    prior, current, out_of_scope = studies
    assert prior.status == StudyStatus.SIGNED
    review = prior.latest_review()
    assert review.final_class == "notumor" and review.report_text
    assert ClinicalNote.objects.filter(study=prior, for_patient=True).count() == 1
    assert current.status == StudyStatus.AWAITING_REVIEW
    assert current.series.count() == 2
    primary = current.primary_prediction()
    # Real slices get a class; generated phantoms may be refused by the image check (issue 15),
    # and then say so in its words.
    assert primary.is_brain_mri or (
        generated and primary.out_of_scope_reason.startswith("outside what the model was trained on"))
    # What was scanned comes from the DICOM header; the aggregation rule is stored whole.
    assert (current.body_part, current.institution, out_of_scope.body_part) == ("BRAIN", "Demo Hospital", "CHEST")
    from inference.image_check import ImageCheck
    from inference.predict import AGGREGATION_RULE, DEFAULT_MODELS_DIR

    check_version = ImageCheck.load(DEFAULT_MODELS_DIR).version
    assert current.primary_prediction().aggregation == f"{AGGREGATION_RULE} Image check: {check_version}."
    assert out_of_scope.modality == "CT"
    assert out_of_scope.primary_prediction().is_brain_mri is False  # the AI gives it no tumour class
    assert prior.created_at <= current.created_at  # so "previous study" is the prior one


def test_seed_demo_with_the_sample_data(shared_data, capsys):
    call_command("seed_demo")
    patient = Patient.objects.get(mrn="DEMO-0001")
    assert patient.user.email == "patient@example.org" and patient.birth_date
    studies = sorted(patient.studies.all(), key=lambda s: s.pk)
    _check_demo(studies)
    assert studies[0].series.get().slices.count() == 12
    # Real slices: the AI says "no tumour" on the prior study and the radiologist confirms it.
    assert studies[0].latest_review().decision == "confirm"
    # A second run changes no studies and still prints the accounts.
    call_command("seed_demo")
    assert patient.studies.count() == 3
    assert "patient@example.org" in capsys.readouterr().out


def test_seed_demo_generates_images_without_the_sample_data(radiologist):
    patient = Patient.objects.create(mrn="GEN-1", full_name="Gene Rated")
    studies = seed_studies(patient, radiologist, lambda line: None, shared=None)
    _check_demo(studies, generated=True)
    assert User.objects.count() == 1  # only the radiologist fixture: no accounts made here
