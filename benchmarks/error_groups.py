"""How the default model's validation errors fall on near-duplicate groups.

    .venv/bin/python benchmarks/error_groups.py [--model NAME] [--data DIR]

Recomputes the grouped split (inference.data.make_split, the training seed), predicts both
validation halves and prints, per half: images, errors, groups, groups with an error, the largest
error groups (errors / group size, with their files) and the mean per-group accuracy (every group
weighs the same, so a large group of near-identical slices cannot dominate). A rejected slice counts
as wrong, as in evaluate_model. The model card quotes it.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from inference.data import CLASSES, Dataset, load_rgb, make_split
    from inference.predict import Predictor

    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "brain-tumor-mri" / "Training"))
    args = parser.parse_args()
    pred = Predictor.load(args.model)
    ds = Dataset.load(args.data)
    groups, split, _ = make_split(ds, seed=pred.meta["training"]["seed"])
    report = {"model": pred.model_version}
    for code, half in ((1, "val_cal"), (2, "val_test")):
        idx = np.nonzero(split == code)[0]
        res = pred.predict_batch([load_rgb(ds.samples[i].path) for i in idx], heatmaps=False)
        guess = np.array([CLASSES.index(r.label) if r.label else -1 for r in res])
        wrong = guess != ds.labels[idx]
        g = groups[idx]
        size = collections.Counter(g.tolist())
        errs = collections.Counter(g[wrong].tolist())
        worst = []
        for gid, n_err in errs.most_common(3):
            members = np.nonzero(g == gid)[0]          # positions within this half
            worst.append({"errors": n_err, "size": size[gid],
                          "files": [f"{ds.samples[idx[k]].path.parent.name}/{ds.samples[idx[k]].path.name}"
                                    for k in members],
                          "predicted": sorted({str(res[k].label) for k in members})})
        report[half] = {"n": int(len(idx)), "errors": int(wrong.sum()), "groups": len(size),
                        "groups_with_errors": len(errs),
                        "mean_group_accuracy": round(float(np.mean([1 - errs.get(k, 0) / size[k] for k in size])), 4),
                        "worst_groups": worst}
        r = report[half]
        print(f"{half}: {r['errors']}/{r['n']} wrong, in {r['groups_with_errors']} of {r['groups']} groups; "
              f"mean per-group accuracy {r['mean_group_accuracy']}; worst: "
              + "; ".join(f"{w['errors']}/{w['size']} -> {w['predicted']}" for w in worst))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
