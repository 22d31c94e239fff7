"""The shared image check: is a slice like the brain MRI of the training set, judged on ImageNet
features (Django-free, no TensorFlow at serving time).

Each model's own gate (inference.ood) reads that model's last conv map. Fine-tuned features forget
what is not a brain MRI: the v2 CNN-LSTM's 128-d map no longer told synthetic CT or MR of other body
parts from brain MRI (0 % refused). This check is the same for every model: the ImageNet
EfficientNet-Lite0 encoder, never fine-tuned, pooled to 1280 features, and a Mahalanobis distance to
the class means of the training slices (shared covariance shrunk toward the identity), with the
threshold set on held-out slices. A slice is classified only when both checks accept it.

Files (written by `python -m inference.fit_image_check`): <models_dir>/image_check/{encoder.onnx,
gate.npz, image_check.json}. A models folder without them serves with the model's own gate only.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inference.data import network_grays, to_gray, to_uint8, unit_input
from inference.ood import OODGate
from inference.sessions import cpu_session

FOLDER = "image_check"
ENCODER_FILE = "encoder.onnx"
GATE_FILE = "gate.npz"
META_FILE = "image_check.json"
SIZE = 224


def encoder_view(gray: np.ndarray) -> np.ndarray:
    """uint8 grey slice -> the encoder's view: the head crop at SIZE x SIZE (no codec)."""
    return network_grays(gray, SIZE, crop_head=True)[0]


class ImageEncoder:
    """encoder.onnx on ONNX Runtime: (N, SIZE, SIZE) uint8 encoder views -> (N, 1280) features."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.sess = cpu_session(path, threads)
        self.input_name = self.sess.get_inputs()[0].name

    def features(self, views: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {self.input_name: unit_input(views)})[0]

    def features_of(self, images: list[np.ndarray], batch: int = 8) -> np.ndarray:
        """Any uint8 images (grey or RGB) -> (N, 1280), in batches of `batch`. Small batches cost no
        speed and bound the fp32 activations: 32 slices at once peaked at 518 MB, 8 at a time at
        216 MB, both 5.4-5.6 ms a slice on 2 cores (2026-12-05)."""
        views = [encoder_view(to_gray(to_uint8(np.asarray(x)))) for x in images]
        return np.concatenate([self.features(np.stack(views[i:i + batch])) for i in range(0, len(views), batch)])


def read_check_meta(models_dir: str | Path) -> dict | None:
    """image_check.json of a models folder, or None when the folder has no fitted check."""
    folder = Path(models_dir) / FOLDER
    if not (folder / GATE_FILE).exists():
        return None
    return json.loads((folder / META_FILE).read_text())


def check_tag(meta: dict) -> str:
    """A fitted check's short name in a served version: "ic-" and the last part of its version
    (the digest of its gate file, `inference.fit_image_check`)."""
    return "ic-" + meta["version"].rsplit("-", 1)[-1]


class ImageCheck:
    """The encoder and its fitted gate; loaded once per predictor."""

    def __init__(self, encoder: ImageEncoder, gate: OODGate, meta: dict) -> None:
        self.encoder, self.gate, self.meta = encoder, gate, meta
        self.version = meta["version"]

    @classmethod
    def load(cls, models_dir: str | Path, threads: int | None = None) -> "ImageCheck | None":
        """The check of a models folder, or None when the folder has none."""
        meta = read_check_meta(models_dir)
        if meta is None:
            return None
        folder = Path(models_dir) / FOLDER
        return cls(ImageEncoder(folder / ENCODER_FILE, threads), OODGate.load(folder / GATE_FILE), meta)

    def score(self, grays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(accepted, score) for grey slices; score = Mahalanobis² / threshold, above 1 refused."""
        score = self.gate.mahalanobis(self.encoder.features_of(grays)) / self.gate.threshold
        return score <= 1.0, score.astype(np.float32)
