"""Issue 18: a worker killed while writing heat maps leaves files that no row points to; the
retry must not leave them beside its own. After the job finishes, every heat-map file of the
series is one a SlicePrediction points to."""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from portal.workflow.classification import run_classification, start_processing
from scans.jobs import JobState
from scans.models import Job, Prediction, SlicePrediction, StudyStatus
from tests.factories import make_patient, make_study
from tests.ingest.conftest import media  # noqa: F401 - a fresh storage to list

pytestmark = [pytest.mark.django_db]


def _files_under(folder: str) -> set[str]:
    dirs, files = default_storage.listdir(folder) if default_storage.exists(folder) else ([], [])
    found = {f"{folder}/{name}" for name in files}
    for sub in dirs:
        found |= _files_under(f"{folder}/{sub}")
    return found


def test_a_killed_attempt_leaves_no_orphan_heatmaps(media, monkeypatch):  # noqa: F811
    study = make_study(make_patient(), status=StudyStatus.RECEIVED, n_slices=3, label=None)
    [job] = start_processing(study)  # on_commit not run: the job stays queued
    series = study.series.get()
    first = series.ordered_slices().first()
    seen: dict[str, str] = {}

    def killed(**kwargs):
        seen["version"] = kwargs["model_version"]
        raise SystemExit("worker killed after writing its heat maps")

    monkeypatch.setattr(Prediction.objects, "get_or_create", killed)
    with pytest.raises(SystemExit):
        run_classification(job.pk)
    monkeypatch.undo()
    folder = f"heatmaps/series{series.pk}"
    # What a kill in the middle of a write leaves as well: a half-written file.
    default_storage.save(f"{folder}/{seen['version']}/slice{first.pk}.png", ContentFile(b"\x89PNG\r\n\x1a\npartial"))
    assert _files_under(folder)
    Job.objects.filter(pk=job.pk).update(state=JobState.QUEUED)  # as the sweeper does for a dead worker
    done = run_classification(job.pk)
    assert done.state == JobState.DONE, done.error
    referenced = set(SlicePrediction.objects.filter(slice__series=series).exclude(heatmap="").values_list("heatmap", flat=True))
    assert _files_under(folder) == referenced
