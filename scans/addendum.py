"""Signed studies are immutable: images that arrive for a released study are an addendum.

Whatever the route (upload page, REST API, `import_scans`, the DICOM listener: they all
store through scans.ingest), new slices of a study a radiologist has signed:
- are kept, and classified like any others (a series that grew is classified again), but
- the study goes to NEW_IMAGES ("New images after sign-off") and back on the worklist;
- the patient keeps reading the latest signed version, and sees none of the new images
  (SliceQuerySet.visible_to: a patient sees only slices stored before that version was signed);
- a radiologist's amendment, signed after they arrived, covers them and releases them.
Every step is audited.
"""
from __future__ import annotations

import logging
from typing import Any

from accounts.audit import record
from scans.models import Series, Study, StudyStatus

logger = logging.getLogger(__name__)


def hold_new_images(study: Study, slice_ids: list[int], series: list[Series], *, actor: Any = None) -> bool:
    """Called by the ingest service, inside its transaction, with the study row locked.
    Returns True when the study was released and now holds the new images as an addendum."""
    if not slice_ids or not study.is_released:
        return False
    review = study.latest_review()
    previous = study.status
    study.transition_to(
        StudyStatus.NEW_IMAGES,
        f"{len(study.new_images_after_sign_off())} image(s) arrived after sign-off of version "
        f"{review.version if review else '?'}; the patient sees that version until an amendment is signed.",
    )
    record(
        "study.new_images_after_sign_off",
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        obj=study,
        patient_id=study.patient_id,
        previous_status=previous,
        signed_version=review.version if review else None,
        new_slices=len(slice_ids),
        series=[s.series_instance_uid for s in series],
    )
    logger.info("study %s: %d new slice(s) after sign-off held as an addendum", study.pk, len(slice_ids))
    return True
