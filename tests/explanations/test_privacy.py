"""Nothing that identifies a patient leaves the portal: canary strings in every patient,
DICOM-derived and free-text field; the drafts are made with each remote provider pointed at
a fake server; no canary may appear anywhere in what the server receives."""
import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import User
from portal.workflow.explanations import draft_explanation
from scans.models import ClinicalNote, Patient, Prediction, Review, Series, Slice, Study
from tests.factories import make_study
from tests.fakes.fixtures import gemini_config, openai_config
from tests.fakes.llm_servers import Reply

pytestmark = pytest.mark.django_db

BIRTH = dt.date(1931, 7, 13)
STUDY_DAY = dt.date(2019, 2, 3)
CANARIES = [
    # patient and account
    "CanaryMRN7731", "Zebedee Canaryname", "Zebedee", "Canaryname", "CANARYSEX",
    "canary.user.5521@example.org", "Quillfeather",
    "1931-07-13", "19310713", "13/07/1931", "07/13/1931", "1931",
    # DICOM-derived
    "1.2.826.0.1.3680043.55123", "1.2.826.0.1.3680043.55124", "1.2.826.0.1.3680043.5512",
    "CanaryStudyDescription", "CanaryAccession3141", "CanarySeriesDescription", "CanaryFilename",
    "2019-02-03", "20190203", "CanaryModelName",
    # free text
    "CanaryOverrideReason", "CanaryReportText", "CanaryPatientNote", "CanaryClinicalNote",
    # pixels (PNG and DICOM signatures, raw or base64)
    "iVBORw0KGgo", "DICM", "\x89PNG",
]

GOOD = (
    "Your scan shows a {term}. Your radiologist checked the images.\n\n"
    "What this means: your doctor will explain it and what happens next.\n\n"
    "- What does this mean for me?\n- Do I need more tests?\n- When will we talk about next steps?\n\n"
    "Please discuss any questions with your doctor."
)


def _canary_study(radiologist):
    user = User.objects.create_user(
        email="canary.user.5521@example.org", password="x" * 16, role="patient", full_name="Zebedee Quillfeather"
    )
    patient = Patient.objects.create(
        mrn="CanaryMRN7731", full_name="Zebedee Canaryname", birth_date=BIRTH, sex="CANARYSEX", user=user
    )
    study = make_study(patient, label="glioma", confidence=0.81, description="CanaryStudyDescription")
    Study.objects.filter(pk=study.pk).update(
        study_instance_uid="1.2.826.0.1.3680043.55123", accession_number="CanaryAccession3141", study_date=STUDY_DAY
    )
    Series.objects.filter(study=study).update(
        series_instance_uid="1.2.826.0.1.3680043.55124", description="CanarySeriesDescription"
    )
    for i, sl in enumerate(Slice.objects.filter(series__study=study)):
        Slice.objects.filter(pk=sl.pk).update(
            sop_instance_uid=f"1.2.826.0.1.3680043.5512.{i}", original_filename=f"CanaryFilename{i}.dcm"
        )
    Prediction.objects.filter(series__study=study).update(model_name="CanaryModelName")
    ClinicalNote.objects.create(study=study, author=radiologist, text="CanaryPatientNote", for_patient=True)
    ClinicalNote.objects.create(study=study, author=radiologist, text="CanaryClinicalNote")
    study.refresh_from_db()
    return study


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_no_canary_reaches_the_provider(provider, settings, radiologist, fake_gemini, fake_openai):
    server, config = (fake_gemini, gemini_config) if provider == "gemini" else (fake_openai, openai_config)
    server.script(Reply.ok(GOOD.format(term="glioma")), Reply.ok(GOOD.format(term="meningioma")))
    settings.EXPLAINER = config(server)
    study = _canary_study(radiologist)

    # 1. Draft after the AI result.
    first = draft_explanation(study)
    # 2. Draft again once the radiologist's (unsigned) review exists, with free-text fields.
    Review.objects.create(
        study=study,
        version=1,
        decision="override",
        final_class="meningioma",
        reason="CanaryOverrideReason",
        report_text="CanaryReportText",
        author=radiologist,
        created_at=timezone.now(),
    )
    second = draft_explanation(study)

    # The provider really was used: the test would catch a leak if there were one.
    assert len(server.requests) == 2
    assert not first.fell_back and first.text == GOOD.format(term="glioma")
    assert not second.fell_back and second.text == GOOD.format(term="meningioma")
    for request in server.requests:
        seen = request.everything()
        for canary in CANARIES:
            assert canary.lower() not in seen.lower(), f"{canary!r} reached the {provider} server"
    # And the canaries were really in the database the drafts were made from.
    assert Patient.objects.filter(mrn="CanaryMRN7731", birth_date=BIRTH).exists()
    assert study.notes.count() == 2


def test_the_canary_check_can_fail(fake_openai):
    """The same inspection finds a canary when one is sent (guards against a vacuous test)."""
    import openai

    client = openai.OpenAI(api_key="k", base_url=fake_openai.base_url, max_retries=0)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "note: CanaryPatientNote"}])
    assert "canarypatientnote" in fake_openai.requests[0].everything().lower()
