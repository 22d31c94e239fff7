"""Drafting patient explanations: providers, checks, supersession, the explain job. Their approval
with the signed review is tested through the real sign-off in tests/radiology/test_review_service.py."""
import pytest

from portal.workflow.explanations import (
    ExplanationError,
    approve_explanation,
    draft_explanation,
)
from scans.explanations import ExplanationStatus
from scans.models import PatientExplanation, Review
from tests.factories import make_patient, make_study
from tests.fakes.fixtures import gemini_config
from tests.fakes.llm_servers import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return make_study(make_patient(), label="glioma", confidence=0.95)


def test_draft_uses_the_offline_provider_by_default_and_supersedes_older_drafts(study):
    first = draft_explanation(study)
    assert first.status == ExplanationStatus.DRAFT
    assert (first.provider, first.fell_back, first.flagged, first.final_class) == ("offline", False, False, "glioma")
    assert "glioma" in first.text and "very sure" in first.text  # confidence 0.95: high band
    second = draft_explanation(study)
    first.refresh_from_db()
    assert first.status == ExplanationStatus.SUPERSEDED
    assert list(study.explanations.filter(status=ExplanationStatus.DRAFT)) == [second]


def test_nothing_to_explain_for_a_study_that_is_not_a_brain_mri():
    study = make_study(make_patient(), label="")
    assert draft_explanation(study) is None
    assert not study.explanations.exists()


def test_approving_an_explanation_of_another_study_is_refused(study, radiologist):
    other = make_study(make_patient())
    foreign = draft_explanation(other)
    review = Review.objects.create(study=study, version=1, decision="confirm", final_class="glioma", author=radiologist)
    with pytest.raises(ExplanationError):
        approve_explanation(foreign, review=review, user=radiologist)


def test_provider_text_failing_the_checks_is_stored_flagged(study, settings, fake_gemini):
    fake_gemini.script(Reply.ok("You have a meningioma. Take 4 mg dexamethasone daily. " * 5))
    settings.EXPLAINER = gemini_config(fake_gemini)
    draft = draft_explanation(study)
    assert (draft.provider, draft.model, draft.fell_back, draft.flagged) == ("gemini", "gemma-3-27b-it", True, True)
    assert "treatment" in draft.flag_reason and "class_missing" in draft.flag_reason
    assert "glioma" in draft.text and "dexamethasone" not in draft.text


def test_provider_text_passing_the_checks_is_stored(study, settings, fake_gemini):
    good = (
        "Your scan shows a glioma. A glioma is a growth that starts in the brain.\n\n"
        "There are many kinds. More tests may be needed to learn which kind this is.\n\n"
        "- What kind of glioma could this be?\n- Do I need more tests?\n\nPlease discuss any questions with your doctor."
    )
    fake_gemini.script(Reply.ok(good))
    settings.EXPLAINER = gemini_config(fake_gemini)
    draft = draft_explanation(study)
    assert draft.text == good and not draft.fell_back and not draft.flagged


def test_pipeline_explain_job_drafts_through_this_service(study, django_capture_on_commit_callbacks):
    from portal.workflow.explanations import request_explanation

    with django_capture_on_commit_callbacks(execute=True):
        request_explanation(study)  # enqueued on commit; tasks run in-process in tests
    drafts = PatientExplanation.objects.filter(study=study, status=ExplanationStatus.DRAFT)
    assert drafts.count() == 1 and drafts.get().final_class == "glioma"
