"""Prediction API the portal codes against (Django-free).

Serving runs on ONNX Runtime by default (no TensorFlow import: small, fast-loading Celery
workers); runtime="keras" rebuilds the Keras model (TensorFlow, GPU when present) and uses a real
Grad-CAM. The caller chooses the runtime; this module reads no settings or environment.

Artifacts: <models_dir>/<name>/{metadata.json, model.onnx, ood.npz, keras_weights_fp16.npz,
head.onnx (CNN-LSTM only)}; <models_dir>/default.txt names the default model;
<models_dir>/image_check/ holds the check every model shares (inference.image_check): a slice is
labelled only when both its model's own gate and the shared check accept it.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from inference import calibrate, gradcam
from inference.data import CLASSES, Box, codec_of, crops_head, network_grays, to_gray, to_uint8, unit_input, vgg_input
from inference.image_check import ImageCheck, check_tag, read_check_meta
from inference.ood import OODGate, image_stats
from inference.sessions import cpu_session
from inference.series import AGGREGATION_RULE, SeriesResult, SliceResult, aggregate, out_of_scope  # noqa: F401 - re-exported

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent / "artifacts"
_log = logging.getLogger(__name__)


def default_model_name(models_dir: str | Path | None = None) -> str:
    d = Path(models_dir) if models_dir else DEFAULT_MODELS_DIR
    f = d / "default.txt"
    return f.read_text().strip() if f.exists() else "vgg16"


def served_version(model_version: str, check_meta: dict | None) -> str:
    """The version a result is stored and reported under: the model's, and the shared image check's
    tag when the folder has a check. A refitted check changes which slices get a label, so it is a
    new version like a new model: stored predictions name both, and series are classified anew.
    At most 64 characters (Prediction.model_version; a DICOM LO in the SR)."""
    return f"{model_version}-{check_tag(check_meta)}" if check_meta else model_version


def read_served_version(models_dir: str | Path, name: str) -> str:
    """What a Predictor of `name` in `models_dir` reports as model_version, from its JSON files alone."""
    meta = json.loads((Path(models_dir) / name / "metadata.json").read_text())
    return served_version(meta["version"], read_check_meta(models_dir))


# ----------------------------------------------------------------------------- back ends

class _OnnxBackend:
    """model.onnx -> (logits, conv map); outputs told apart by rank, names vary with the exporter."""

    def __init__(self, model_dir: Path, threads: int | None) -> None:
        self.sess = cpu_session(model_dir / "model.onnx", threads)
        self.inp = self.sess.get_inputs()[0].name
        ranks = [len(o.shape) for o in self.sess.get_outputs()]
        self.i_logits, self.i_fmap = ranks.index(2), ranks.index(4)
        head = model_dir / "head.onnx"
        self.head = cpu_session(head, threads) if head.exists() else None

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.sess.run(None, {self.inp: x.astype(np.float32)})
        return out[self.i_logits], out[self.i_fmap]

    def run_head(self, fmap: np.ndarray) -> np.ndarray:
        return self.head.run(None, {self.head.get_inputs()[0].name: fmap.astype(np.float32)})[0]


class _KerasBackend:
    def __init__(self, model_dir: Path, meta: dict) -> None:
        from inference import architectures as A

        size = meta["input"]["size"]
        if meta["architecture"] == "vgg16":
            self.model = A.build_vgg16(size, weights=None)[0]
        else:
            self.model = A.cnn_lstm_from_meta(meta)
        A.load_weights_npz(self.model, model_dir / "keras_weights_fp16.npz")

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, fmap = self.model(x.astype(np.float32), training=False)
        return np.asarray(logits), np.asarray(fmap)


# ----------------------------------------------------------------------------- predictor

class Predictor:
    model_name: str
    model_version: str

    def __init__(self, model_dir: Path, meta: dict, runtime: str, threads: int | None = None) -> None:
        self.model_dir = model_dir
        self.meta = meta
        self.model_name = meta["name"]
        self.runtime = runtime
        self.size = int(meta["input"]["size"])
        self.arch = meta["architecture"]
        self.crop_head = crops_head(meta)
        self.codec = codec_of(meta)
        self.temperature = float(meta["calibration"]["temperature"])
        self.gate = OODGate.load(model_dir / "ood.npz")
        self.image_check = ImageCheck.load(model_dir.parent, threads)
        self.model_version = served_version(meta["version"], self.image_check.meta if self.image_check else None)
        if self.image_check is None:
            _log.warning("no shared image check in %s: %s is served with its own gate only", model_dir.parent, self.model_name)
        self.backend = _KerasBackend(model_dir, meta) if runtime == "keras" else _OnnxBackend(model_dir, threads)
        if self.arch == "vgg16":
            # CAM needs only the head's BN + dense weights: the last six arrays of the keras weights
            z = np.load(model_dir / "keras_weights_fp16.npz")
            self.dense_kernel = gradcam.cam_kernel([z[f"arr_{i}"] for i in range(len(z.files) - 6, len(z.files))])

    @classmethod
    def load(cls, name: str | None = None, models_dir: str | Path | None = None, runtime: str = "onnx",
             threads: int | None = None) -> "Predictor":
        d = Path(models_dir) if models_dir else DEFAULT_MODELS_DIR
        name = name or default_model_name(d)
        model_dir = d / name
        meta = json.loads((model_dir / "metadata.json").read_text())
        if runtime not in ("onnx", "keras"):
            raise ValueError(f"runtime must be 'onnx' or 'keras', not {runtime!r}")
        return cls(model_dir, meta, runtime, threads)

    # -------------------------------------------------------------- internals
    def preprocess(self, grays: np.ndarray) -> np.ndarray:
        """(N, size, size) uint8 -> network input."""
        return vgg_input(grays) if self.arch == "vgg16" else unit_input(grays)

    def network_grays(self, pixels: np.ndarray) -> tuple[np.ndarray, Box]:
        """uint8 pixels -> (size x size network slice, the box of the original it shows)."""
        return network_grays(to_gray(pixels), self.size, self.crop_head, self.codec)

    def _heatmap(self, x: np.ndarray, fmap: np.ndarray, cls: int, gray: np.ndarray, box: Box) -> np.ndarray:
        """The class's map on the network's view, placed back into the full slice, clipped to the head."""
        if self.runtime == "keras":
            cam = gradcam.gradcam_tf(self.backend.model, x, cls)
        elif self.arch == "vgg16":
            cam = gradcam.cam_from_fmap(fmap, self.dense_kernel, cls)
        elif getattr(self.backend, "head", None) is not None:
            cam = gradcam.gradcam_fd(fmap, self.backend.run_head, cls)
        else:
            cam = gradcam.normalise(fmap.mean(axis=-1))  # last resort: activation energy
        return gradcam.clip_to_head(gradcam.place(cam, gray.shape, box), gray)

    def in_scope(self, stats: np.ndarray, fmap: np.ndarray, grays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(accepted, score) by the model's own gate and, where the models folder has one, the shared
        image check; the score is the larger of the two (above 1: refused)."""
        is_mri, score = self.gate.score(stats, fmap)
        if self.image_check is not None:
            shared_ok, shared_score = self.image_check.score(grays)
            is_mri, score = is_mri & shared_ok, np.maximum(score, shared_score)
        return is_mri, score

    def predict_batch(self, images: Sequence[np.ndarray], heatmaps: bool = True, batch_size: int = 32
                      ) -> list[SliceResult]:
        """Per-slice results for many images, batched through the network (evaluation, series)."""
        results: list[SliceResult] = []
        for start in range(0, len(images), batch_size):
            chunk = [to_uint8(np.asarray(p)) for p in images[start:start + batch_size]]
            stats = np.stack([image_stats(p) for p in chunk])
            full = [to_gray(p) for p in chunk]          # once per slice: the network view and the heat-map clip
            prepared = [self.network_grays(g) for g in full]
            grays = np.stack([g for g, _ in prepared])
            x = self.preprocess(grays)
            logits, fmap = self.backend(x)
            is_mri, score = self.in_scope(stats, fmap, full)
            probs = calibrate.softmax(logits, self.temperature)
            for i, p in enumerate(chunk):
                cls = int(probs[i].argmax())
                hm = self._heatmap(x[i], fmap[i], cls, full[i], prepared[i][1]) if heatmaps and is_mri[i] else None
                results.append(SliceResult(
                    probabilities={c: float(v) for c, v in zip(CLASSES, probs[i])},
                    label=CLASSES[cls] if is_mri[i] else None,
                    is_brain_mri=bool(is_mri[i]),
                    ood_score=float(score[i]),
                    heatmap=hm,
                ))
        return results

    # -------------------------------------------------------------- public API
    def predict_image(self, pixels: np.ndarray, heatmap: bool = True) -> SliceResult:
        return self.predict_batch([pixels], heatmaps=heatmap)[0]

    def predict_series(self, slices: Sequence[np.ndarray], heatmaps: bool = True) -> SeriesResult:
        if len(slices) == 0:
            raise ValueError("empty series")
        results = self.predict_batch(list(slices), heatmaps=heatmaps)
        result = aggregate(results, self.model_name, self.model_version)
        if self.image_check is None:
            return result
        # the stored record names the check that judged the slices, next to the model version
        return dataclasses.replace(result, aggregation=f"{result.aggregation} Image check: {self.image_check.version}.")


_CACHE: dict[tuple, Predictor] = {}
_LOCK = threading.Lock()


def get_predictor(name: str | None = None, models_dir: str | Path | None = None, runtime: str = "onnx",
                  threads: int | None = None) -> Predictor:
    """Loaded once per process (cache) — Celery workers call this per task."""
    d = Path(models_dir) if models_dir else DEFAULT_MODELS_DIR
    key = (name or default_model_name(d), str(d.resolve()), runtime, threads)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = Predictor.load(key[0], d, runtime, threads)
        return _CACHE[key]
