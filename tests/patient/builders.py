"""Signed studies for tests, through the real sign-off service (portal.workflow.review):
the same checks, audit rows and explanation approval as a radiologist's sign-off
(offline explanation provider unless settings say otherwise)."""
from __future__ import annotations

from portal.workflow import review as review_service
from portal.workflow.explanations import draft_explanation
from scans.models import PatientExplanation, Review
from scans.reviews import ReviewDecision


def sign(
    study,
    author,
    *,
    final_class: str | None = None,
    decision: str = ReviewDecision.CONFIRM,
    reason: str = "",
    text: str | None = None,
    draft: bool = True,
) -> tuple[Review, PatientExplanation]:
    """Sign the study's report: the first sign-off (drafting the explanation first unless
    draft=False), or an amendment once it is released. An override without a reason gets one.
    Returns (review, approved explanation)."""
    if decision == ReviewDecision.OVERRIDE and not reason:
        reason = "Radiologist disagrees"
    first = not study.reviews.exists()
    if draft and first:
        draft_explanation(study)
    write = review_service.sign_off if first else review_service.amend
    result = write(study, user=author, decision=decision, final_class=final_class, reason=reason, explanation_text=text)
    return result.review, result.explanation
