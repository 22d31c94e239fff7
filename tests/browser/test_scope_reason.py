"""The radiologist sees why the AI gave no class (issue 15): the out-of-scope reason in the
worklist row and in the study viewer, and can still report the study by hand."""
from __future__ import annotations

import pytest

from scans.models import Prediction
from tests.browser.conftest import log_in
from tests.factories import make_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REASON = "outside the model's scope: modality CT"


def test_radiologist_sees_the_out_of_scope_reason(page, radiologist, patient_alice):
    study = make_study(patient_alice.patient_record, label="", description="CT head")
    study.series.update(scope_reason=REASON, modality="CT")
    Prediction.objects.filter(series__study=study).update(scope_reason=REASON)

    log_in(page, radiologist.email)
    page.goto("/radiology/")
    row = page.locator(f'[data-testid=worklist-row][data-study-id="{study.pk}"]')
    assert REASON in row.get_by_test_id("ai-scope-reason").inner_text()

    row.get_by_test_id("open-study").click()
    page.wait_for_url(f"**/radiology/studies/{study.pk}/")
    assert page.get_by_test_id("ai-class").inner_text() == "No AI class"
    assert page.get_by_test_id("ai-scope-reason").inner_text() == REASON
    banner = page.get_by_test_id("not-brain-mri")
    assert "Outside the AI's scope" in banner.inner_text() and REASON in banner.inner_text()
    assert page.get_by_test_id("ai-confidence").count() == 0  # no probability is shown for it
    # Reporting by hand stays possible: override is offered (and preselected), confirm is not.
    assert page.get_by_test_id("decision-override").is_checked()
    assert page.locator('input[name=decision][value="confirm"]').count() == 0
