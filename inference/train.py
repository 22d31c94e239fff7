"""The one training command, for both architectures and both recipe generations:

    python -m inference.train --arch cnn_lstm --data ../shared/data/brain-tumor-mri/Training --out var/models/cnn_lstm
    python -m inference.train --arch vgg16    --data ../shared/data/brain-tumor-mri/Training --out var/models/vgg16
    python -m inference.train finalize var/models/cnn_lstm --data ../shared/data/brain-tumor-mri/Training

Steps: data -> grouped split -> fit (--recipe v2: pretrained encoders, inference.finetune; v1: the
earlier recipes, inference.scratch) -> finalize: temperature on val_cal, metrics on val_cal/val_test,
ONNX + fp16 Keras weights + metadata.json. The export (inference.export) then fits the scope gate on
the served model (inference.fit_scope). `--fit-only` stops after the fit (on a
lent GPU, from a pack: inference.pack); `finalize` completes it here from the original files.
`manage.py train_model` takes the same options (it calls add_arguments/run) and exports afterwards.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from inference import calibrate
from inference.data import CLASSES, SPLIT_SEED, Dataset, fingerprint, make_split, network_grays, unit_input, vgg_input
from inference.fit import Log, log_line

VERSION_PREFIX = {"vgg16": "vgg16-hed", "cnn_lstm": "cnn-lstm"}
DEFAULTS = {   # the v1 recipes (inference.scratch); v2: inference.finetune.V2_DEFAULTS
    "vgg16": {"size": 112, "epochs": 30, "head_epochs": 3, "batch": 32, "lr": 3e-4, "patience": 5,
              "cut": "block5_conv2", "crop": "none", "schedule": "plateau"},
    # cosine schedule over a fixed budget, best val_cal epoch kept: plateau-halving with early
    # stopping quit too soon on the noisy 572-image val_cal curve
    "cnn_lstm": {"size": 128, "epochs": 30, "head_epochs": 0, "batch": 32, "lr": 2e-3, "patience": 99,
                 "crop": "head", "schedule": "cosine", "widths": [16, 32, 64, 128]},
}

def macro_f1(y: np.ndarray, pred: np.ndarray, n: int = len(CLASSES)) -> float:
    f1s = []
    for c in range(n):
        tp = np.sum((pred == c) & (y == c))
        fp = np.sum((pred == c) & (y != c))
        fn = np.sum((pred != c) & (y == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def weights_digest(arrays: list[np.ndarray]) -> str:
    """First 6 hex digits of sha256 over the shipped (fp16) weight arrays, in order."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:6]


def split_metrics(logits: np.ndarray, y: np.ndarray, temperature: float, accepted: np.ndarray) -> dict:
    """Accuracy / macro-F1 / ECE on calibrated probabilities; a rejected (not-MRI) slice counts wrong."""
    p = calibrate.softmax(logits, temperature)
    pred = np.where(accepted, p.argmax(1), -1)
    return {
        "n": int(len(y)),
        "accuracy": float(np.mean(pred == y)),
        "macro_f1": macro_f1(y, pred),
        "ece": calibrate.ece(p, y),
        "ece_uncalibrated": calibrate.ece(calibrate.softmax(logits), y),
        "nll": calibrate.nll(logits, y, temperature),
        "rejected_as_not_mri": float(np.mean(~accepted)),
    }



def _hardware() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
    except (OSError, StopIteration):
        cpu = platform.processor()
    return f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.release()}, no GPU"


def config(arch: str, recipe: str, overrides: dict) -> dict:
    """The recipe's defaults with the given (non-None) overrides."""
    from inference.finetune import V2_DEFAULTS

    cfg = dict((V2_DEFAULTS if recipe == "v2" else DEFAULTS)[arch])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if recipe == "v1":
        cfg["head_epochs"] = min(cfg["head_epochs"], cfg["epochs"])
        if overrides.get("schedule") == "plateau" and arch == "cnn_lstm":
            cfg["patience"] = 3
    return cfg


