"""Benchmark: how often the image check (inference.ood) rejects each kind of input.

    python benchmarks/scope_check.py [--model cnn_lstm] [--models-dir DIR] [--json]

For every kind of input it prints the share of images the served model rejects as "outside
what the model was trained on". For real brain MRI of the training kind (val_cal, val_test) a
rejection is a false rejection; for everything else it is a true rejection (skull-stripped MRI
and the DWI series are real brain MRI the model never saw: there a rejection is the honest
answer, an acceptance a risk). The fixtures and what they stand for: benchmarks/scope_fixtures.py.
Needs ../shared/data and scikit-image.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import scope_fixtures as F  # noqa: E402
from inference.data import load_rgb  # noqa: E402
from inference.fit_scope import split_parts  # noqa: E402
from inference.predict import Predictor  # noqa: E402

DWI = REPO.parent / "shared" / "data" / "dicom" / "brain-dwi-sagittal-48"
KINDS = (
    ("val_cal", "brain MRI, val_cal (chose the thresholds)", "false"),
    ("val_test", "brain MRI, val_test (held out)", "false"),
    ("skull_stripped", "skull-stripped brain MRI (val_test slices, skull masked)", "-"),
    ("dwi_b0", "real sagittal DWI b=0 series (48 slices, header rule excludes it)", "-"),
    ("other_mr", "MR of other body parts (synthetic abdomen/knee proxies)", "true"),
    ("ct", "CT (synthetic head/body + Shepp-Logan phantom)", "true"),
    ("radiograph", "radiograph (synthetic chest)", "true"),
    ("ultrasound", "ultrasound (synthetic fan + speckle)", "true"),
    ("photos", "photos (scikit-image samples, faces)", "true"),
    ("documents", "documents (rendered pages, forms)", "true"),
    ("noise", "noise and blank frames", "true"),
)


def dwi_slices() -> list[np.ndarray]:
    import pydicom

    from scans.dicom_pixels import apply_window, auto_window, modality_values

    out = []
    for path in sorted(DWI.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        values = modality_values(ds, ds.pixel_array)
        out.append(apply_window(values, *auto_window(values)))
    return out


def inputs(predictor: Predictor) -> dict[str, list[np.ndarray]]:
    root = Path(predictor.meta["data"]["root"])
    if not root.is_dir():
        root = REPO.parent / "shared" / "data" / "brain-tumor-mri" / "Training"
    parts = split_parts(predictor.model_dir, root)
    images = {part: [load_rgb(p) for p, _ in parts[part]] for part in ("val_cal", "val_test")}
    images["skull_stripped"] = F.skull_stripped([p for p, _ in parts["val_test"]])
    images["dwi_b0"] = dwi_slices()
    images.update({name: make(0) for name, make in F.SYNTHETIC.items()})
    return images


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--models-dir")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    predictor = Predictor.load(a.model, a.models_dir)
    t0 = time.perf_counter()
    rows = []
    for key, images in inputs(predictor).items():
        results = predictor.predict_batch(images, heatmaps=False)
        rejected = sum(not r.is_brain_mri for r in results)
        label, kind = next((d, k) for n, d, k in KINDS if n == key)
        rows.append({"input": key, "description": label, "n": len(images), "rejected": rejected,
                     "rate": rejected / len(images), "rejection_is": kind})
    print(f"model {predictor.model_name} {predictor.model_version}, "
          f"{time.perf_counter() - t0:.0f} s")
    print("| input | n | rejected | rate | a rejection is |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['description']} | {r['n']} | {r['rejected']} | {100 * r['rate']:.1f} % | {r['rejection_is']} |")
    if a.json:
        print(json.dumps({"model": predictor.model_version, "rows": rows}))


if __name__ == "__main__":
    main()
