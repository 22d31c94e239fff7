"""Classify every series of a study and store the predictions; when the last series is
done, the study awaits review and the patient explanation is requested.

Results are written with get_or_create on the unique (series, model_version, slice count), so
a duplicate run can never store two predictions. The job life cycle (claim, errors, retries) is jobs.py's.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.dispatch import Signal
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import record
from inference.gradcam import heatmap_to_png
from inference.series import SeriesResult, out_of_scope
from portal.workflow import faults, predictor
from portal.workflow.errors import PermanentError
from portal.workflow.explanations import request_explanation
from portal.workflow.jobs import enqueue, run_claimed, set_study_status
from scans import imaging
from scans.jobs import JobKind, JobState
from scans.models import Job, Prediction, Series, Slice, SlicePrediction, Study, StudyStatus
log = logging.getLogger(__name__)

# Sent (inside the transaction) when every series of a study is classified: sender=Study,
# study=... (portal.workflow.pacs sends preliminary results on it when configured).
study_awaiting_review = Signal()


def start_processing(study: Study) -> list[Job]:
    """One queued classify job per series that no prediction by the current model version
    covers whole (a new series, or one that grew: every slice gets a result) and that has no
    live job; the study goes to PROCESSING (a signed one stays in NEW_IMAGES: see
    scans.addendum). Returns the new jobs."""
    version = predictor.current_model_version()
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        live = Job.objects.active().filter(kind=JobKind.CLASSIFY, study=study).values("series_id")
        pending = [s for s in Series.objects.filter(study=study).exclude(pk__in=live) if s.needs_classification(version)]
        jobs = [Job.objects.create(kind=JobKind.CLASSIFY, study=study, series=series) for series in pending]
        _audit_reclassification(study, [s for s in pending if s.predictions.exists()])
        active = study.jobs.active().filter(kind=JobKind.CLASSIFY).count()
        if active:
            detail = ngettext("Classifying %(n)d series.", "Classifying %(n)d series.", active) % {"n": active}
            set_study_status(study, StudyStatus.PROCESSING, detail)
        for job in jobs:
            enqueue(job)
    return jobs


def _audit_reclassification(study: Study, grown: list[Series]) -> None:
    for series in grown:
        record("series.reclassify", obj=series, patient_id=study.patient_id, study_id=study.pk,
               slices=series.slices.count(), study_status=study.status)


def run_classification(job_id: int, *, task_id: str | None = None) -> Job | None:
    """Classify the job's series and store the prediction. Idempotent: a finished job, or a
    series that already has a prediction by this model version, is left as it is."""
    return run_claimed(job_id, JobKind.CLASSIFY, task_id, _classify, _finish_classification)


def _classify(job: Job) -> None:
    series = job.series
    slices = list(series.ordered_slices())
    if not slices:
        raise PermanentError(_("The series has no images."))
    model = predictor.get_predictor()
    if Prediction.objects.filter(series=series, model_version=str(model.model_version), slice_count=len(slices)).exists():
        return  # these slices are already classified by this model (e.g. a duplicate job)
    t0 = time.perf_counter()
    if series.scope_reason:  # the header rules (scans.scope) put it out of scope: the model never runs
        result = out_of_scope(series.scope_reason, model.model_name, str(model.model_version))
    else:
        result = model.predict_series([imaging.slice_pixels(sl) for sl in slices], heatmaps=True)
    runtime_ms = (time.perf_counter() - t0) * 1000.0
    faults.before_storing(series)
    store_prediction(series, slices, result, runtime_ms)


def _probabilities(values: dict[str, Any] | None) -> dict[str, float]:
    return {str(k): float(v) for k, v in (values or {}).items()}


def _save_heatmaps(series: Series, slices: list[Slice], result: SeriesResult) -> list[str | None]:
    """Heat-map files first (storage is not transactional); the rows follow in one transaction."""
    names: list[str | None] = []
    for sl, slice_result in zip(slices, result.slices):
        if slice_result.heatmap is None:
            names.append(None)
            continue
        name = f"heatmaps/series{series.pk}/{result.model_version}/{len(slices)}/slice{sl.pk}.png"
        names.append(default_storage.save(name, ContentFile(heatmap_to_png(slice_result.heatmap))))
    return names


def store_prediction(series: Series, slices: list[Slice], result: SeriesResult, runtime_ms: float) -> Prediction:
    """The series' prediction by this model version, stored once (a duplicate run keeps the
    first one and drops its own heat-map files)."""
    heatmap_names = _save_heatmaps(series, slices, result)
    is_mri = bool(result.is_brain_mri) and bool(result.label)
    key = result.key_slice_index
    key_slice = slices[key] if key is not None and 0 <= key < len(slices) else None
    with transaction.atomic():
        prediction, created = Prediction.objects.get_or_create(
            series=series,
            model_version=str(result.model_version),
            slice_count=len(slices),
            defaults=dict(
                model_name=str(result.model_name)[:64],
                label=str(result.label) if is_mri else "",
                probabilities=_probabilities(result.probabilities),
                confidence=min(max(float(result.confidence or 0.0), 0.0), 1.0),
                is_brain_mri=is_mri,
                scope_reason="" if is_mri else (result.scope_reason or "")[:200],
                key_slice=key_slice,
                aggregation=str(result.aggregation or ""),
                runtime_ms=runtime_ms,
            ),
        )
        if created:
            SlicePrediction.objects.bulk_create(
                SlicePrediction(
                    prediction=prediction,
                    slice=sl,
                    probabilities=_probabilities(slice_result.probabilities),
                    is_brain_mri=bool(slice_result.is_brain_mri),
                    heatmap=name or "",
                )
                for sl, slice_result, name in zip(slices, result.slices, heatmap_names)
            )
    if not created:  # a duplicate run lost the race: drop its files
        for name in heatmap_names:
            if name:
                default_storage.delete(name)
    remove_orphan_heatmaps(series)
    return prediction


def remove_orphan_heatmaps(series: Series) -> int:
    """Delete heat-map files of the series that no row points to: what an attempt killed
    between writing its files and committing its rows left behind (half-written files too).
    Run after the rows are committed, so a concurrent duplicate run, whose files are not yet
    referenced, only loses files it would delete itself when it loses the race."""
    folder = f"heatmaps/series{series.pk}"
    kept = set(SlicePrediction.objects.filter(slice__series=series).exclude(heatmap="").values_list("heatmap", flat=True))
    removed = 0
    for name in _stored_files(folder):
        if name not in kept:
            default_storage.delete(name)
            removed += 1
    if removed:
        log.warning("removed %d orphan heat-map file(s) of series %s", removed, series.pk)
    return removed


def _stored_files(folder: str) -> list[str]:
    try:
        dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [f"{folder}/{name}" for name in files] + [f for sub in dirs for f in _stored_files(f"{folder}/{sub}")]


def _finish_classification(job: Job) -> None:
    """Job done; when it was the study's last classification, the study awaits review and
    the explanation is requested. The study row lock serialises the last two finishers."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=job.study_id)
        job.done()
        classify = study.jobs.filter(kind=JobKind.CLASSIFY)
        if classify.active().exists():
            return
        failed = [j for j in classify.latest_per_series() if j.state == JobState.FAILED]
        if failed:
            if study.status != StudyStatus.FAILED:
                set_study_status(study, StudyStatus.FAILED, _("%(n)d series could not be classified.") % {"n": len(failed)})
            return
        if set_study_status(study, StudyStatus.AWAITING_REVIEW, _("AI result ready for review.")):
            request_explanation(study)
            study_awaiting_review.send(sender=Study, study=study)
