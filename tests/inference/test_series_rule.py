"""The series rule (inference.series.aggregate) on constructed series: a strong tumour run is
never hidden behind a "no tumour" mean, and the key slice is an informative in-scope slice,
not an edge slice."""
from __future__ import annotations

import pytest

from inference.series import EDGE_FRACTION, RUN_LENGTH, RUN_THRESHOLD, SliceResult, aggregate, out_of_scope

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
HEALTHY = [0.02, 0.02, 0.94, 0.02]
GLIOMA = [0.90, 0.05, 0.03, 0.02]
MENINGIOMA = [0.05, 0.92, 0.02, 0.01]


def _slice(p: list[float], ok: bool = True) -> SliceResult:
    return SliceResult(dict(zip(CLASSES, p)), None, ok, 0.2 if ok else 3.0, None)


def _series(*parts: tuple[list[float], int]) -> list[SliceResult]:
    return [_slice(p) for p, n in parts for _ in range(n)]


def test_a_run_of_tumour_slices_is_never_a_confident_no_tumour():
    # 48 slices like the real DWI series: 41 healthy, then a run of 7 strongly "meningioma".
    series = _series((HEALTHY, 41), (MENINGIOMA, 7))
    mean_only = sum(s.probabilities["notumor"] for s in series) / len(series)
    assert mean_only > 0.8  # the plain mean would have said "no tumour" with confidence
    result = aggregate(series)
    assert result.label == "meningioma" and result.run == (41, 48)
    assert result.confidence == pytest.approx(0.92)
    assert 41 <= result.key_slice_index < 48 - int(48 * EDGE_FRACTION)  # in the run, not an edge slice


def test_a_run_shorter_than_the_rule_does_not_override():
    series = _series((HEALTHY, 20), (GLIOMA, RUN_LENGTH - 1), (HEALTHY, 20))
    result = aggregate(series)
    assert result.label == "notumor" and result.run is None


def test_weak_slices_do_not_make_a_run():
    weak = [0.5, 0.1, 1 - RUN_THRESHOLD + 0.05, 0.15]  # tumour probability just under the threshold
    assert aggregate(_series((HEALTHY, 10), (weak, 5), (HEALTHY, 10))).label == "notumor"


def test_slices_outside_the_image_check_cannot_form_a_run():
    series = _series((HEALTHY, 20)) + [_slice(GLIOMA, ok=False) for _ in range(5)] + _series((HEALTHY, 20))
    assert aggregate(series).label == "notumor"


def test_key_slice_is_not_an_edge_slice():
    # the edge slice scores highest for the label, but the key is the best central slice
    series = _series((GLIOMA, 1), (HEALTHY, 3), ([0.6, 0.1, 0.2, 0.1], 1), (HEALTHY, 15))
    assert aggregate(series).key_slice_index == 4


def test_key_slice_of_a_tumour_series_is_the_most_likely_slice_of_that_class():
    series = _series((HEALTHY, 5), (GLIOMA, 4), ([0.97, 0.01, 0.01, 0.01], 1), (GLIOMA, 4), (HEALTHY, 5))
    result = aggregate(series)
    assert result.key_slice_index == 9


def test_series_mostly_outside_the_image_check_gets_no_class_and_says_why():
    series = [_slice(GLIOMA, ok=False) for _ in range(3)] + _series((HEALTHY, 2))
    result = aggregate(series)
    assert result.label is None and not result.is_brain_mri
    assert result.scope_reason == "outside what the model was trained on (image check: 3 of 5 slices)"


def test_header_out_of_scope_result_has_nothing_to_show():
    result = out_of_scope("outside the model's scope: modality CT", "m", "v1")
    assert result.label is None and result.probabilities == {} and result.slices == []
    assert result.key_slice_index is None and result.scope_reason.endswith("modality CT")
