"""python manage.py train_model --arch vgg16|cnn_lstm --data DIR [options of python -m inference.train]
[--out DIR] [--work DIR] [--no-export]"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Train a classifier (grouped split, calibration, scope gate) and export it as the served artifact."

    def add_arguments(self, parser) -> None:
        from inference.train import add_arguments

        add_arguments(parser)   # one definition of the training options (python -m inference.train)
        parser.add_argument("--out", help="artifact folder (default: <INFERENCE_MODELS_DIR>/<arch>)")
        parser.add_argument("--work", default="var/models", help="training outputs before export")
        parser.add_argument("--no-export", action="store_true", help="leave the artifact folder untouched")

    def handle(self, *args, **o) -> None:
        from argparse import Namespace

        from inference.export import export
        from inference.train import run

        work = Path(o["work"]) / o["arch"]
        if not o["cache_dir"]:
            o["cache_dir"] = str(Path(o["work"]) / "cache")
        meta = run(Namespace(**o), work, log=lambda m: self.stdout.write(m))
        if o["fit_only"]:
            self.stdout.write(f"fit written to {work}; complete it with: python -m inference.train finalize {work} "
                              f"--data DIR")
            return
        if not o["no_export"]:
            out = Path(o["out"]) if o["out"] else Path(settings.INFERENCE_MODELS_DIR) / o["arch"]
            export(work, out)
            self.stdout.write(f"exported to {out}")
        self.stdout.write(f"val_test accuracy {meta['metrics']['val_test']['accuracy']:.4f}")