def describe(arch: str, cfg: dict, recipe: str) -> tuple[str, dict]:
    """(description, architecture_params) for metadata.json."""
    size, crop = cfg["size"], " (head-cropped)" if cfg["crop"] == "head" else ""
    if arch == "vgg16" and recipe == "v2":
        return (f"VGG16 at {size} px{crop}: HED-initialised conv base, all layers fine-tuned, "
                "GAP -> BatchNorm -> Dropout(0.4) -> Dense(4)"), {}
    if arch == "vgg16":
        return (f"VGG16 conv base (HED weights) at {size} px, frozen up to {cfg['cut']}, the rest of block 5 "
                "fine-tuned, GAP -> BatchNorm -> Dropout(0.4) -> Dense(4)"), {}
    if recipe == "v2":
        n = size // 32
        return (f"CNN-LSTM v2 at {size} px{crop}: ImageNet EfficientNet-{cfg['encoder'].capitalize()} encoder "
                f"(fine-tuned) -> 1x1 conv to {cfg['reduce']} -> {n}x{n}x{cfg['reduce']} map whose {n} rows a "
                "BiLSTM(96) reads top to bottom as a sequence -> Dense(4)"), \
            {"encoder": cfg["encoder"], "reduce": cfg["reduce"], "lstm_units": 96}
    w, n = cfg["widths"], size // 16
    return (f"CNN-LSTM at {size} px{crop}: 4-stage conv encoder ({w[0]}-{w[1]}-{w[2]}x2-{w[3]}x2, BN, ReLU, "
            f"max-pool) -> {n}x{n}x{w[3]} map whose {n} rows a BiLSTM(96) reads top to bottom as a sequence "
            "-> Dense(4)"), {"widths": list(w), "lstm_units": 96}


def network_views(ds: Dataset, idx: np.ndarray, arch: str, size: int, crop_head: bool,
                  codec: dict | None = None) -> np.ndarray:
    """The serving preprocessing of the original files (data.network_grays -> unit / caffe input)."""
    grays = np.stack([network_grays(ds.grays[i], size, crop_head, codec)[0] for i in idx])
    return vgg_input(grays) if arch == "vgg16" else unit_input(grays)


def _logits(model, ds: Dataset, idx: np.ndarray, arch: str, cfg: dict, chunk: int = 256) -> np.ndarray:
    """Logits for dataset items, in chunks to bound memory."""
    lgs = []
    for i in range(0, len(idx), chunk):
        lg, _ = model.predict(network_views(ds, idx[i:i + chunk], arch, cfg["size"], cfg["crop"] == "head",
                                            cfg.get("codec")), verbose=0, batch_size=64)
        lgs.append(lg)
    return np.concatenate(lgs)


def _metadata(arch: str, recipe: str, cfg: dict, ds: Dataset, split_info: dict, fit: dict,
              shipped: list[np.ndarray], temperature: float, metrics: dict) -> dict:
    """metadata.json of a finalized model (the export adds files, sizes and the image check)."""
    import keras

    description, params = describe(arch, cfg, recipe)
    prefix = VERSION_PREFIX[arch] + ("-v2" if recipe == "v2" else "")
    fp = fingerprint(ds.samples)
    return {
        "name": arch,
        # date, data fingerprint and a digest of the weights: two runs of one day stay distinct
        "version": f"{prefix}-{time.strftime('%Y%m%d')}-{fp[:8]}-{weights_digest(shipped)}",
        "architecture": arch, "recipe": recipe, "description": description,
        "input": {"size": cfg["size"], "channels": 3 if arch == "vgg16" else 1,
                  "preprocessing": "vgg_caffe" if arch == "vgg16" else "unit", "crop": cfg["crop"],
                  "note": ("grayscale (luma) slice cropped to the head's bounding box (inference.data."
                           "foreground_box), " if cfg["crop"] == "head" else "grayscale (luma) slice ")
                          + "resized bilinear to size x size"
                          + (f", then a {cfg['codec']['format']} q{cfg['codec']['quality']} round trip (the "
                             "transport the model was fitted through)" if cfg.get("codec") else ""),
                  **({"codec": cfg["codec"]} if cfg.get("codec") else {})},
        **({"architecture_params": params} if params else {}),
        "classes": list(CLASSES), "weights_init": fit["weights_init"],
        "data": {"root": str(ds.samples[0].path.parent.parent), "n_images": len(ds.samples), "fingerprint_sha256": fp,
                 "class_counts": {c: int((ds.labels == i).sum()) for i, c in enumerate(CLASSES)}},
        "split": split_info,
        "training": {**cfg, "augmentation": "hflip p=0.5, rotate +-12 deg, crop 85-100% + resize, gamma 0.75-1.35, "
                                            "contrast x0.8-1.2, brightness +-0.06",
                     "loss": "softmax cross-entropy" + (", class-balanced" if recipe == "v2" else ""),
                     "optimizer": "AdamW, cosine lr" if cfg.get("schedule", "cosine") == "cosine"
                     else "Adam (lr halved on plateau)",
                     "early_stopping": "val_cal accuracy (ties: NLL), best weights restored",
                     "seed": fit["seed"], "split_seed": fit.get("split_seed", fit["seed"]), "stages": fit["stages"], "seconds": fit["seconds"], "hardware": fit["hardware"],
                     "keras": fit.get("keras", keras.__version__), "python": sys.version.split()[0]},
        "calibration": {"method": "temperature scaling, NLL minimised on val_cal", "temperature": temperature},
        "metrics": metrics, "metrics_note": "Keras fp32, before the scope gate (fitted at export)",
        "files": {"onnx_fp32": "model_fp32.onnx", "keras_weights": "keras_weights_fp16.npz"},
    }


