"""python manage.py classify FILE [--model NAME] [--heatmap-out PNG] --json

JPEG/PNG are read in colour (the not-an-MRI gate looks at colour); DICOM goes through
scans.imaging.load_display_pixels (default window, same validation as an upload)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def read_pixels(path: Path) -> np.ndarray:
    head = path.read_bytes()[:132]
    if path.suffix.lower() not in (".dcm", ".dicom") and head[128:132] != b"DICM":
        try:
            from inference.data import load_rgb

            return load_rgb(path)
        except OSError:
            pass  # not a raster PIL knows: maybe a DICOM without preamble
    try:
        from scans.imaging import load_display_pixels
    except ImportError as exc:  # pragma: no cover - scans app is part of the project
        raise CommandError(f"cannot read DICOM: {exc}") from exc
    return load_display_pixels(path)


class Command(BaseCommand):
    help = "Classify one slice: label, calibrated probabilities, brain-MRI gate, Grad-CAM heat map PNG."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--model", help="artifact name (default: default.txt)")
        parser.add_argument("--runtime", choices=("onnx", "keras"),
                            default=os.environ.get("INFERENCE_RUNTIME", "onnx"))
        parser.add_argument("--heatmap-out", help="PNG path for the heat-map overlay (default: a temp dir)")
        parser.add_argument("--json", action="store_true", help="last stdout line: one JSON object")

    def handle(self, *args, **o) -> None:
        from inference.gradcam import heatmap_to_png
        from inference.predict import get_predictor

        path = Path(o["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            pixels = read_pixels(path)
        except Exception as exc:  # any decoder failure is a user-facing error, not a traceback
            raise CommandError(f"cannot read {path}: {exc}") from exc
        model = o["model"] or getattr(settings, "INFERENCE_DEFAULT_MODEL", "") or None
        pred = get_predictor(model, settings.INFERENCE_MODELS_DIR, runtime=o["runtime"])
        res = pred.predict_image(pixels, heatmap=True)
        heat_path = None
        if res.heatmap is not None:
            heat_path = Path(o["heatmap_out"]) if o["heatmap_out"] else \
                Path(tempfile.mkdtemp(prefix="classify_")) / f"{path.stem}_heatmap.png"
            heat_path.parent.mkdir(parents=True, exist_ok=True)
            heat_path.write_bytes(heatmap_to_png(res.heatmap, base=pixels))
        self.stdout.write(f"{path.name}: {res.label or 'no class: outside what the model was trained on'} "
                          f"({', '.join(f'{k} {v:.3f}' for k, v in res.probabilities.items())}), "
                          f"ood_score {res.ood_score:.3f}, model {pred.model_name}@{pred.model_version}")
        if o["json"]:
            self.stdout.write(json.dumps({
                "label": res.label, "probabilities": res.probabilities, "is_brain_mri": res.is_brain_mri,
                "heatmap": str(heat_path) if heat_path else None, "ood_score": res.ood_score,
                "model": pred.model_name, "model_version": pred.model_version,
            }))
