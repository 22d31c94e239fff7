"""python manage.py evaluate_model DIR [--model NAME] [--plots OUTDIR] --json"""
from __future__ import annotations

import json
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Evaluate a shipped model on a Kaggle-layout folder; a not-MRI rejection counts as wrong."

    def add_arguments(self, parser) -> None:
        parser.add_argument("data_dir")
        parser.add_argument("--model", help="artifact name (default: default.txt)")
        parser.add_argument("--runtime", choices=("onnx", "keras"), default="onnx")
        parser.add_argument("--plots", help="write confusion_matrix.png and reliability_diagram.png here")
        parser.add_argument("--json", action="store_true", help="last stdout line: one JSON object")

    def handle(self, *args, **o) -> None:
        from inference.evaluate import evaluate, format_report

        r = evaluate(o["data_dir"], o["model"] or getattr(settings, "INFERENCE_DEFAULT_MODEL", "") or None,
                     settings.INFERENCE_MODELS_DIR, o["runtime"], o["plots"], progress=sys.stderr)
        self.stdout.write(format_report(r))
        if o["plots"]:
            self.stdout.write("plots: " + ", ".join(r["plots"]))
        if o["json"]:
            keys = ("n", "accuracy", "macro_f1", "ece", "ms_per_image", "model", "rejected_as_not_mri")
            self.stdout.write(json.dumps({k: r[k] for k in keys} | {"per_class": r["per_class"],
                                                                   "confusion_matrix": r["confusion_matrix"]}))
