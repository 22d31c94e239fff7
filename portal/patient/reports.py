"""What a patient may see of one released study: the latest signed review's final class,
the explanation approved with it, the notes for the patient and a key slice. The page
(views.py) and the PDF (pdf.py) both render a Report."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.http import Http404
from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _

from inference.explainer.offline import headline
from portal.workflow.explanations import approved_explanation_for
from scans.models import ClinicalNote, PatientExplanation, Review, Slice, Study


@dataclass
class Report:
    """What a patient may see of one released study."""

    study: Study
    review: Review  # the latest signed version
    first_signed_at: datetime
    explanation: PatientExplanation | None
    notes: list[ClinicalNote]
    key_slice: Slice | None
    title: str = ""  # set by with_distinct_titles

    @property
    def final_class(self) -> str:
        return self.review.final_class

    @property
    def final_class_label(self) -> str:
        return self.review.get_final_class_display()

    @property
    def headline(self) -> str:
        return headline(self.review.final_class)

    @property
    def assessable(self) -> bool:
        """False: the images could not be assessed. The patient reads a plain message, no
        tumour class, and no image is shown as "your scan"."""
        return self.review.is_assessable

    @property
    def amended(self) -> bool:
        return self.review.version > 1

    @property
    def signed_at(self) -> datetime:
        return self.review.signed_at

    @property
    def signed_by(self) -> str:
        return self.review.signed_by_name

    @property
    def report_text(self) -> str:
        """The radiologist's own report text of the version shown."""
        return self.review.report_text

    @property
    def scan_date(self) -> date:
        return self.study.scan_date

    @property
    def what_was_scanned(self) -> str:
        """ "MRI of the brain", "CT of the chest"; the modality alone when the body part is unknown."""
        study = self.study
        if study.body_part_name:
            return _("%(modality)s of the %(part)s") % {"modality": study.modality_name, "part": study.body_part_name}
        return study.modality_name

    @property
    def institution(self) -> str:
        return self.study.institution or getattr(settings, "DICOM_INSTITUTION", "")

    @property
    def key_slice_url(self) -> str | None:
        if self.key_slice is None:
            return None
        return reverse("scans:slice_image", args=[self.key_slice.pk])


def _key_slice(study: Study, review: Review) -> Slice | None:
    if not review.is_assessable:
        return None  # possibly not even this patient's images: never shown as "your scan"
    prediction = review.prediction or study.primary_prediction()
    if prediction is not None and prediction.key_slice_id:
        return prediction.key_slice
    covered = Slice.objects.filter(series__study=study, created_at__lte=review.signed_at)
    return covered.order_by("series__series_number", "series_id", "order_index", "id").first()


def build_report(study: Study) -> Report:
    review = study.latest_review()
    if review is None or review.signed_at is None:
        raise Http404  # released without a signed review: nothing to show
    first = study.reviews.signed().last()
    notes = list(study.notes.filter(for_patient=True, created_at__lte=review.signed_at).order_by("created_at", "id"))
    return Report(
        study=study,
        review=review,
        first_signed_at=first.signed_at,
        explanation=approved_explanation_for(study, review),
        notes=notes,
        key_slice=_key_slice(study, review),
    )


def newest_first(reports: list[Report]) -> list[Report]:
    """By the day of the scan, newest first (not by upload order: an old scan uploaded today
    is still an old scan)."""
    return sorted(reports, key=lambda r: (r.scan_date, r.study.created_at, r.study.pk), reverse=True)


def with_distinct_titles(reports: list[Report]) -> list[Report]:
    """Titles say what was scanned and when ("MRI of the brain, 3 Dec 2026"); two scans of the
    same kind on the same day are numbered in the order they were taken."""
    for report in reports:
        report.title = f"{report.what_was_scanned}, {formats.date_format(report.scan_date, 'DATE_FORMAT')}"
    groups: dict[str, list[Report]] = {}
    for report in reports:
        groups.setdefault(report.title, []).append(report)
    for same in groups.values():
        if len(same) > 1:
            ordered = sorted(same, key=lambda r: (r.study.created_at, r.study.pk))
            for n, report in enumerate(ordered, 1):
                report.title += " " + _("(scan %(n)d of %(total)d that day)") % {"n": n, "total": len(same)}
    return reports


def patient_reports(user) -> list[Report]:
    """Every report the patient may read, newest scan first, with distinct titles."""
    studies = Study.objects.visible_to(user).select_related("patient")
    return with_distinct_titles(newest_first([build_report(s) for s in studies if s.latest_review() is not None]))


def titled_report(user, study: Study) -> Report:
    """The study's report as the list shows it (same title)."""
    return next(r for r in patient_reports(user) if r.study.pk == study.pk)
