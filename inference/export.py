"""Turn a training output folder into a shipped artifact folder.

    python -m inference.export var/models/vgg16 inference/artifacts/vgg16 [--quantize int8|none]

VGG16: its fp32 ONNX (59 MB) is too big to commit, so the served model.onnx is statically
quantised to int8 (QDQ, per-channel 7-bit weights, activations calibrated on training slices); that
is also what makes it fast enough on 2 cores. A shipped int8 model can be re-quantised from its own
fp16 Keras weights, without the training folder:

    python -m inference.export requantize inference/artifacts/vgg16

CNN-LSTM: fp32 (small); its head (map -> logits) is exported separately for ablation heat maps.
TensorFlow is needed here only for the CNN-LSTM head and for `requantize`.
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

INT8_SCHEME = "static QDQ int8, per-channel 7-bit weights (reduce_range), uint8 activations"


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
    val_test, so nothing is kept by default).

    Weights use 7 bits (reduce_range): ONNX Runtime's U8S8 kernels on x86 CPUs without VNNI add
    pairs of uint8 x int8 products in 16 bits (VPMADDUBSW), which saturates for full-range weights
    (2 x 255 x 127 > 32767) but never for 7-bit ones (2 x 255 x 64 < 32767). With full-range
    weights the same file gave different scores on an AVX2-only CPU than on an AVX512-VNNI one."""
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
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                        calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=exclude,
                        extra_options={"CalibPercentile": 99.999})


def export_quantized(model, dst: Path, batches: list[np.ndarray]) -> None:
    """A Keras model -> int8 ONNX at `dst`; its fp32 ONNX lives only in a temporary folder."""
    from inference.architectures import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model_fp32.onnx"
        export_onnx(model, fp32)
        quantize_int8(fp32, dst, batches)


def export_cnn_lstm_head(train_dir: Path, meta: dict, dst: Path) -> None:
    from inference import architectures as A

    model = A.load_weights_npz(A.cnn_lstm_from_meta(meta), train_dir / "keras_weights_fp16.npz")
    A.export_onnx(A.build_cnn_lstm_head(model), dst)


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
    if quantize == "int8":
        meta["files"]["quantization"] = INT8_SCHEME
    if (out_dir / "head.onnx").exists():
        meta["files"]["onnx_head"] = "head.onnx"
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=2))
    refit(out_dir, Path(meta["data"]["root"]))
    return _write_sizes(out_dir)


def _write_sizes(out_dir: Path) -> dict:
    meta = json.loads((out_dir / "metadata.json").read_text())
    meta["files"]["sizes_bytes"] = {p.name: p.stat().st_size for p in sorted(out_dir.iterdir()) if p.is_file()}
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=2))
    return meta


def requantize(artifact_dir: str | Path, suffix: str = "q7") -> dict:
    """Re-quantise a shipped int8 v2 VGG16 from its own fp16 Keras weights (the fp32 ONNX is rebuilt
    from them), refit its scope gate with the threshold rule it had, and give it a new version
    (`<version>-<suffix>`), so that stored predictions of the old file are not mistaken for its."""
    from inference.architectures import load_weights_npz
    from inference.finetune import v2_architecture

    out_dir = Path(artifact_dir)
    meta = json.loads((out_dir / "metadata.json").read_text())
    if meta["architecture"] != "vgg16" or meta["files"].get("onnx_precision") != "int8":
        raise ValueError(f"{out_dir} is not an int8 VGG16 artifact")
    model = load_weights_npz(v2_architecture("vgg16", meta["training"]), out_dir / meta["files"]["keras_weights"])
    export_quantized(model, out_dir / "model.onnx", calibration_batches(meta))
    meta["version"] = f"{meta['version']}-{suffix}"
    meta["files"]["quantization"] = INT8_SCHEME
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=2))
    refit(out_dir, Path(meta["data"]["root"]), out_of_group="out-of-group" in meta["ood"]["threshold_rule"])
    return _write_sizes(out_dir)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train_dir", help="a training output folder, or with `requantize` an artifact folder")
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--quantize", choices=("auto", "int8", "none"), default="auto")
    a = ap.parse_args(argv)
    if a.train_dir == "requantize":
        meta = requantize(a.out_dir)
    else:
        meta = export(a.train_dir, a.out_dir, a.quantize)
    print(json.dumps(meta["files"], indent=2))


if __name__ == "__main__":
    main()
