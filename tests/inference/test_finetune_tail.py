"""inference.finetune_tail: the frozen part + tail equal the whole network, and a tail fit completes
through finalize like any other v2 fit."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.inference.conftest import make_subset

V2_META = {"architecture_params": {"encoder": "lite0", "reduce": 16, "lstm_units": 96}}


@pytest.mark.parametrize("first_block", [8, 11])
def test_frozen_part_then_tail_equals_the_whole_model(first_block):
    from inference.architectures import build_cnn_lstm_v2
    from inference.finetune_tail import split_at

    model = build_cnn_lstm_v2(64, "lite0", reduce=16)
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])
    frozen, tail = split_at(model, V2_META, first_block)
    x = rng.random((3, 64, 64, 1)).astype("float32")
    whole_logits, whole_map = model.predict(x, verbose=0)
    tail_logits, tail_map = tail.predict(frozen.predict(x, verbose=0), verbose=0)
    np.testing.assert_allclose(tail_logits, whole_logits, atol=1e-4)
    np.testing.assert_allclose(tail_map, whole_map, atol=1e-4)
    assert not any(layer.name == "stem_conv" for layer in tail.layers)   # the tail holds no frozen layer


def test_trained_tail_weights_go_back_into_the_whole_model():
    from inference.architectures import build_cnn_lstm_v2
    from inference.finetune_tail import copy_weights_by_name, split_at

    model = build_cnn_lstm_v2(64, "lite0", reduce=16)
    _, tail = split_at(model, V2_META, 11)
    dense = tail.get_layer("logits")
    dense.set_weights([w + 1.0 for w in dense.get_weights()])
    copied = copy_weights_by_name(tail, model)
    assert copied == sum(1 for layer in tail.layers if layer.weights)
    np.testing.assert_array_equal(model.get_layer("logits").get_weights()[0], dense.get_weights()[0])


@pytest.mark.slow
def test_tail_fit_on_lossless_views_finalizes(mri_root, tmp_path):
    from inference.finetune_tail import TAIL_DEFAULTS, fit_tail
    from inference.train import finalize, train

    data = make_subset(mri_root, tmp_path / "data", per_class=10)
    quiet = lambda m: None  # noqa: E731
    train("cnn_lstm", data, tmp_path / "base", epochs=1, size=64, log=quiet)
    cfg = {**TAIL_DEFAULTS, "views": 2, "epochs": 1}
    rec = fit_tail(tmp_path / "base", data, tmp_path / "tail", cfg, codec_mode="none", log=quiet)
    base_version = json.loads((tmp_path / "base" / "metadata.json").read_text())["version"]
    assert rec["input_codec"] is None and base_version in rec["weights_init"]
    assert len(rec["stages"]) == 2 and rec["stages"][-1]["history"][0]["stage"] == "tail"
    meta = finalize(tmp_path / "tail", data, log=quiet)
    assert "codec" not in meta["input"] and meta["version"].startswith("cnn-lstm-v2-")
    assert meta["split"]["groups_spanning_train_and_val"] == 0