def finalize_model(model, arch: str, recipe: str, cfg: dict, ds: Dataset, split: np.ndarray, split_info: dict,
                   fit: dict, out: Path, log: Log) -> dict:
    """Temperature, metrics, ONNX + fp16 weights + metadata.json for a fitted model. The metrics here
    are before the scope gate, which export fits on the served model (inference.fit_scope); the
    shipped figures come from evaluate_model. `fit`: stages, seconds, hardware, weights_init, seed."""
    va = np.nonzero(split > 0)[0]
    y_va, cal = ds.labels[va], split[va] == 1
    lg_va = _logits(model, ds, va, arch, cfg)
    temperature = calibrate.fit_temperature(lg_va[cal], y_va[cal])
    log(f"temperature {temperature:.3f} (fitted on val_cal, n={int(cal.sum())})")
    every = np.ones(len(va), bool)
    metrics = {name: split_metrics(lg_va[m], y_va[m], temperature, every[m])
               for name, m in (("val_test", ~cal), ("val_cal", cal), ("val_all", every))}
    log(f"metrics {json.dumps(metrics)}")

    from inference.architectures import export_onnx

    export_onnx(model, out / "model_fp32.onnx")
    shipped = [w.astype(np.float16) if w.dtype == np.float32 else w for w in model.get_weights()]
    np.savez_compressed(out / "keras_weights_fp16.npz", *shipped)
    meta = _metadata(arch, recipe, cfg, ds, split_info, fit, shipped, temperature, metrics)
    (out / "metadata.json").write_text(json.dumps(meta, indent=2))
    log(f"wrote {out}")
    return meta


def _fit_v1(arch: str, ds: Dataset, split: np.ndarray, cfg: dict, o: dict, log: Log):
    from inference import scratch

    if arch == "vgg16":
        model, *_rest, results = scratch.train_vgg16_cached(
            ds, split, cfg, o["weights"] or "hed", o["variants"], o["seed"],
            Path(o["cache_dir"]) if o.get("cache_dir") else None, fingerprint(ds.samples), log)
        return model, results, o["weights"] or "hed"
    model, *_rest, results = scratch.train_cnn_lstm_scratch(ds, split, cfg, o["seed"], log, o.get("init"))
    return model, results, scratch.cnn_lstm_init(cfg.get("continued_from"))


def train(arch: str, data: str | Path, out: str | Path, *, recipe: str = "v2", log: Log = log_line,
          fit_only: bool = False, **options) -> dict:
    """Train one architecture end to end; returns metadata.json's content (or fit.json's with
    fit_only). options: weights, epochs, size, lr, crop, cut, widths, schedule (v1), init, variants,
    seed, cache_dir, budget (seconds, v2)."""
    import keras

    t0 = time.time()
    o = {"seed": 1234, "variants": 1, **options}
    keras.utils.set_random_seed(o["seed"])
    cfg = config(arch, recipe, {k: o.get(k) for k in ("epochs", "size", "lr", "cut", "widths", "schedule")}
                 | {"crop": o.get("crop")})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if recipe == "v2":
        from inference.finetune import fit_pretrained
        from inference.pack import load_views

        views = load_views(data, cfg["size"], cfg["crop"] == "head")   # the split's own seed, not the run's
        log(f"{len(views.labels)} views, split {json.dumps(views.split_info)}")
        record = fit_pretrained(arch, views, cfg, out, o.get("init") or o.get("weights"), o["seed"], log,
                                o.get("budget"))
        return record if fit_only else finalize(out, data, log)
    log(f"loading {data}")
    ds = Dataset.load(data)
    _, split, split_info = make_split(ds, seed=o["seed"])
    log(f"{len(ds.samples)} images, split {json.dumps(split_info)}")
    model, results, init_desc = _fit_v1(arch, ds, split, cfg, o, log)
    fit = {"stages": results, "seconds": round(time.time() - t0, 1), "hardware": _hardware(), "weights_init": init_desc,
           "seed": o["seed"]}
    return finalize_model(model, arch, "v1", cfg, ds, split, split_info, fit, out, log)


