"""Evaluation on any Kaggle-layout folder: per-class P/R/F1, confusion matrix, accuracy, macro-F1,
ECE, rejection rate, optional plots. A slice the gate rejects as not-MRI counts as wrong.

    python -m inference.evaluate DIR [--model NAME] [--plots OUTDIR] [--json]
    python -m inference.evaluate --split-dir val_test var/splits/val_test   # grouped validation half
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from inference import calibrate
from inference.data import CLASSES, list_samples, load_rgb


def _bar(done: int, total: int, stream: TextIO, width: int = 30) -> None:
    k = int(width * done / max(total, 1))
    stream.write(f"\r[{'#' * k}{'.' * (width - k)}] {done}/{total}")
    if done >= total:
        stream.write("\n")
    stream.flush()


def confusion(y: np.ndarray, pred: np.ndarray, n: int = len(CLASSES)) -> np.ndarray:
    """Rows: true class; columns: predicted class, plus a last column 'rejected' (pred == -1)."""
    cm = np.zeros((n, n + 1), np.int64)
    for t, p in zip(y, pred):
        cm[t, p if p >= 0 else n] += 1
    return cm


def per_class(cm: np.ndarray) -> list[dict]:
    n = cm.shape[0]
    out = []
    for c in range(n):
        tp = cm[c, c]
        fp = cm[:, c].sum() - tp
        fn = cm[c].sum() - tp
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        out.append({"class": CLASSES[c], "precision": float(p), "recall": float(r), "f1": float(f),
                    "support": int(cm[c].sum())})
    return out


def evaluate(data_dir: str | Path, model: str | None = None, models_dir: str | Path | None = None,
             runtime: str = "onnx", plots: str | Path | None = None, batch: int = 32,
             progress: TextIO | None = sys.stderr) -> dict:
    from inference.predict import get_predictor

    pred_obj = get_predictor(model, models_dir, runtime)
    samples = list_samples(data_dir)
    y = np.array([s.label for s in samples])
    probs = np.zeros((len(samples), len(CLASSES)))
    accepted = np.zeros(len(samples), bool)
    infer_s = 0.0
    for start in range(0, len(samples), batch):
        imgs = [load_rgb(s.path) for s in samples[start:start + batch]]
        t0 = time.perf_counter()
        res = pred_obj.predict_batch(imgs, heatmaps=False, batch_size=batch)
        infer_s += time.perf_counter() - t0
        for i, r in enumerate(res):
            probs[start + i] = [r.probabilities[c] for c in CLASSES]
            accepted[start + i] = r.is_brain_mri
        if progress:
            _bar(min(start + batch, len(samples)), len(samples), progress)
    pred = np.where(accepted, probs.argmax(1), -1)
    cm = confusion(y, pred)
    classes = per_class(cm)
    result = {
        "n": int(len(y)),
        "accuracy": float(np.mean(pred == y)),
        "macro_f1": float(np.mean([c["f1"] for c in classes])),
        "ece": calibrate.ece(probs, y),
        "ms_per_image": 1000.0 * infer_s / max(len(y), 1),
        "model": f"{pred_obj.model_name}@{pred_obj.model_version} ({runtime})",
        "rejected_as_not_mri": float(np.mean(~accepted)),
        "per_class": classes,
        "confusion_matrix": {"rows_true": list(CLASSES), "cols_pred": list(CLASSES) + ["rejected"],
                             "counts": cm.tolist()},
        "data_dir": str(data_dir),
    }
    if plots:
        result["plots"] = write_plots(Path(plots), cm, probs, y, result["model"])
    return result


def write_plots(outdir: Path, cm: np.ndarray, probs: np.ndarray, y: np.ndarray, title: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(cm, cmap="Blues")
    cols = list(CLASSES) + ["rejected"]
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix\n{title}", fontsize=9)
    fig.tight_layout()
    cm_path = outdir / "confusion_matrix.png"
    fig.savefig(cm_path, dpi=120)
    plt.close(fig)

    centres, acc, cnt = calibrate.reliability_bins(probs, y)
    fig, ax = plt.subplots(figsize=(5, 5))
    ok = cnt > 0
    ax.bar(centres[ok], acc[ok], width=1 / len(centres), edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
    ax.set_xlabel("confidence (calibrated top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability, ECE {calibrate.ece(probs, y):.4f}\n{title}", fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    rel_path = outdir / "reliability_diagram.png"
    fig.savefig(rel_path, dpi=120)
    plt.close(fig)
    return [str(cm_path), str(rel_path)]


def format_report(r: dict) -> str:
    lines = [f"model {r['model']}  n={r['n']}", f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for c in r["per_class"]:
        lines.append(f"{c['class']:<12}{c['precision']:>10.4f}{c['recall']:>10.4f}{c['f1']:>10.4f}{c['support']:>9}")
    cm = r["confusion_matrix"]
    lines.append("confusion matrix (rows true, cols predicted):")
    lines.append(" " * 12 + "".join(f"{c[:10]:>11}" for c in cm["cols_pred"]))
    for name, row in zip(cm["rows_true"], cm["counts"]):
        lines.append(f"{name:<12}" + "".join(f"{v:>11}" for v in row))
    lines.append(f"accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}  ECE {r['ece']:.4f}  "
                 f"rejected as not MRI {r['rejected_as_not_mri']:.4f}  {r['ms_per_image']:.1f} ms/image")
    return "\n".join(lines)


def make_split_dir(which: str, out: str | Path, model: str | None = None,
                   models_dir: str | Path | None = None, data_root: str | Path | None = None) -> int:
    """Kaggle-layout folder of symlinks to one side of the model's grouped split (from split.json),
    so `evaluate_model` can score exactly the held-out groups without copying data."""
    from inference.predict import DEFAULT_MODELS_DIR, default_model_name

    d = Path(models_dir) if models_dir else DEFAULT_MODELS_DIR
    model_dir = d / (model or default_model_name(d))
    meta = json.loads((model_dir / "metadata.json").read_text())
    split = json.loads((model_dir / "split.json").read_text())
    root = Path(data_root or meta["data"]["root"])
    names = split["val_cal"] + split["val_test"] if which == "val" else split[which]
    out = Path(out)
    for rel in names:
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            dst.symlink_to((root / rel).resolve())
    return len(names)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", nargs="?")
    ap.add_argument("--model")
    ap.add_argument("--models-dir")
    ap.add_argument("--runtime", default="onnx", choices=("onnx", "keras"))
    ap.add_argument("--plots")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--split-dir", nargs=2, metavar=("WHICH", "OUT"),
                    help="write a symlink folder for val_cal|val_test|val of the model's grouped split")
    a = ap.parse_args(argv)
    if a.split_dir:
        n = make_split_dir(a.split_dir[0], a.split_dir[1], a.model, a.models_dir)
        print(f"{n} links under {a.split_dir[1]}")
        return
    r = evaluate(a.data_dir, a.model, a.models_dir, a.runtime, a.plots)
    print(format_report(r))
    if a.json:
        print(json.dumps({k: r[k] for k in ("n", "accuracy", "macro_f1", "ece", "ms_per_image", "model",
                                            "rejected_as_not_mri")} | {"per_class": r["per_class"],
                                                                       "confusion_matrix": r["confusion_matrix"]}))


if __name__ == "__main__":
    main()
