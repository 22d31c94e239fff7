"""Would test-time mirroring or averaging with a second model help the default model?

    .venv/bin/python benchmarks/combine_check.py [--model NAME] [--second NAME --second-dir DIR]
                                                 [--data DIR]

Recomputes the grouped split (inference.data.make_split, the split's seed) and prints, for each
validation half, the accuracy of the model's argmax before the not-MRI gate:
- `plain`: the slice as served;
- `mirrored`: the slice flipped left-right;
- `flip_mean`: the mean of the two calibrated probability vectors (test-time augmentation);
- with `--second`, `second` and `pair_mean`: another exported model (e.g. one written by
  `python -m inference.export var/models/X var/export/X`, then `--second X --second-dir var/export`)
  and the mean of both models' calibrated probabilities.
Only val_cal may decide whether a variant is adopted; val_test is printed to report it. The model
card quotes the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def calibrated_probabilities(predictor, images: list[np.ndarray]) -> np.ndarray:
    """(N, classes) calibrated probabilities, as served (the gate's verdict is ignored)."""
    from inference.data import CLASSES

    return np.array([[r.probabilities[c] for c in CLASSES] for r in predictor.predict_batch(images, heatmaps=False)])


def main() -> None:
    from inference.data import Dataset, load_rgb, make_split
    from inference.predict import Predictor

    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--models-dir", help="the first model's folder of artifacts (default: the shipped ones)")
    parser.add_argument("--second")
    parser.add_argument("--second-dir")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "brain-tumor-mri" / "Training"))
    args = parser.parse_args()
    first = Predictor.load(args.model, args.models_dir)
    second = Predictor.load(args.second, args.second_dir) if args.second else None
    ds = Dataset.load(args.data)
    training = first.meta["training"]
    _, split, _ = make_split(ds, seed=training.get("split_seed", training["seed"]))
    report: dict = {"model": first.model_version, "second": second.model_version if second else None}
    for code, half in ((1, "val_cal"), (2, "val_test")):
        idx = np.nonzero(split == code)[0]
        images = [load_rgb(ds.samples[i].path) for i in idx]
        plain = calibrated_probabilities(first, images)
        mirrored = calibrated_probabilities(first, [np.ascontiguousarray(im[:, ::-1]) for im in images])
        variants = {"plain": plain, "mirrored": mirrored, "flip_mean": (plain + mirrored) / 2}
        if second is not None:
            variants["second"] = calibrated_probabilities(second, images)
            variants["pair_mean"] = (plain + variants["second"]) / 2
        truth = ds.labels[idx]
        report[half] = {name: round(float((p.argmax(axis=1) == truth).mean()), 4) for name, p in variants.items()}
        print(f"{half} (n={len(idx)}): " + ", ".join(f"{k} {v}" for k, v in report[half].items()))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
