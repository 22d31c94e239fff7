"""The classifier a worker uses, configured from the Django settings."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from django.conf import settings

from inference import predict

log = logging.getLogger(__name__)

_PREDICTORS_SEEN: set[int] = set()


def _models_dir() -> Path:
    return Path(settings.INFERENCE_MODELS_DIR or predict.DEFAULT_MODELS_DIR)


def get_predictor() -> predict.Predictor:
    """The process-wide predictor (inference.predict.get_predictor caches it, so the model
    is loaded once per worker process)."""
    options = {"models_dir": _models_dir(), "name": settings.INFERENCE_DEFAULT_MODEL or None}
    if settings.INFERENCE_RUNTIME:
        options["runtime"] = settings.INFERENCE_RUNTIME
    t0 = time.perf_counter()
    predictor = predict.get_predictor(**options)
    if id(predictor) not in _PREDICTORS_SEEN:
        _PREDICTORS_SEEN.add(id(predictor))
        log.info("inference model %s %s loaded in process %d in %.2f s", predictor.model_name,
                 predictor.model_version, os.getpid(), time.perf_counter() - t0)
    return predictor


def current_model_version() -> str | None:
    """The version a worker will use (`inference.predict.served_version`: the model's and the
    image check's), read from their JSON files without loading the model (web processes call
    this). None when it cannot be read."""
    models_dir = _models_dir()
    try:
        name = settings.INFERENCE_DEFAULT_MODEL or predict.default_model_name(models_dir)
        return predict.read_served_version(models_dir, name)
    except (OSError, ValueError, KeyError):
        return None
