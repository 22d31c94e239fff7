"""Builders for clinical records in tests. They write real image files to the configured
storage so views that stream or render slices work on what they build."""
from __future__ import annotations

import hashlib
import io
import itertools

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image

from scans.models import Patient, Prediction, Series, Slice, SlicePrediction, Study, StudyStatus

_counter = itertools.count(1)


def png_bytes(size: int = 64, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.exp(-(((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 5) ** 2)))
    pixels = np.clip(blob * 200 + rng.normal(0, 5, (size, size)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def make_patient(mrn: str | None = None, **fields) -> Patient:
    n = next(_counter)
    return Patient.objects.create(mrn=mrn or f"MRN-{n:05d}", full_name=fields.pop("full_name", f"Patient {n}"), **fields)


def make_study(
    patient: Patient,
    *,
    status: str = StudyStatus.AWAITING_REVIEW,
    n_slices: int = 3,
    label: str | None = "glioma",
    confidence: float = 0.93,
    **fields,
) -> Study:
    """A study with one series of `n_slices` PNG slices and, unless label is None, an AI
    prediction (label "" means "outside the AI's scope": no class)."""
    n = next(_counter)
    study = Study.objects.create(
        patient=patient, study_instance_uid=f"2.25.{n}1", status=status, description=fields.pop("description", "MR brain"), **fields
    )
    series = Series.objects.create(study=study, series_instance_uid=f"2.25.{n}2", series_number=1, description="T1 post")
    slices = []
    for i in range(n_slices):
        data = png_bytes(seed=n * 100 + i)
        sl = Slice(
            series=series,
            sop_instance_uid=f"2.25.{n}3{i}",
            sha256=hashlib.sha256(data).hexdigest(),
            source_format="png",
            original_filename=f"slice{i}.png",
            order_index=i,
            instance_number=i + 1,
            rows=64,
            columns=64,
        )
        sl.file.save(f"slice{i}.png", ContentFile(data), save=False)
        sl.save()
        slices.append(sl)
    if label is not None:
        is_mri = label != ""
        probs = {"glioma": 0.0, "meningioma": 0.0, "notumor": 0.0, "pituitary": 0.0}
        if is_mri:
            rest = (1 - confidence) / 3
            probs = {k: (confidence if k == label else rest) for k in probs}
        prediction = Prediction.objects.create(
            series=series,
            model_name="test-model",
            model_version="test-1",
            label=label,
            probabilities=probs,
            confidence=confidence if is_mri else 0.0,
            is_brain_mri=is_mri,
            key_slice=slices[len(slices) // 2] if slices else None,
            slice_count=len(slices),
        )
        for sl in slices:
            SlicePrediction.objects.create(prediction=prediction, slice=sl, probabilities=probs, is_brain_mri=is_mri)
    return study
