"""Refit the image check (inference.ood) of an artifact folder from the model's own features.

    python -m inference.fit_scope ARTIFACT_DIR [--data ROOT] [--shrinkage 0.01] [--quantile 99.5] [--margin 1.05] [--dry-run]

Runs the served model (ONNX) over the training part of the grouped split (every image not in
split.json's val_cal or val_test) and over val_cal; fits the image-statistic ranges and the class
means + shared covariance on the training part, sets the Mahalanobis threshold at `margin` × the
`quantile`-th percentile of val_cal (with --out-of-group: the larger of that and the percentile of
the training images scored by fits without their near-duplicate group, group 5-fold), and writes ARTIFACT_DIR/ood.npz (and the "ood" block of its
metadata.json). val_test is never read. Reproducible: fixed fold seed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from inference.data import CLASSES, GROUP_THRESHOLD, GROUP_THUMB, list_samples, load_rgb, mirrored_vectors, near_duplicate_groups, \
    thumbnail_vectors, to_gray, to_uint8
from inference.ood import OODGate, image_stats, pool_features

DEFAULT_SHRINKAGE = 0.01
DEFAULT_QUANTILE = 99.5
DEFAULT_MARGIN = 1.05


def network_outputs(predictor, images: Sequence[np.ndarray], batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(image statistics, conv maps) of many images through the served network."""
    stats, maps = [], []
    for start in range(0, len(images), batch):
        chunk = [to_uint8(np.asarray(x)) for x in images[start:start + batch]]
        stats.append(np.stack([image_stats(x) for x in chunk]))
        grays = np.stack([predictor.network_grays(x)[0] for x in chunk])
        _, fmap = predictor.backend(predictor.preprocess(grays))
        maps.append(np.asarray(fmap, np.float32))
    return np.concatenate(stats), np.concatenate(maps)


def split_parts(model_dir: Path, root: Path) -> dict[str, list[tuple[Path, int]]]:
    """train / val_cal / val_test as (path, class index), from the artifact's split.json."""
    split = json.loads((model_dir / "split.json").read_text())
    held = set(split["val_cal"]) | set(split["val_test"])
    train = [(s.path, s.label) for s in list_samples(root) if f"{s.path.parent.name}/{s.path.name}" not in held]
    parts = {"train": train}
    for part in ("val_cal", "val_test"):
        parts[part] = [(root / rel, CLASSES.index(rel.split("/")[0])) for rel in split[part]]
    return parts


def near_duplicate_group_ids(images: Sequence[np.ndarray]) -> np.ndarray:
    """Group ids of near-duplicate images (the grouping of inference.data.make_split)."""
    vecs = thumbnail_vectors([to_gray(to_uint8(np.asarray(x))) for x in images], GROUP_THUMB)
    return near_duplicate_groups(vecs, GROUP_THRESHOLD, flipped=mirrored_vectors(vecs, GROUP_THUMB))


def out_of_group_distances(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, shrinkage: float,
                           folds: int = 5, seed: int = 0) -> np.ndarray:
    """Mahalanobis² of every training image to class means and covariance fitted WITHOUT its
    near-duplicate group (group k-fold): where a slice of a scan the model never saw lands. val_cal
    alone gave a threshold that rejected 2 % of val_test for the v2 encoder (its groups differ)."""
    uniq = np.unique(groups)
    fold = np.random.default_rng(seed).integers(0, folds, len(uniq))[np.searchsorted(uniq, groups)]
    d2 = np.full(len(features), np.nan)
    for k in range(folds):
        held = fold == k
        if held.all() or not held.any():   # one group holds everything: no out-of-group estimate
            continue
        means, precision = OODGate.fit_mahalanobis(features[~held], labels[~held], shrinkage)
        d2[held] = OODGate(np.zeros(5), np.zeros(5), means, precision, 1.0).mahalanobis(features[held])
    return d2


def fit(predictor, train: list[tuple[Path, int]], val_cal: list[tuple[Path, int]], shrinkage: float = DEFAULT_SHRINKAGE, quantile: float = DEFAULT_QUANTILE, margin: float = DEFAULT_MARGIN,
        out_of_group: bool = False) -> tuple[OODGate, dict]:
    """The gate of a served model, on its own last-conv features (fit_gate)."""
    return fit_gate(lambda images: network_outputs(predictor, images), train, val_cal, shrinkage, quantile,
                    margin, out_of_group)


Outputs = Callable[[Sequence[np.ndarray]], tuple[np.ndarray, np.ndarray]]


