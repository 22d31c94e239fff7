"""inference.fit_scope: the image check is fitted on the training part, its threshold set on
val_cal, and it then rejects what lies far from the training features. A stand-in network whose
"features" are simple image statistics keeps this fast and exact."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.data import to_gray
from inference.fit_scope import fit, network_outputs
from inference.ood import pool_features


class _Network:
    """(N, 2, 2, 3) 'conv map' per image: the mean brightness of each quadrant, its spread, a bias."""

    def network_grays(self, pixels: np.ndarray):
        return to_gray(pixels), None

    def preprocess(self, grays: np.ndarray) -> np.ndarray:
        return grays.astype(np.float32) / 255.0

    def backend(self, x: np.ndarray):
        n, h, w = x.shape
        quads = x.reshape(n, 2, h // 2, 2, w // 2)
        fmap = np.stack([quads.mean(axis=(2, 4)), quads.std(axis=(2, 4)), np.ones((n, 2, 2))], axis=-1)
        return np.zeros((n, 4)), fmap


def _images(tmp_path, name: str, n: int, level: float, rng) -> list[tuple]:
    out = []
    for i in range(n):
        yy, xx = np.mgrid[:32, :32]
        head = ((yy - 16) ** 2 + (xx - 16) ** 2 < 12 ** 2) * (level + rng.normal(0, 6))
        pixels = np.clip(head + rng.normal(0, 8, (32, 32)) + 20, 0, 255).astype(np.uint8)
        path = tmp_path / f"{name}{i}.png"
        Image.fromarray(pixels).save(path)
        out.append((path, i % 2))
    return out


def test_threshold_is_set_on_val_cal_and_far_features_are_rejected(tmp_path):
    rng = np.random.default_rng(0)
    train = _images(tmp_path, "train", 120, 120, rng)
    val_cal = _images(tmp_path, "cal", 60, 120, rng)
    net = _Network()
    gate, report = fit(net, train, val_cal, shrinkage=0.01, quantile=99.5, margin=1.05)

    stats_cal, maps_cal = network_outputs(net, [np.asarray(Image.open(p)) for p, _ in val_cal])
    d2 = gate.mahalanobis(pool_features(maps_cal))
    assert gate.threshold == pytest.approx(1.05 * np.percentile(d2, 99.5), rel=1e-5)
    assert report["mahalanobis_threshold"] == pytest.approx(gate.threshold)
    assert report["val_cal_rejected"] <= 0.02 and report["n_train"] == 120

    # The same "head" moved off-centre: ordinary image statistics, features far from training.
    rng2 = np.random.default_rng(1)
    yy, xx = np.mgrid[:32, :32]
    corner = np.clip(((yy - 12) ** 2 + (xx - 12) ** 2 < 12 ** 2) * 120.0 + rng2.normal(0, 8, (32, 32)) + 20, 0, 255)
    stats, maps = network_outputs(net, [corner.astype(np.uint8)])
    ok, score = gate.score(stats, maps)
    assert gate.stats_ok(stats)[0] and not ok[0] and score[0] > 1  # rejected by the feature distance
    ok, _ = gate.score(*network_outputs(net, [np.asarray(Image.open(val_cal[0][0]))]))
    assert ok[0]


def test_out_of_group_distances_score_each_group_with_a_fit_that_never_saw_it():
    """A tight cluster that is one near-duplicate group lies far once its group is held out."""
    from inference.fit_scope import out_of_group_distances

    rng = np.random.default_rng(0)
    common = rng.normal(0, 1, (200, 3))
    odd = rng.normal(0, 0.05, (10, 3)) + np.array([4.0, 0, 0])     # one scan, ten near-identical slices
    feats = np.vstack([common, odd])
    labels = np.zeros(len(feats), int)
    groups = np.concatenate([np.arange(200), np.full(10, 999)])
    held_out = out_of_group_distances(feats, labels, groups, shrinkage=0.01)
    from inference.ood import OODGate

    means, precision = OODGate.fit_mahalanobis(feats, labels, 0.01)
    in_sample = OODGate(np.zeros(5), np.zeros(5), means, precision, 1.0).mahalanobis(feats)
    assert held_out[200:].min() > in_sample[200:].max()       # the group's own slices no longer vouch for it
