"""The ImageNet EfficientNet-Lite port and the v2 (pretrained) training path."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from inference import pretrained

from .conftest import make_subset


@pytest.fixture(scope="module")
def lite0_arrays():
    return pretrained.lite_arrays("lite0")


@pytest.mark.parametrize("photo, expected", [
    ("chelsea", {281, 282, 283, 284, 285}),   # tabby / tiger / Persian / Siamese / Egyptian cat
    ("coffee", {967}),                        # espresso
])
def test_port_reproduces_imagenet_top1_on_known_photos(lite0_arrays, photo, expected):
    from skimage import data

    from inference.architectures import build_lite_imagenet

    model = build_lite_imagenet("lite0")
    assert pretrained.port_lite_weights(model, lite0_arrays) == 99   # every conv, BN and the classifier
    rgb = np.asarray(Image.fromarray(getattr(data, photo)()).resize((224, 224), Image.BILINEAR), np.float32)
    logits = model.predict(((rgb - 127.0) / 128.0)[None], verbose=0)[0]
    assert int(logits.argmax()) in expected


def test_legacy_reader_refuses_foreign_globals(tmp_path):
    """A weights file is data: a pickle naming any other global (os.system, ...) is refused."""
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (pretrained.LEGACY_MAGIC, 1001, {"little_endian": True}):
            pickle.dump(obj, f)
        f.write(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="refusing os.system"):
        pretrained.read_legacy_torch(path)


def test_layer_arrays_round_trip_fp16_and_int8(tmp_path, lite0_arrays):
    subset = {k: lite0_arrays[k] for k in ("stem_conv", "stem_bn", "block1_dwconv")}
    for int8, tol in ((False, 1e-3), (True, 0.01)):
        pretrained.save_layer_arrays(subset, tmp_path / "w.npz", int8=int8)
        back = pretrained.load_layer_arrays(tmp_path / "w.npz")
        for name, arrays in subset.items():
            for a, b in zip(arrays, back[name]):
                assert b.shape == a.shape
                assert np.abs(a - b).max() <= tol * np.abs(a).max() + 1e-6


@pytest.mark.slow
def test_v2_fit_finalize_export_serve(mri_root, tmp_path):
    """fit (as on a GPU, from a pack) -> finalize from the original files -> export -> serve."""
    from inference.export import export
    from inference.pack import views_from_folder, write_pack
    from inference.predict import Predictor
    from inference.train import finalize, train

    data = make_subset(mri_root, tmp_path / "data", per_class=10)
    write_pack(views_from_folder(data, 64, crop_head=True), tmp_path / "pack.npz")
    rec = train("cnn_lstm", tmp_path / "pack.npz", tmp_path / "run", fit_only=True, epochs=1, size=64,
                log=lambda m: None)
    assert rec["v2"] and rec["stages"][0]["best_epoch"] == 1 and "EfficientNet-Lite0" in rec["weights_init"]
    meta = finalize(tmp_path / "run", data, log=lambda m: None)
    assert meta["recipe"] == "v2" and meta["architecture_params"]["encoder"] == "lite0"
    assert meta["version"].startswith("cnn-lstm-v2-") and meta["split"]["groups_spanning_train_and_val"] == 0
    export(tmp_path / "run", tmp_path / "art" / "cnn_lstm")
    assert json.loads((tmp_path / "art" / "cnn_lstm" / "metadata.json").read_text())["files"]["onnx_head"]
    pred = Predictor.load("cnn_lstm", tmp_path / "art")
    r = pred.predict_image(np.asarray(Image.open(next((data / "glioma").iterdir())).convert("RGB")))
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_finalize_refuses_other_data(mri_root, tmp_path):
    from inference.train import finalize

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "fit.json").write_text(json.dumps({
        "arch": "cnn_lstm", "config": {}, "seed": 1234,
        "data": {"root": "x", "fingerprint_sha256": "0" * 64, "split": {}}}))
    data = make_subset(mri_root, tmp_path / "data", per_class=3)
    with pytest.raises(ValueError, match="not the data"):
        finalize(tmp_path / "run", data, log=lambda m: None)