def fit_gate(outputs: Outputs, train: list[tuple[Path, int]], val_cal: list[tuple[Path, int]],
             shrinkage: float = DEFAULT_SHRINKAGE, quantile: float = DEFAULT_QUANTILE, margin: float = DEFAULT_MARGIN,
             out_of_group: bool = False, features: str = "GAP last-conv features") -> tuple[OODGate, dict]:
    """Class means and covariance on all training features; threshold = margin x the `quantile`-th
    percentile of val_cal, or with `out_of_group` the larger of that and the out-of-group training
    percentile (looser: fewer false refusals of unseen scans, fewer catches of other images).
    `outputs(images)` gives (image statistics, features or conv maps) for a list of images."""
    images = [load_rgb(p) for p, _ in train]
    stats_tr, maps_tr = outputs(images)
    labels = np.array([y for _, y in train])
    lo, hi = OODGate.fit_stat_ranges(stats_tr)
    feats_tr = pool_features(maps_tr)
    means, precision = OODGate.fit_mahalanobis(feats_tr, labels, shrinkage)
    gate = OODGate(lo, hi, means, precision, 1.0)
    stats_cal, maps_cal = outputs([load_rgb(p) for p, _ in val_cal])
    d2 = gate.mahalanobis(pool_features(maps_cal))
    oof = out_of_group_distances(feats_tr, labels, near_duplicate_group_ids(images), shrinkage) \
        if out_of_group else np.full(1, np.nan)
    oof_q = float(np.nanpercentile(oof, quantile)) if np.isfinite(oof).any() else float("nan")
    gate.threshold = float(np.nanmax([np.percentile(d2, quantile), oof_q]) * margin)
    _, score = gate.score(stats_cal, maps_cal)
    report = {
        "file": "ood.npz",
        "mahalanobis_threshold": gate.threshold,
        "threshold_rule": (f"{margin} x the larger {quantile}th percentile of val_cal and of out-of-group training "
                           "Mahalanobis^2 (group 5-fold; " if out_of_group else
                           f"{margin} x {quantile}th percentile of val_cal Mahalanobis^2 (")
                          + f"min over class means, shared covariance shrunk {shrinkage:g} to identity) on "
                          f"{features}; fitted by inference.fit_scope",
        "val_cal_percentile": float(np.percentile(d2, quantile)),
        "out_of_group_percentile": oof_q,
        "image_stat_ranges": {n: [float(a), float(b)] for n, a, b in zip(
            ("saturation", "std", "noise", "mean", "dark_fraction"), lo, hi)},
        "val_cal_rejected": float((score > 1).mean()),
        "n_train": len(train),
        "n_val_cal": len(val_cal),
    }
    return gate, report


def refit(model_dir: Path, root: Path | None = None, shrinkage: float = DEFAULT_SHRINKAGE,
          quantile: float = DEFAULT_QUANTILE, margin: float = DEFAULT_MARGIN, write: bool = True,
          out_of_group: bool = False) -> dict:
    """Fit the gate of an artifact folder and (with `write`) save ood.npz and metadata.json's ood block.
    A folder without ood.npz yet (a fresh export) gets an accept-all placeholder first, so that the
    predictor loads; the fit itself never consults the gate."""
    from inference.predict import Predictor

    model_dir = Path(model_dir).resolve()
    if not (model_dir / "ood.npz").exists():
        OODGate(np.full(5, -np.inf), np.full(5, np.inf), np.zeros((len(CLASSES), 1)), np.eye(1),
                np.inf).save(model_dir / "ood.npz")
    predictor = Predictor.load(model_dir.name, model_dir.parent)
    parts = split_parts(model_dir, Path(root or predictor.meta["data"]["root"]))
    gate, report = fit(predictor, parts["train"], parts["val_cal"], shrinkage, quantile, margin, out_of_group)
    if write:
        gate.save(model_dir / "ood.npz")
        meta_path = model_dir / "metadata.json"
        meta = json.loads(meta_path.read_text())
        meta["ood"] = {k: v for k, v in report.items() if k not in ("n_train", "n_val_cal")}
        meta_path.write_text(json.dumps(meta, indent=2))
    return report


def main(argv: list[str] | None = None) -> None:

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("artifact_dir")
    ap.add_argument("--data", help="training images (Kaggle layout); default: metadata.json data.root")
    ap.add_argument("--shrinkage", type=float, default=DEFAULT_SHRINKAGE)
    ap.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE)
    ap.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    ap.add_argument("--dry-run", action="store_true", help="print the fit, write nothing")
    ap.add_argument("--out-of-group", action="store_true",
                    help="threshold also >= the out-of-group training percentile (used for cnn_lstm_v2)")
    a = ap.parse_args(argv)
    report = refit(Path(a.artifact_dir), Path(a.data) if a.data else None, a.shrinkage, a.quantile, a.margin,
                   write=not a.dry_run, out_of_group=a.out_of_group)
    print(json.dumps(report, indent=1))
    if not a.dry_run:
        print(f"wrote {a.artifact_dir}/ood.npz and the ood block of its metadata.json")


if __name__ == "__main__":
    main()
