"""Heat-map variants of the CNN-LSTM compared on validation slices (docs/model-card.md, "Heat maps").

    python benchmarks/heatmaps.py [--model cnn_lstm_v2] [--n 24] [--montage docs/heatmaps-cnn_lstm.jpg]

Variants, all for the predicted class, placed back into the head crop:
  served_fd7  Grad-CAM on the 7x7 map by finite differences through the head (what ONNX serving computes)
  ablation7   ablation-CAM on the 7x7 map (what ONNX serving computed before 2026-12-04)
  gradcam7    Grad-CAM on the same map (the keras runtime)
  gradcampp7  Grad-CAM++ (Chattopadhyay et al. 2018) on the same map
  gradcam14   Grad-CAM on the 14x14 map of encoder block 10 (stride 16: twice the resolution)
The dataset ships no lesion masks, so "points at the lesion" cannot be scored automatically. Printed
instead, per variant: the share of heat outside the head before clipping (spill over the skull, which
serving now clips away), the share of slices whose hottest pixel lies in the head, the mean
correlation with the other variants, and the time per slice; plus a montage to judge by eye.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference import gradcam  # noqa: E402
from inference.data import CLASSES, load_rgb, to_gray  # noqa: E402
from inference.predict import Predictor  # noqa: E402

MRI = Path(__file__).resolve().parents[2] / "shared" / "data" / "brain-tumor-mri" / "Training"


def grads_and_map(model, x: np.ndarray, cls: int) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits, fmap = model(tf.convert_to_tensor(x[None]), training=False)
        score = logits[:, cls]
    return tape.gradient(score, fmap)[0].numpy(), fmap[0].numpy()


def gradcam_pp(grads: np.ndarray, fmap: np.ndarray) -> np.ndarray:
    g2, g3 = grads ** 2, grads ** 3
    alpha = g2 / np.where(2 * g2 + fmap.sum(axis=(0, 1)) * g3 != 0, 2 * g2 + fmap.sum(axis=(0, 1)) * g3, 1.0)
    weights = (alpha * np.maximum(grads, 0)).sum(axis=(0, 1))
    return gradcam.normalise(np.tensordot(fmap, weights, axes=([2], [0])))


def variants(pred: Predictor, mid_model, x: np.ndarray, cls: int) -> dict[str, np.ndarray]:
    grads, fmap = grads_and_map(pred.backend.model, x, cls)
    g14, f14 = grads_and_map(mid_model, x, cls)
    head = pred.backend.head_model if hasattr(pred.backend, "head_model") else None
    out = {
        "gradcam7": gradcam.normalise(np.tensordot(fmap, grads.mean(axis=(0, 1)), axes=([2], [0]))),
        "gradcampp7": gradcam_pp(grads, fmap),
        "gradcam14": gradcam.normalise(np.tensordot(f14, g14.mean(axis=(0, 1)), axes=([2], [0]))),
    }
    if head is not None:
        run_head = lambda b: head.predict(b, verbose=0, batch_size=256)  # noqa: E731
        out["ablation7"] = gradcam.ablation_cam(fmap, run_head, cls)
        out["served_fd7"] = gradcam.gradcam_fd(fmap, run_head, cls)
    return out


def main(argv: list[str] | None = None) -> None:
    import keras

    from inference.architectures import build_cnn_lstm_head

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default="inference/artifacts")
    ap.add_argument("--model", default="cnn_lstm_v2", help="a CNN-LSTM v2 artifact (the 14x14 variant reads encoder block 10)")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--montage", help="write a JPEG montage of 4 tumour slices x variants")
    a = ap.parse_args(argv)
    pred = Predictor.load(a.model, a.models_dir, runtime="keras")
    model = pred.backend.model
    pred.backend.head_model = build_cnn_lstm_head(model)
    mid_model = keras.Model(model.input, [model.outputs[0], model.get_layer("block10_add").output])
    split = json.loads((Path(a.models_dir) / a.model / "split.json").read_text())
    names = [n for n in split["val_cal"] if not n.startswith("notumor")][:: max(1, 1 + len(split["val_cal"]) // (a.n * 2))][:a.n]
    stats: dict[str, dict[str, list[float]]] = {}
    maps_per_slice, shown = [], []
    for name in names:
        gray = to_gray(load_rgb(MRI / name))
        view, box = pred.network_grays(gray)
        x = pred.preprocess(view[None])[0]
        cls = int(np.argmax(model.predict(x[None], verbose=0)[0]))
        mask = gradcam.head_mask(gray)
        placed = {}
        for k, cam in variants(pred, mid_model, x, cls).items():
            t0 = time.time()
            full = gradcam.place(cam, gray.shape, box)
            s = stats.setdefault(k, {"spill": [], "peak_in_head": [], "ms": []})
            s["spill"].append(float(full[~mask].sum() / max(full.sum(), 1e-9)))
            s["peak_in_head"].append(float(mask.flat[int(np.argmax(full))]))
            s["ms"].append((time.time() - t0) * 1000)
            placed[k] = full * mask
        maps_per_slice.append(placed)
        if CLASSES[cls] == name.split("/")[0] and len(shown) < 4:
            shown.append((gray, placed, name))
    keys = sorted(stats)
    for k in keys:
        corr = [np.corrcoef(m[k].ravel(), m[o].ravel())[0, 1] for m in maps_per_slice for o in keys if o != k]
        print(f"{k:11s} spill outside head {np.mean(stats[k]['spill']):.3f}  peak in head "
              f"{np.mean(stats[k]['peak_in_head']):.3f}  mean corr with others {np.nanmean(corr):.2f}")
    print(f"slices: {len(names)} val_cal tumour slices of {a.models_dir}/{a.model}")
    if a.montage:
        write_montage(shown, keys, a.montage)


def write_montage(shown, keys: list[str], path: str, cell: int = 160) -> None:
    from PIL import Image, ImageDraw

    sheet = Image.new("RGB", (cell * (len(keys) + 1), cell * len(shown) + 14), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(["slice", *keys]):
        draw.text((j * cell + 4, 1), title, fill="black")
    for i, (gray, placed, name) in enumerate(shown):
        base = Image.fromarray(gray).convert("RGB").resize((cell, cell))
        sheet.paste(base, (0, 14 + i * cell))
        draw.text((4, 16 + i * cell), name.split("/")[0], fill="yellow")
        for j, k in enumerate(keys, start=1):
            png = gradcam.heatmap_to_png(placed[k], gray)
            sheet.paste(Image.open(io.BytesIO(png)).convert("RGB").resize((cell, cell)), (j * cell, 14 + i * cell))
    sheet.save(path, quality=80)
    print(f"montage: {path}")


if __name__ == "__main__":
    main()
