"""Out-of-domain check: what each shipped model says about a real DICOM series.

    .venv/bin/python benchmarks/series_check.py [--folder PATH] [--models-dir DIR]

Default folder: ../shared/data/dicom/brain-dwi-sagittal-48 (a sagittal DWI b=0 series of a brain
with no known tumour; the models never saw DWI or this scanner). Every file is read as an upload
is (scans.imaging.load_display_pixels: validation, default window), then predicted as one series.
Prints, per model, the series label and confidence, how many slices the gate rejected and the
per-slice label counts, then one JSON line. The model card's "Known failures" quotes it.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", default=str(REPO.parent / "shared" / "data" / "dicom" / "brain-dwi-sagittal-48"))
    parser.add_argument("--models-dir", help="artifact folder (default: inference/artifacts)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")
    import django

    django.setup()
    from inference.predict import DEFAULT_MODELS_DIR, Predictor
    from scans.ingest_files import natural_key
    from scans.imaging import load_display_pixels

    folder = Path(args.folder)
    if not folder.is_dir():
        sys.exit(f"no folder {folder} (../shared absent?)")
    pixels = []
    for f in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        try:
            pixels.append(load_display_pixels(f))
        except Exception as exc:  # DICOMDIR, non-image objects: not slices
            print(f"skipped {f.name}: {exc}")
    models_dir = Path(args.models_dir) if args.models_dir else DEFAULT_MODELS_DIR
    report = {"folder": str(folder), "slices": len(pixels), "models": {}}
    for name in sorted(p.name for p in models_dir.iterdir() if (p / "metadata.json").exists()):
        pred = Predictor.load(name, models_dir)
        res = pred.predict_series(pixels, heatmaps=False)
        counts = collections.Counter(s.label or "not-MRI" for s in res.slices)
        report["models"][name] = {"version": pred.model_version, "series_label": res.label,
                                  "confidence": round(res.confidence, 3), "slice_labels": dict(counts)}
        print(f"{name} ({pred.model_version}): series {res.label} ({res.confidence:.2f}), slices {dict(counts)}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
