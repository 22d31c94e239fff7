"""The epoch loop shared by every recipe: fresh augmented data per epoch, a learning-rate schedule,
model selection on val_cal accuracy (ties: NLL), an optional wall-clock budget, progress lines.

Backend-agnostic Keras (no TensorFlow import): the same code trains on the CPU here (TensorFlow
backend) and on a lent GPU (KERAS_BACKEND=jax or torch), see docs/model-card.md "Training on a GPU".
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from inference import calibrate
from inference.data import augment, resize_gray

Log = Callable[[str], None]


def log_line(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cosine_lr(peak: float, epochs: int, warmup: int = 0, floor: float = 0.02) -> Callable[[int], float]:
    """Learning rate of epoch k: linear warm-up over `warmup` epochs, then cosine down to floor*peak."""
    def lr_at(k: int) -> float:
        if k < warmup:
            return float(peak * (k + 1) / (warmup + 1))
        t = (k - warmup) / max(1, epochs - warmup)
        return float(peak * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t))))
    return lr_at


def augmented_epoch(sources: list[np.ndarray], clean: np.ndarray, size: int, rng: np.random.Generator,
                    fraction: float = 0.7, workers: int | None = None) -> np.ndarray:
    """One epoch's grey views: `fraction` of them augmented (data.augment) from `sources`, the rest
    clean. Seeds are drawn up front so the result does not depend on the thread count."""
    seeds = rng.integers(0, 2**31, len(sources))
    pick = rng.random(len(sources)) < fraction

    def one(k: int) -> np.ndarray:
        if not pick[k]:
            return clean[k]
        g = augment(sources[k], np.random.default_rng(int(seeds[k])))
        return g if g.shape[0] == size else resize_gray(g, size)

    with ThreadPoolExecutor(workers or min(16, os.cpu_count() or 1)) as pool:
        return np.stack(list(pool.map(one, range(len(sources)))))


def balanced_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-sample weights, inverse class frequency, mean 1 (class-balanced loss)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = (len(labels) / (n_classes * np.maximum(counts, 1)))[labels]
    return (w / w.mean()).astype(np.float32)


def _batch_logger(log: Log, every: int = 25):
    import keras

    class BatchLog(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch % every == 0 and logs:
                log(f"  batch {batch}: loss {float(logs.get('loss', np.nan)):.4f} "
                    f"acc {float(logs.get('accuracy', np.nan)):.4f}")
    return BatchLog()


def fit_epochs(model, get_epoch_data: Callable[[int], tuple], val_fn: Callable[[], tuple[float, float]],
               epochs: int, patience: int, batch: int, log: Log, tag: str, start_epoch: int = 0,
               lr_at: Callable[[int], float] | None = None, deadline: float | None = None,
               schedule: Callable[[int], Callable[[int], float]] | None = None) -> dict:
    """Manual epoch loop; `get_epoch_data(ep)` returns (x, y) or (x, y, sample_weight). Without
    `lr_at` the rate is halved on each non-improving epoch. With a `deadline` (time.time()) and a
    `schedule` (epochs -> lr_at), the epoch count is shrunk after the second epoch to what fits before
    the deadline and the schedule is rebuilt for it, so a time-boxed run still anneals. Stops early
    after `patience` epochs without improvement, when another epoch would pass the deadline, or when
    the file named by TRAIN_STOP_FILE exists. The best weights are restored at the end."""
    best = {"acc": -1.0, "nll": np.inf, "epoch": -1, "weights": model.get_weights()}
    history: list[dict] = []
    bad = 0
    cb = _batch_logger(log)
    for ep in range(start_epoch, start_epoch + epochs):
        t0 = time.time()
        if lr_at is not None:
            model.optimizer.learning_rate.assign(lr_at(ep - start_epoch))
        data = get_epoch_data(ep)
        x, y = data[0], data[1]
        sw = data[2] if len(data) > 2 else None
        h = model.fit(x, y, sample_weight=sw, batch_size=batch, epochs=1, shuffle=True, verbose=0, callbacks=[cb])
        acc, nll = val_fn()
        history.append({"epoch": ep + 1, "stage": tag, "loss": float(h.history["loss"][-1]),
                        "train_acc": float(h.history["accuracy"][-1]), "val_cal_acc": acc,
                        "val_cal_nll": nll, "seconds": round(time.time() - t0, 1)})
        log(f"{tag} epoch {ep + 1}: loss {history[-1]['loss']:.4f} train_acc {history[-1]['train_acc']:.4f} "
            f"val_cal_acc {acc:.4f} val_cal_nll {nll:.4f} ({time.time() - t0:.0f}s)")
        if acc > best["acc"] or (acc == best["acc"] and nll < best["nll"]):
            best = {"acc": acc, "nll": nll, "epoch": ep + 1, "weights": model.get_weights()}
            bad = 0
        else:
            bad += 1
            if lr_at is None:
                lr = model.optimizer.learning_rate
                lr.assign(float(np.asarray(lr.value if hasattr(lr, "value") else lr)) * 0.5)  # halve on plateau
            if bad >= patience:
                log(f"{tag}: early stop (best epoch {best['epoch']})")
                break
        if deadline is not None and schedule is not None and len(history) == 2:
            fits = 2 + int((deadline - time.time()) // max(history[1]["seconds"], 1e-3))
            if fits < epochs:
                log(f"{tag}: {fits} of {epochs} epochs fit the time budget; schedule rebuilt for {fits}")
                epochs, lr_at = fits, schedule(fits)
        if ep + 1 - start_epoch >= epochs or _should_stop(deadline, history, log, tag, best["epoch"]):
            break
    model.set_weights(best["weights"])
    return {"best_epoch": best["epoch"], "best_val_cal_acc": best["acc"], "history": history}


def _should_stop(deadline: float | None, history: list[dict], log: Log, tag: str, best_epoch: int) -> bool:
    stop = os.environ.get("TRAIN_STOP_FILE")
    if stop and Path(stop).exists():  # operator stop: keep the best weights and finish normally
        log(f"{tag}: stop file {stop} found (best epoch {best_epoch})")
        return True
    if deadline is not None:
        per_epoch = float(history[-1]["seconds"])
        if time.time() + per_epoch > deadline:
            log(f"{tag}: time budget reached after {len(history)} epochs (best epoch {best_epoch})")
            return True
    return False


def val_scorer(predict: Callable[[np.ndarray], np.ndarray], x_cal: np.ndarray, y_cal: np.ndarray
               ) -> Callable[[], tuple[float, float]]:
    """val_cal accuracy and NLL of the logits `predict` gives."""
    def score() -> tuple[float, float]:
        lg = np.asarray(predict(x_cal), np.float64)
        return float(np.mean(lg.argmax(1) == y_cal)), calibrate.nll(lg, y_cal)
    return score
