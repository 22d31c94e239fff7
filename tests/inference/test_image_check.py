"""The shared image check (inference.image_check): ImageNet features that were never fine-tuned
tell brain MRI from other images for every model, and a slice is labelled only when both the
model's own gate and the shared check accept it."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from inference.data import load_rgb
from inference.image_check import ImageCheck, check_tag
from inference.predict import Predictor, default_model_name, read_served_version, served_version

from .conftest import make_subset


def _fan_ultrasound(seed: int) -> np.ndarray:
    """A B-mode-like sector of speckle on black: the JPEG ultrasound the model gates let through."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:256, :256]
    angle, radius = np.arctan2(xx - 128, yy + 20), np.hypot(xx - 128, yy + 20)
    fan = (np.abs(angle) < 0.6) & (radius > 40) & (radius < 250)
    speckle = rng.rayleigh(60, (256, 256)) * (1 - radius / 400)
    return np.clip(np.where(fan, speckle, 0), 0, 255).astype(np.uint8)


def _ct_head(seed: int) -> np.ndarray:
    """Bright skull ring, flat grey brain, dark air: the CT window of a head."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:256, :256]
    r = np.hypot((yy - 128) / 1.15, xx - 128)
    img = np.where(r < 96, 95.0, 0.0) + np.where((r >= 96) & (r < 108), 250.0, 0.0)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def shipped_check(artifacts) -> ImageCheck:
    check = ImageCheck.load(artifacts)
    assert check is not None, "inference/artifacts/image_check is missing"
    return check


def test_shipped_check_accepts_held_out_brain_mri(shipped_check, artifacts, mri_root):
    held_out = json.loads((artifacts / "cnn_lstm" / "split.json").read_text())["val_test"][::20]
    assert len(held_out) >= 25
    accepted, score = shipped_check.score([load_rgb(mri_root / name) for name in held_out])
    assert accepted.all(), f"refused held-out brain MRI with scores {score[~accepted]}"


def test_shipped_check_refuses_ultrasound_ct_and_photos(shipped_check):
    from skimage import data as samples

    others = [_fan_ultrasound(s) for s in range(3)] + [_ct_head(s) for s in range(3)] \
        + [samples.astronaut(), samples.coffee(), samples.camera()]
    accepted, score = shipped_check.score(others)
    assert not accepted.any(), f"accepted: {np.nonzero(accepted)[0]}, scores {score}"
    assert (score > 1).all()


class _Verdict:
    def __init__(self, accept: bool, score: float) -> None:
        self.accept, self.value = accept, score

    def score(self, grays):
        n = len(grays)
        return np.full(n, self.accept), np.full(n, self.value, np.float32)


def test_a_slice_is_labelled_only_when_both_checks_accept_it(artifacts, mri_root):
    predictor = Predictor.load("cnn_lstm", artifacts)
    name = json.loads((artifacts / "cnn_lstm" / "split.json").read_text())["val_test"][0]
    slice_ = load_rgb(mri_root / name)

    predictor.image_check = _Verdict(True, 0.2)
    both = predictor.predict_image(slice_)
    assert both.is_brain_mri and both.label is not None and both.heatmap is not None

    predictor.image_check = _Verdict(False, 3.5)
    refused = predictor.predict_image(slice_)
    assert not refused.is_brain_mri and refused.label is None and refused.heatmap is None
    assert refused.ood_score == pytest.approx(3.5)       # the larger of the two scores is reported

    predictor.image_check = None                         # a models folder without the shared check
    alone = predictor.predict_image(slice_)
    assert alone.is_brain_mri and alone.label == both.label


def test_a_series_result_names_the_image_check_that_judged_it(artifacts, mri_root):
    predictor = Predictor.load("cnn_lstm_v2", artifacts)
    names = json.loads((artifacts / "cnn_lstm_v2" / "split.json").read_text())["val_test"][:3]
    result = predictor.predict_series([load_rgb(mri_root / n) for n in names], heatmaps=False)
    assert result.aggregation.endswith(f"Image check: {predictor.image_check.version}.")
    assert result.model_version == predictor.model_version


@pytest.mark.slow
def test_fit_image_check_writes_a_loadable_check(mri_root, tmp_path):
    from inference.fit_image_check import fit

    data = make_subset(mri_root, tmp_path / "data", per_class=10)
    meta = fit(tmp_path / "models" / "image_check", data, quantize="none")
    assert meta["version"].startswith("image-check-lite0-") and meta["precision"] == "fp32"
    gate_digest = hashlib.sha256((tmp_path / "models" / "image_check" / "gate.npz").read_bytes()).hexdigest()
    assert meta["version"].endswith("-" + gate_digest[:6])
    assert meta["gate"]["file"] == "gate.npz" and np.isfinite(meta["gate"]["mahalanobis_threshold"])
    check = ImageCheck.load(tmp_path / "models")
    assert check is not None and check.version == meta["version"]
    assert check.encoder.features_of([_ct_head(0)]).shape == (1, 1280)


def test_a_models_folder_without_the_shared_check_says_so(artifacts, tmp_path, caplog):
    (tmp_path / "cnn_lstm").symlink_to(artifacts / "cnn_lstm", target_is_directory=True)
    with caplog.at_level("WARNING", logger="inference.predict"):
        predictor = Predictor.load("cnn_lstm", tmp_path)
    assert predictor.image_check is None
    assert "served with its own gate only" in caplog.text
    assert Predictor.load("cnn_lstm", artifacts).image_check is not None


def test_served_versions_name_the_model_and_the_shared_check(artifacts):
    check = ImageCheck.load(artifacts)
    for name in ("cnn_lstm_v2", "cnn_lstm", "vgg16"):
        model_version = json.loads((artifacts / name / "metadata.json").read_text())["version"]
        served = read_served_version(artifacts, name)
        assert served == f"{model_version}-{check_tag(check.meta)}" and len(served) <= 64   # Prediction field, SR's LO
    default = default_model_name(artifacts)
    assert Predictor.load(default, artifacts).model_version == read_served_version(artifacts, default)


def test_a_refitted_check_is_a_new_served_version():
    before = served_version("cnn-lstm-v2-1", {"version": "image-check-lite0-20261204-5ec58256-aaaaaa"})
    after = served_version("cnn-lstm-v2-1", {"version": "image-check-lite0-20261205-5ec58256-bbbbbb"})
    assert (before, after) == ("cnn-lstm-v2-1-ic-aaaaaa", "cnn-lstm-v2-1-ic-bbbbbb")
    assert served_version("cnn-lstm-v2-1", None) == "cnn-lstm-v2-1"   # a folder without the check
