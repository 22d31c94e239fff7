"""Signed studies for tests: a Review with signed_at and the explanation approved through the
real service (offline provider unless settings say otherwise)."""
from __future__ import annotations

from django.utils import timezone

from portal.workflow.explanations import approve_explanation, draft_explanation
from scans.models import Review, StudyStatus


def sign(study, author, *, final_class=None, decision="confirm", reason="", text=None, draft=True, when=None):
    """Sign the next version of the study's report; returns (review, approved explanation)."""
    prediction = study.series.first().predictions.first()
    version = study.reviews.count() + 1
    if final_class is None:
        final_class = prediction.label
    if decision == "override" and not reason:
        reason = "Radiologist disagrees"
    explanation = draft_explanation(study) if draft and version == 1 else study.explanations.order_by("-created_at").first()
    review = Review.objects.create(
        study=study,
        version=version,
        prediction=prediction,
        decision=decision,
        final_class=final_class,
        reason=reason,
        author=author,
        signed_at=when or timezone.now(),
    )
    study.transition_to(StudyStatus.SIGNED if version == 1 else StudyStatus.AMENDED)
    approved = approve_explanation(explanation, review=review, user=author, text=text)
    return review, approved
