"""The image check: "is this slice like what the model was trained on?" (Django-free).

It answers "outside what the model was trained on", not "not an MRI": a rejected slice may be
a real brain MRI of a kind the training set lacks. Two stages, both cheap:
1. image statistics on the raw pixels (colour saturation, near-constant image, noise level,
   brightness, dark-background share), each with an accepted range fitted on the training images;
2. a feature-space detector on the network's own last-conv feature map: the Mahalanobis
   distance of the pooled features to the nearest class mean (shared covariance, shrunk toward
   the identity), rejected above a threshold set on the val_cal split. The map is globally
   average-pooled (pooling per quarter of the map was measured and caught fewer CT images).
Parameters live in a small ood.npz next to the model; `python -m inference.fit_scope DIR`
refits them for any artifact folder (docs/scope.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

STAT_NAMES = ("saturation", "std", "noise", "mean", "dark_fraction")


def image_stats(pixels: np.ndarray) -> np.ndarray:
    """Five statistics of a uint8 image (2-D or H×W×3) on a 128-px view (cheap, size independent)."""
    from PIL import Image

    a = np.asarray(pixels)
    rgb = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3]
    rgb = np.asarray(Image.fromarray(rgb.astype(np.uint8)).resize((128, 128), Image.BILINEAR), np.float32)
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    # saturation like HSV, only where the pixel is bright enough for hue to mean anything
    sat = np.where(mx > 30, (mx - mn) / np.maximum(mx, 1.0), 0.0)
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    std = float(gray.std())
    # noise: mean absolute 4-neighbour Laplacian relative to the image contrast
    lap = np.abs(4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:])
    noise = float(lap.mean() / (std + 1.0))
    return np.array([float(sat.mean()), std, noise, float(gray.mean()) / 255.0,
                     float((gray < 25).mean())], np.float32)


@dataclass
class OODGate:
    stat_lo: np.ndarray
    stat_hi: np.ndarray
    means: np.ndarray          # (classes, d) class means of pooled features
    precision: np.ndarray      # (d, d) inverse shared covariance
    threshold: float           # Mahalanobis² above this -> outside the training distribution

    # ------------------------------------------------------------------ fitting
    @staticmethod
    def fit_stat_ranges(stats: np.ndarray, q: float = 0.1, margin: float = 0.25
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Range [q-th, (100-q)-th percentile] widened by `margin`× its width on each side."""
        lo, hi = np.percentile(stats, q, axis=0), np.percentile(stats, 100 - q, axis=0)
        w = hi - lo
        return (lo - margin * w).astype(np.float32), (hi + margin * w).astype(np.float32)

    @staticmethod
    def fit_mahalanobis(features: np.ndarray, labels: np.ndarray, shrinkage: float = 0.1
                        ) -> tuple[np.ndarray, np.ndarray]:
        f = features.astype(np.float64)
        classes = np.unique(labels)
        means = np.stack([f[labels == c].mean(0) for c in classes])
        centred = f - means[np.searchsorted(classes, labels)]
        cov = centred.T @ centred / len(f)
        # shrink toward a scaled identity: 512-d features from a few thousand images are ill-conditioned
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / len(cov) * np.eye(len(cov))
        return means.astype(np.float32), np.linalg.inv(cov).astype(np.float32)

    # ------------------------------------------------------------------ scoring
    def mahalanobis(self, features: np.ndarray) -> np.ndarray:
        f = np.atleast_2d(features).astype(np.float32)
        d = f[:, None, :] - self.means[None]                       # (n, classes, d)
        # one BLAS product, then a row-wise dot: a three-operand einsum ran 15x slower at 1280-d
        m = np.einsum("ncd,ncd->nc", d @ self.precision, d)
        return m.min(axis=1)

    def stats_ok(self, stats: np.ndarray) -> np.ndarray:
        s = np.atleast_2d(stats)
        return np.all((s >= self.stat_lo) & (s <= self.stat_hi), axis=1)

    def score(self, stats: np.ndarray, fmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(in_scope, ood_score) for a batch of image statistics and (N, h, w, c) conv maps;
        ood_score = Mahalanobis² / threshold (> 1 means rejected by features; image-statistic
        failures are reported as max(score, 2))."""
        score = self.mahalanobis(pool_features(fmap)) / self.threshold
        ok_stats = self.stats_ok(stats)
        score = np.where(ok_stats, score, np.maximum(score, 2.0))
        return ok_stats & (score <= 1.0), score.astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, precision_dtype: type = np.float32) -> None:
        """fp16 precision halves a 1280-d gate's file; Mahalanobis² moves by well under 1 %."""
        np.savez_compressed(path, stat_lo=self.stat_lo, stat_hi=self.stat_hi, means=self.means,
                            precision=self.precision.astype(precision_dtype),
                            threshold=np.float32(self.threshold), stat_names=np.array(STAT_NAMES))

    @classmethod
    def load(cls, path: str | Path) -> "OODGate":
        z = np.load(path)
        return cls(z["stat_lo"], z["stat_hi"], z["means"], z["precision"].astype(np.float32), float(z["threshold"]))


def pool_features(fmap: np.ndarray) -> np.ndarray:
    """(N, h, w, c) conv map -> (N, c) global-average-pooled features; (N, c) passes through."""
    f = np.asarray(fmap, np.float32)
    return f.mean(axis=(1, 2)) if f.ndim == 4 else f
