"""python manage.py benchmark_model [--model NAME ...] --json"""
from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Latency (p50/p95), batched throughput, load time and peak RSS of each shipped model."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", action="append", help="limit to these artifact names")
        parser.add_argument("--runtime", choices=("onnx", "keras"), default="onnx")
        parser.add_argument("--json", action="store_true", help="last stdout line: a JSON list")

    def handle(self, *args, **o) -> None:
        from inference.benchmark import run_all

        res = run_all(settings.INFERENCE_MODELS_DIR, o["model"], o["runtime"])
        for r in res:
            self.stdout.write(" ".join(f"{k}={v}" for k, v in r.items()))
        if o["json"]:
            self.stdout.write(json.dumps(res))
