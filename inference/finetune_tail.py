"""Continue a shipped CNN-LSTM v2 on a CPU: the encoder frozen up to a block, the rest fine-tuned.

    python -m inference.finetune_tail inference/artifacts/cnn_lstm_v2 \\
        --data ../shared/data/brain-tumor-mri/Training --out var/models/cnn_lstm_v2_tail [--codec none]
    python -m inference.train finalize var/models/cnn_lstm_v2_tail --data ../shared/data/brain-tumor-mri/Training
    python -m inference.export var/models/cnn_lstm_v2_tail var/export/cnn_lstm_v2_tail

Whole-network fine-tuning of the 224 px Lite0 model does not fit a 2-core machine (one epoch took
over 20 minutes). Here the encoder's first blocks (stem to block `first_block` - 1, about two thirds
of the compute) are frozen; their output is computed once for `views` versions of every training
slice (the clean view and augmented ones, inference.fit.augmented_epoch) and kept in memory as fp16;
the remaining blocks, the reduction and the BiLSTM head train on those features, each epoch drawing
one version per slice. The grouped split, class-balanced loss, AdamW with cosine decay and the
choice of the epoch on val_cal are the v2 recipe's (inference.finetune). `--codec none` fits on the
original files' lossless views, so the result no longer needs the WebP round trip the GPU pack
imposed; `--codec keep` keeps the shipped model's codec. The output is a fit folder (fit.json +
weight shards) that `inference.train finalize` completes like any other v2 fit.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from inference.data import CLASSES, SPLIT_SEED, decode_view, encode_view, unit_input
from inference.fit import Log, augmented_epoch, balanced_weights, cosine_lr, fit_epochs, log_line, val_scorer
from inference.pack import Views, views_from_folder

TAIL_DEFAULTS = {"first_block": 8, "views": 6, "epochs": 12, "batch": 48, "lr": 2e-4, "warmup": 1,
                 "weight_decay": 1e-4}


def load_shipped(artifact_dir: Path):
    """(Keras CNN-LSTM v2 with the shipped fp16 weights, its metadata.json)."""
    from inference.architectures import cnn_lstm_from_meta, load_weights_npz

    meta = json.loads((artifact_dir / "metadata.json").read_text())
    if not meta.get("architecture_params", {}).get("encoder"):
        raise ValueError(f"{artifact_dir} is not a CNN-LSTM v2 (no pretrained encoder)")
    return load_weights_npz(cnn_lstm_from_meta(meta), artifact_dir / "keras_weights_fp16.npz"), meta


def block_output(model, block: int):
    """Output tensor of encoder block `block` (its residual sum where it has one)."""
    names = {layer.name for layer in model.layers}
    name = f"block{block}_add" if f"block{block}_add" in names else f"block{block}_project_bn"
    return model.get_layer(name).output


def split_at(model, meta: dict, first_block: int):
    """(frozen: image -> output of block first_block - 1, tail: that output -> [logits, map]); the
    tail is a new model with the same layer names, its weights copied from `model`."""
    import keras

    from inference.architectures import build_cnn_lstm_v2_tail

    frozen = keras.Model(model.input, block_output(model, first_block - 1))
    params = meta["architecture_params"]
    tail = build_cnn_lstm_v2_tail(tuple(frozen.output.shape[1:]), first_block, params["encoder"],
                                  params.get("reduce", 128), params.get("lstm_units", 96))
    copy_weights_by_name(model, tail)
    return frozen, tail


def copy_weights_by_name(src, dst) -> int:
    """Copy the weights of every weighted layer the two models share by name; returns the count."""
    source = {layer.name: layer for layer in src.layers if layer.weights}
    shared = [layer for layer in dst.layers if layer.name in source]
    for layer in shared:
        layer.set_weights(source[layer.name].get_weights())
    return len(shared)


def through_codec(grays: np.ndarray, codec: dict | None) -> np.ndarray:
    """The views after the lossy round trip a model was fitted through (unchanged without one)."""
    return grays if not codec else np.stack([decode_view(encode_view(g, codec)) for g in grays])


def frozen_features(frozen, grays: np.ndarray, chunk: int = 512) -> np.ndarray:
    """fp16 output of the frozen part for uint8 grey views."""
    out = [frozen.predict(unit_input(grays[i:i + chunk]), verbose=0, batch_size=64).astype(np.float16)
           for i in range(0, len(grays), chunk)]
    return np.concatenate(out)


def feature_bank(frozen, views: Views, train_idx: np.ndarray, cfg: dict, codec: dict | None, seed: int,
                 log: Log) -> np.ndarray:
    """(views, n_train, ...) fp16: version 0 the clean views, the others fresh augmentations."""
    clean = views.grays[train_idx]
    bank = []
    for v in range(cfg["views"]):
        t0 = time.time()
        grays = clean if v == 0 else augmented_epoch(list(clean), clean, clean.shape[1],
                                                     np.random.default_rng(seed + 500 + v), fraction=1.0)
        bank.append(frozen_features(frozen, through_codec(grays, codec)))
        log(f"features of version {v + 1}/{cfg['views']} ({len(grays)} slices, {time.time() - t0:.0f}s)")
    return np.stack(bank)


def fit_tail(artifact_dir: str | Path, data: str | Path, out: str | Path, cfg: dict, codec_mode: str = "none",
             seed: int = 1234, log: Log = log_line) -> dict:
    """Fit the tail; write out/{weights_fp16_*.npz, fit.json} for inference.train finalize."""
    import keras

    from inference.finetune import device_description, save_weight_shards

    t0, artifact_dir, out = time.time(), Path(artifact_dir), Path(out)
    keras.utils.set_random_seed(seed)
    model, meta = load_shipped(artifact_dir)
    codec = meta["input"].get("codec") if codec_mode == "keep" else None
    views = views_from_folder(data, meta["input"]["size"], meta["input"].get("crop") == "head")
    if views.fingerprint != meta["data"]["fingerprint_sha256"] or views.split_info != meta["split"]:
        raise ValueError(f"{data} is not the data (or split) {artifact_dir} was fitted on")
    frozen, tail = split_at(model, meta, cfg["first_block"])
    tr, cal = np.nonzero(views.split == 0)[0], np.nonzero(views.split == 1)[0]
    bank = feature_bank(frozen, views, tr, cfg, codec, seed, log)
    x_cal = frozen_features(frozen, through_codec(views.grays[cal], codec)).astype(np.float32)
    y_tr, weights = views.labels[tr], balanced_weights(views.labels[tr], len(CLASSES))
    train_model = keras.Model(tail.input, tail.outputs[0])
    train_model.compile(keras.optimizers.AdamW(cfg["lr"], weight_decay=cfg["weight_decay"]),
                        keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    def epoch_data(ep: int):
        pick = np.random.default_rng(seed + 100 + ep).integers(0, cfg["views"], len(tr))
        return bank[pick, np.arange(len(tr))].astype(np.float32), y_tr, weights

    val = val_scorer(lambda x: train_model.predict(x, verbose=0, batch_size=128), x_cal, views.labels[cal])
    log(f"start: val_cal accuracy {val()[0]:.4f} (the shipped weights on these views)")
    res = fit_epochs(train_model, epoch_data, val, cfg["epochs"], 99, cfg["batch"], log, "tail",
                     lr_at=cosine_lr(cfg["lr"], cfg["epochs"], cfg["warmup"]))
    copy_weights_by_name(tail, model)
    return write_fit(model, meta, views, cfg, codec, res, seed, time.time() - t0, device_description(),
                     save_weight_shards(model.get_weights(), _made(out)), out, log)


def _made(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_fit(model, meta: dict, views: Views, cfg: dict, codec: dict | None, res: dict, seed: int,
              seconds: float, hardware: str, weight_files: list[str], out: Path, log: Log) -> dict:
    """fit.json in the format inference.finetune writes (so `finalize` takes it)."""
    base = {k: meta["training"][k] for k in ("size", "crop", "encoder", "reduce") if k in meta["training"]}
    record = {"arch": "cnn_lstm", "v2": True, "config": {**base, **cfg, "tail_of": meta["version"]}, "seed": seed,
              "weights_init": (f"continued from {meta['version']}: encoder stem to block {cfg['first_block'] - 1} "
                               f"frozen, blocks {cfg['first_block']}+ / reduction / BiLSTM / Dense fine-tuned on "
                               f"{cfg['views']} cached versions per slice"
                               + ("" if codec else ", lossless views (no codec round trip)")),
              "data": {"root": views.root, "fingerprint_sha256": views.fingerprint, "split": views.split_info,
                       "split_seed": SPLIT_SEED},
              "input_codec": codec, "stages": meta["training"]["stages"] + [res], "seconds": round(seconds, 1),
              "hardware": hardware, "python": sys.version.split()[0], "weight_files": weight_files}
    (out / "fit.json").write_text(json.dumps(record, indent=2))
    log(f"wrote {out} (best val_cal {res['best_val_cal_acc']:.4f} at epoch {res['best_epoch']}, {seconds:.0f}s)")
    return record


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("artifact", help="a shipped CNN-LSTM v2 folder (metadata.json + keras_weights_fp16.npz)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--codec", choices=("none", "keep"), default="none")
    ap.add_argument("--seed", type=int, default=1234)
    for key, value in TAIL_DEFAULTS.items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    a = ap.parse_args(argv)
    cfg = {k: getattr(a, k) for k in TAIL_DEFAULTS}
    fit_tail(a.artifact, a.data, a.out, cfg, a.codec, a.seed)


if __name__ == "__main__":
    main()