def finalize(out: str | Path, data: str | Path, log: Log = log_line) -> dict:
    """Complete a v2 fit (fit.json + weight shards, possibly from a GPU) from the ORIGINAL files:
    the split is recomputed and must match the fit's, so val_test stays untouched by the fit."""
    from inference.finetune import load_weight_shards, v2_architecture

    out = Path(out)
    rec = json.loads((out / "fit.json").read_text())
    arch, cfg = rec["arch"], {**rec["config"], "codec": rec.get("input_codec")}
    if str(data).endswith(".npz"):
        data = rec["data"]["root"]
    ds = Dataset.load(data)
    _, split, split_info = make_split(ds, seed=rec["data"].get("split_seed", SPLIT_SEED))
    if fingerprint(ds.samples) != rec["data"]["fingerprint_sha256"] or split_info != rec["data"]["split"]:
        raise ValueError(f"{data} is not the data (or split) {out} was fitted on")
    model = v2_architecture(arch, cfg)
    model.set_weights(load_weight_shards(out, rec["weight_files"]))
    fit = {**{k: rec[k] for k in ("stages", "seconds", "hardware", "weights_init", "seed")},
           "split_seed": rec["data"].get("split_seed", SPLIT_SEED)}
    return finalize_model(model, arch, "v2", cfg, ds, split, split_info, fit, out, log)


def parse_widths(text: str | None) -> tuple[int, ...] | None:
    """'24,48,96,192' -> (24, 48, 96, 192); None stays None (the architecture's default)."""
    return tuple(int(v) for v in text.split(",")) if text else None


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The training options, shared by `python -m inference.train` and `manage.py train_model`."""
    ap.add_argument("--arch", choices=sorted(DEFAULTS), required=True)
    ap.add_argument("--data", required=True, help="Kaggle-layout folder, or a pack (inference.pack) for --fit-only")
    ap.add_argument("--recipe", choices=("v2", "v1"), default="v2",
                    help="v2: pretrained encoders fine-tuned (default); v1: the earlier CPU recipes")
    ap.add_argument("--weights", help="initial weights: v2 cnn_lstm lite0|lite1|lite2|PATH.npz; "
                                      "vgg16 hed|imagenet|PATH (.npz layer arrays or keras weights)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--size", type=int)
    ap.add_argument("--lr", type=float, help="peak learning rate")
    ap.add_argument("--crop", choices=("head", "none"), help="crop slices to the head's bounding box")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--budget", type=float, help="v2: wall-clock seconds for the fit (best epoch so far is kept)")
    ap.add_argument("--fit-only", action="store_true", help="v2: stop after the fit; complete with `finalize`")
    ap.add_argument("--variants", type=int, default=1, help="v1 vgg16: cached augmented variants")
    ap.add_argument("--cache-dir", help="v1 vgg16: feature cache folder")
    ap.add_argument("--cut", help="v1 vgg16: last frozen layer (default block5_conv2)")
    ap.add_argument("--init", help="v1 cnn_lstm: continue from (or warm-start with) this training output folder")
    ap.add_argument("--schedule", choices=("cosine", "plateau"), help="v1 cnn_lstm learning-rate schedule")
    ap.add_argument("--widths", help="v1 cnn_lstm: filters of the 4 encoder stages, e.g. 24,48,96,192")


def run(a: argparse.Namespace, out: str | Path, log: Log = log_line) -> dict:
    options = {k: getattr(a, k) for k in ("weights", "epochs", "size", "lr", "crop", "seed", "budget", "variants",
                                          "cache_dir", "cut", "init", "schedule")}
    return train(a.arch, a.data, out, recipe=a.recipe, log=log, fit_only=a.fit_only,
                 widths=parse_widths(a.widths), **options)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["finalize"]:
        ap = argparse.ArgumentParser(prog="python -m inference.train finalize", description=finalize.__doc__)
        ap.add_argument("out")
        ap.add_argument("--data", required=True)
        a = ap.parse_args(argv[1:])
        finalize(a.out, a.data)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    run(a, a.out)


if __name__ == "__main__":
    main()
