"""Turn a training output folder into a shipped artifact folder.

    python -m inference.export var/models/vgg16 inference/artifacts/vgg16 [--quantize int8|none]

VGG16: its fp32 ONNX (59 MB) is too big to commit, so the served model.onnx is statically
quantised to int8 (QDQ, per-channel weights, activations calibrated on training slices); that is also
what makes it fast enough on 2 cores. CNN-LSTM: fp32 (small); its head (map -> logits) is exported
separately for ablation heat maps. TensorFlow is needed here only for the CNN-LSTM head.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from inference.data import list_samples
from inference.fit_scope import refit   # the scope gate, fitted once, on the served model


def calibration_batches(meta: dict, n: int | None = None, batch: int = 16, seed: int = 7) -> list[np.ndarray]:
    """Preprocessed random training slices (fixed seed) for activation-range calibration. The
    percentile calibrator keeps every activation in memory: 160 slices at 112 px, and as many as fit
    the same pixel budget at larger sizes (40 at 224 px: 160 there took 20 GB for VGG16)."""
    n = n or max(2 * batch, int(160 * (112 / meta["input"]["size"]) ** 2) // batch * batch)   # whole batches
    from inference.data import codec_of, crops_head, load_rgb, network_grays, to_gray, unit_input, vgg_input

    samples = list_samples(meta["data"]["root"])
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(samples), size=min(n, len(samples)), replace=False)
    size = meta["input"]["size"]
    grays = np.stack([network_grays(to_gray(load_rgb(samples[i].path)), size, crops_head(meta), codec_of(meta))[0]
                      for i in pick])
    x = vgg_input(grays) if meta["architecture"] == "vgg16" else unit_input(grays)
    return [x[i:i + batch] for i in range(0, len(x), batch)]


def quantize_int8(src: Path, dst: Path, batches: list[np.ndarray], keep_fp32: tuple[str, ...] = ()
                  ) -> None:
    """Static int8 (QDQ, per-channel weights, percentile-calibrated activations). Nodes whose name
    contains one of `keep_fp32` stay float (keeping block 5 in fp32 did not recover the int8 loss on
    val_test, so nothing is kept by default)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, \
        quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import onnxruntime as ort

    input_name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {input_name: b}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        import onnx

        exclude = [n.name for n in onnx.load(str(pre)).graph.node if any(k in n.name for k in keep_fp32)]
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=exclude,
                        extra_options={"CalibPercentile": 99.999})


def export_cnn_lstm_head(train_dir: Path, meta: dict, dst: Path) -> None:
    from inference import architectures as A

    model = A.load_weights_npz(A.cnn_lstm_from_meta(meta), train_dir / "keras_weights_fp16.npz")
    head = A.build_cnn_lstm_head(model)
    head.predict(np.zeros((1,) + tuple(head.input.shape[1:]), np.float32), verbose=0)
    head.export(str(dst), format="onnx", verbose=False)


def write_split(meta: dict, dst: Path) -> None:
    """Names (class/file) of the two validation halves, recomputed deterministically from the data
    and seed: lets evaluate_model score exactly the held-out groups."""
    from inference.data import Dataset, fingerprint, make_split

    ds = Dataset.load(meta["data"]["root"])
    if fingerprint(ds.samples) != meta["data"]["fingerprint_sha256"]:
        raise RuntimeError("training data changed since training: split cannot be reproduced")
    _, split, info = make_split(ds, seed=meta["training"].get("split_seed", meta["training"]["seed"]))
    names = [f"{s.path.parent.name}/{s.path.name}" for s in ds.samples]
    dst.write_text(json.dumps({"method": info["method"],
                               "val_cal": [n for n, k in zip(names, split) if k == 1],
                               "val_test": [n for n, k in zip(names, split) if k == 2]}))


def export(train_dir: str | Path, out_dir: str | Path, quantize: str = "auto") -> dict:
    train_dir, out_dir = Path(train_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = json.loads((train_dir / "metadata.json").read_text())
    if quantize == "auto":
        quantize = "int8" if meta["architecture"] == "vgg16" else "none"
    if quantize == "int8":
        quantize_int8(train_dir / "model_fp32.onnx", out_dir / "model.onnx", calibration_batches(meta))
    else:
        shutil.copyfile(train_dir / "model_fp32.onnx", out_dir / "model.onnx")
    if meta["architecture"] == "cnn_lstm":
        export_cnn_lstm_head(train_dir, meta, out_dir / "head.onnx")
    write_split(meta, out_dir / "split.json")
    shutil.copyfile(train_dir / "keras_weights_fp16.npz", out_dir / "keras_weights_fp16.npz")
    (out_dir / "ood.npz").unlink(missing_ok=True)   # a previous model's gate never survives an export
    meta["description"] = meta["description"].replace("GAP -> Dropout", "GAP -> BatchNorm -> Dropout")
    meta["files"] = {"onnx": "model.onnx", "onnx_precision": quantize if quantize != "none" else "fp32",
                     "keras_weights": "keras_weights_fp16.npz", "ood": "ood.npz"}
    if (out_dir / "head.onnx").exists():
        meta["files"]["onnx_head"] = "head.onnx"
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=2))
    refit(out_dir, Path(meta["data"]["root"]))
    meta = json.loads((out_dir / "metadata.json").read_text())
    meta["files"]["sizes_bytes"] = {p.name: p.stat().st_size for p in sorted(out_dir.iterdir()) if p.is_file()}
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=2))
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--quantize", choices=("auto", "int8", "none"), default="auto")
    a = ap.parse_args(argv)
    meta = export(a.train_dir, a.out_dir, a.quantize)
    print(json.dumps(meta["files"], indent=2))


if __name__ == "__main__":
    main()
