"""The one way serving opens an ONNX Runtime session (Django-free)."""
from __future__ import annotations

import os
from pathlib import Path


def cpu_session(path: str | Path, threads: int | None = None):
    """A CPU session with `threads` intra-op threads (default: all cores) that never spin-waits.

    A predictor runs two or three sessions in turn (model, head, shared image check) on the same
    cores; threads left spinning in one stole the cores from the next (measured on 2 cores: the v1
    model with the image check 83 ms a slice with spinning, 35 ms without)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
