"""python manage.py train_model --arch vgg16|cnn_lstm --data DIR [--weights ...] [--epochs N] [--init DIR]
[--crop head|none] [--out DIR]"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Train a classifier (grouped split, early stopping, temperature, OOD gate) and export it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--arch", choices=("vgg16", "cnn_lstm"), required=True)
        parser.add_argument("--data", required=True, help="Kaggle-layout folder (class subfolders)")
        parser.add_argument("--weights", default="hed", help="imagenet | hed | PATH (vgg16 only)")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--size", type=int)
        parser.add_argument("--variants", type=int, default=2, help="cached augmented variants (vgg16)")
        parser.add_argument("--seed", type=int, default=1234)
        parser.add_argument("--lr", type=float, help="peak learning rate")
        parser.add_argument("--crop", choices=("head", "none"), help="crop slices to the head's bounding box")
        parser.add_argument("--schedule", choices=("cosine", "plateau"), help="cnn_lstm learning-rate schedule")
        parser.add_argument("--widths", help="cnn_lstm: filters of the 4 encoder stages, e.g. 24,48,96,192")
        parser.add_argument("--init", help="cnn_lstm: continue from / warm-start with this training output "
                                           "(or artifact) folder")
        parser.add_argument("--out", help="artifact folder (default: <INFERENCE_MODELS_DIR>/<arch>)")
        parser.add_argument("--work", default="var/models", help="training outputs before export")
        parser.add_argument("--no-export", action="store_true", help="leave the artifact folder untouched")

    def handle(self, *args, **o) -> None:
        from inference.export import export
        from inference.train import parse_widths, train

        work = Path(o["work"]) / o["arch"]
        meta = train(o["arch"], o["data"], work, o["weights"], o["epochs"], o["size"], o["variants"], o["seed"],
                     cache_dir=Path(o["work"]) / "cache", log=lambda m: self.stdout.write(m), lr=o["lr"],
                     init=o["init"], crop_mode=o["crop"],
                     widths=parse_widths(o["widths"]),
                     schedule=o["schedule"])
        if not o["no_export"]:
            out = Path(o["out"]) if o["out"] else Path(settings.INFERENCE_MODELS_DIR) / o["arch"]
            export(work, out)
            self.stdout.write(f"exported to {out}")
        self.stdout.write(f"val_test accuracy {meta['metrics']['val_test']['accuracy']:.4f}")
