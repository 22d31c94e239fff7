"""The shipped default model: invariances, the not-MRI gate, heat maps, series rule."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from inference.data import list_samples, load_rgb, to_gray
from inference.predict import CLASSES, Predictor, get_predictor

from .conftest import non_mri_images


@pytest.fixture(scope="module")
def predictor(artifacts: Path) -> Predictor:
    return get_predictor(None, artifacts)


@pytest.fixture(scope="module")
def sample_slices(mri_root: Path) -> list[tuple[np.ndarray, int]]:
    samples = list_samples(mri_root)
    step = len(samples) // 20
    slices = [(to_gray(load_rgb(s.path)), s.label) for s in samples[step // 2::step][:20]]
    assert len(slices) == 20
    return slices


def _perturb(g: np.ndarray) -> dict[str, np.ndarray]:
    im = Image.fromarray(g)
    f = g.astype(np.float32)
    return {
        "hflip": g[:, ::-1].copy(),
        "rot+5": np.asarray(im.rotate(5, resample=Image.BILINEAR)),
        "rot-5": np.asarray(im.rotate(-5, resample=Image.BILINEAR)),
        "contrast x0.85": np.clip(f * 0.85, 0, 255).astype(np.uint8),
        "contrast x1.15": np.clip((f - f.mean()) * 1.15 + f.mean(), 0, 255).astype(np.uint8),
        "gamma 0.9": np.clip(255 * (f / 255) ** 0.9, 0, 255).astype(np.uint8),
    }


def test_small_perturbations_keep_the_label(predictor, sample_slices):
    changed = []
    total = 0
    for i, (g, _) in enumerate(sample_slices):
        base = predictor.predict_image(g, heatmap=False)
        assert base.is_brain_mri
        for name, p in _perturb(g).items():
            r = predictor.predict_image(p, heatmap=False)
            total += 1
            if r.label != base.label:
                changed.append((i, name, base.label, r.label))
    # a handful of borderline slices may flip; systematic sensitivity may not
    assert len(changed) <= 0.05 * total, changed


def test_training_slices_are_accepted_and_mostly_right(predictor, sample_slices):
    res = predictor.predict_batch([g for g, _ in sample_slices], heatmaps=False)
    assert all(r.is_brain_mri for r in res)
    acc = np.mean([CLASSES.index(r.label) == y for r, (_, y) in zip(res, sample_slices)])
    assert acc >= 0.9


@pytest.mark.parametrize("name", list(non_mri_images()))
def test_gate_rejects_non_mri(predictor, name):
    r = predictor.predict_image(non_mri_images()[name])
    assert not r.is_brain_mri, (name, r.ood_score)
    assert r.label is None and r.heatmap is None
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_slice_result_contract(predictor, sample_slices):
    g = sample_slices[0][0]
    r = predictor.predict_image(g)
    assert r.heatmap is not None and r.heatmap.shape == g.shape and r.heatmap.dtype == np.float32
    assert 0.0 <= r.heatmap.min() and r.heatmap.max() <= 1.0
    rgb = np.repeat(g[..., None], 3, axis=2)
    assert predictor.predict_image(rgb).label == r.label  # grey RGB == grey


def test_series_of_one_and_many(predictor, sample_slices):
    one = predictor.predict_series([sample_slices[0][0]])
    assert one.key_slice_index == 0 and len(one.slices) == 1
    assert one.model_name == predictor.model_name and one.aggregation
    mixed = predictor.predict_series([g for g, _ in sample_slices[:3]] + [non_mri_images()["text document"]])
    assert mixed.is_brain_mri and not mixed.slices[3].is_brain_mri
    assert 0 <= mixed.key_slice_index < 3
    assert 0.0 <= mixed.confidence <= 1.0


class _TfGradCam(NamedTuple):
    """TensorFlow Grad-CAM of one sample slice: the reference both serving heat maps must match."""

    keras: Predictor  # the model on the Keras runtime
    x: np.ndarray  # the preprocessed network input (one slice, batch of one)
    fmap: np.ndarray  # its conv map on the Keras runtime
    cls: int  # the class the model predicts
    cam: np.ndarray  # TensorFlow Grad-CAM for that class


def _tf_gradcams(artifacts: Path, model_name: str, sample_slices) -> list[_TfGradCam]:
    from inference import gradcam

    keras_pred = Predictor.load(model_name, artifacts, runtime="keras")
    cases = []
    for g, _ in sample_slices[:3]:
        x = keras_pred.preprocess(keras_pred.network_grays(g)[0][None])
        logits, fmap = keras_pred.backend(x)
        cls = int(logits[0].argmax())
        cases.append(_TfGradCam(keras_pred, x, fmap, cls, gradcam.gradcam_tf(keras_pred.backend.model, x[0], cls)))
    assert len(cases) == 3
    return cases


@pytest.mark.slow
def test_numpy_cam_equals_tf_gradcam(artifacts, sample_slices):
    """VGG16: the serving-path CAM (numpy, from the conv map) equals TensorFlow Grad-CAM."""
    from inference import gradcam

    onnx_pred = Predictor.load("vgg16", artifacts, runtime="onnx")
    for case in _tf_gradcams(artifacts, "vgg16", sample_slices):
        np_cam = gradcam.cam_from_fmap(case.fmap[0], case.keras.dense_kernel, case.cls)
        assert np.abs(case.cam - np_cam).max() < 1e-3
        # the int8 ONNX map gives nearly the same picture
        _, ofmap = onnx_pred.backend(case.x)
        o_cam = gradcam.cam_from_fmap(ofmap[0], onnx_pred.dense_kernel, case.cls)
        assert np.corrcoef(o_cam.ravel(), np_cam.ravel())[0, 1] > 0.9


def test_cnn_lstm_serving_heat_map_is_tf_gradcam(artifacts, sample_slices):
    """CNN-LSTM: the ONNX path's finite-difference Grad-CAM (head.onnx only) equals TensorFlow's
    Grad-CAM on the same map, and does not light the first row the BiLSTM reads."""
    from inference import gradcam

    onnx_pred = Predictor.load("cnn_lstm", artifacts, runtime="onnx")
    for case in _tf_gradcams(artifacts, "cnn_lstm", sample_slices):
        _, ofmap = onnx_pred.backend(case.x)
        fd_cam = gradcam.gradcam_fd(ofmap[0], onnx_pred.backend.run_head, case.cls)
        assert np.corrcoef(case.cam.ravel(), fd_cam.ravel())[0, 1] > 0.98
        assert np.abs(case.cam - fd_cam).max() < 0.1
