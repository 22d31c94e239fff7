"""End-to-end smoke run: train a tiny CNN-LSTM on a few real images, export it, serve it."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from inference.data import load_rgb, list_samples

from .conftest import make_subset


@pytest.mark.slow
def test_train_export_predict_cnn_lstm(mri_root, tmp_path):
    from inference.export import export
    from inference.predict import Predictor
    from inference.train import train

    data = make_subset(mri_root, tmp_path / "data", per_class=8)
    meta = train("cnn_lstm", data, tmp_path / "run", recipe="v1", epochs=1, size=32, log=lambda m: None)
    assert meta["split"]["groups_spanning_train_and_val"] == 0
    assert meta["data"]["n_images"] == 32 and len(meta["data"]["fingerprint_sha256"]) == 64
    assert meta["calibration"]["temperature"] > 0
    assert re.fullmatch(r"cnn-lstm-\d{8}-[0-9a-f]{8}-[0-9a-f]{6}", meta["version"])
    for f in ("model_fp32.onnx", "keras_weights_fp16.npz", "metadata.json"):
        assert (tmp_path / "run" / f).exists()
    assert not (tmp_path / "run" / "ood.npz").exists()    # the scope gate is fitted at export, on the served model

    export(tmp_path / "run", tmp_path / "art" / "cnn_lstm")
    saved = json.loads((tmp_path / "art" / "cnn_lstm" / "metadata.json").read_text())
    assert saved["files"]["onnx_head"] == "head.onnx"
    assert saved["input"]["crop"] == "head"    # the serving path crops exactly as training did
    assert saved["ood"]["threshold_rule"].endswith("fitted by inference.fit_scope")
    assert (tmp_path / "art" / "cnn_lstm" / "ood.npz").exists()
    pred = Predictor.load("cnn_lstm", tmp_path / "art")
    img = load_rgb(list_samples(data)[0].path)
    r = pred.predict_image(img)
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert (r.heatmap is not None) == r.is_brain_mri    # a heat map exactly for the slices the check accepts
    # the heat-map path itself, with the one-epoch model's gate opened (it may refuse its own slice)
    pred.gate.threshold, pred.gate.stat_lo[:], pred.gate.stat_hi[:] = np.inf, -np.inf, np.inf
    opened = pred.predict_image(img)
    assert opened.is_brain_mri and opened.heatmap is not None and opened.heatmap.shape == img.shape[:2]
    # keras and onnx runtimes agree on the logits' argmax
    kr = Predictor.load("cnn_lstm", tmp_path / "art", runtime="keras").predict_image(img, heatmap=False)
    assert np.allclose([kr.probabilities[c] for c in r.probabilities], list(r.probabilities.values()), atol=2e-2)


@pytest.mark.slow
def test_warm_start_copies_matching_layers_and_continues_full_matches(tmp_path):
    from inference.architectures import build_cnn_lstm
    from inference.scratch import warm_start

    src = build_cnn_lstm(32)
    np.savez_compressed(tmp_path / "keras_weights_fp16.npz", *[w.astype(np.float16) for w in src.get_weights()])
    (tmp_path / "metadata.json").write_text(json.dumps({
        "version": "cnn-lstm-test", "input": {"size": 32},
        "training": {"seconds": 1.0, "stages": [{"history": [{}, {}, {}]}]}}))

    wider_input = build_cnn_lstm(48)          # 3 LSTM steps of 3x128 instead of 2 of 2x128
    start, info = warm_start(wider_input, tmp_path, log=lambda m: None)
    assert start == 0 and info["layers_new"] == ["bilstm"]
    conv = wider_input.get_layer("s1_conv1").get_weights()[0]
    assert np.allclose(conv, src.get_layer("s1_conv1").get_weights()[0], atol=1e-3)

    same = build_cnn_lstm(32)
    start, info = warm_start(same, tmp_path, log=lambda m: None)
    assert start == 3 and info["layers_new"] == []   # a continuation: epochs keep counting
