"""Speed of each shipped model, one fresh subprocess per model so load time and peak RSS are honest.

    python -m inference.benchmark [--models-dir DIR] [--model NAME ...] [--json]

Per model: load time (imports + session creation, from a cold interpreter), p50/p95 latency of
predict_image on one slice (gate + calibrated probabilities + heat map), batched throughput of
predict_batch (batch 32, no heat maps) and peak RSS of the worker process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

T0 = time.perf_counter()  # before any heavy import: load time counts the imports a worker pays


def _slices(n: int) -> list:
    """Real training slices when ../shared is present (the gate then runs its normal path), else
    a synthetic MRI-like disc."""
    import numpy as np

    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "brain-tumor-mri" / "Training"
    if root.is_dir():
        from inference.data import list_samples, load_rgb

        samples = list_samples(root)
        step = max(1, len(samples) // n)
        return [load_rgb(s.path)[..., 0] for s in samples[::step][:n]]
    yy, xx = np.mgrid[:224, :224]
    disc = ((yy - 112) ** 2 + (xx - 112) ** 2 < 90 ** 2) * 120
    return [np.clip(disc + np.random.default_rng(i).normal(0, 10, disc.shape), 0, 255).astype(np.uint8)
            for i in range(n)]


def child(name: str, models_dir: str | None, runtime: str, reps: int = 40, batch: int = 32) -> dict:
    import resource

    import numpy as np

    from inference.predict import Predictor

    pred = Predictor.load(name, models_dir, runtime=runtime)
    load_s = time.perf_counter() - T0
    imgs = _slices(batch)
    for img in imgs[:3]:
        pred.predict_image(img)  # warm-up: first runs allocate buffers
    lat = []
    for i in range(reps):
        t = time.perf_counter()
        pred.predict_image(imgs[i % len(imgs)], heatmap=True)
        lat.append(time.perf_counter() - t)
    pred.predict_batch(imgs, heatmaps=False, batch_size=batch)
    rounds = 3
    t = time.perf_counter()
    for _ in range(rounds):
        pred.predict_batch(imgs, heatmaps=False, batch_size=batch)
    tput = rounds * len(imgs) / (time.perf_counter() - t)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "model": name, "version": pred.model_version, "runtime": runtime,
        "onnx_precision": pred.meta.get("files", {}).get("onnx_precision"),
        "input_size": pred.size, "threads": os.cpu_count(),
        "load_s": round(load_s, 3),
        "p50_ms": round(1000 * float(np.percentile(lat, 50)), 2),
        "p95_ms": round(1000 * float(np.percentile(lat, 95)), 2),
        "batched_slices_per_s": round(tput, 1), "batch_size": batch,
        "peak_rss_mb": round(rss_mb, 1),
    }


def shipped_models(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if (p / "metadata.json").exists())


def run_all(models_dir: str | Path | None = None, names: list[str] | None = None, runtime: str = "onnx",
            timeout: int = 600) -> list[dict]:
    from inference.predict import DEFAULT_MODELS_DIR

    d = Path(models_dir) if models_dir else DEFAULT_MODELS_DIR
    out = []
    for name in names or shipped_models(d):
        cmd = [sys.executable, "-m", "inference.benchmark", "--child", name, "--models-dir", str(d),
               "--runtime", runtime]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0:
            out.append({"model": name, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir")
    ap.add_argument("--model", action="append")
    ap.add_argument("--runtime", default="onnx", choices=("onnx", "keras"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.models_dir, a.runtime)))
        return
    res = run_all(a.models_dir, a.model, a.runtime)
    for r in res:
        print(" ".join(f"{k}={v}" for k, v in r.items()))
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
