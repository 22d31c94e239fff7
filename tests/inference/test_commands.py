"""Management commands on ../shared data: evaluate_model, classify (JPEG, DICOM, not-MRI), benchmark."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from PIL import Image

from .conftest import text_document


def _last_json(out: StringIO):
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_evaluate_model_json_and_plots(artifacts, subset_dir, tmp_path):
    out = StringIO()
    call_command("evaluate_model", str(subset_dir), "--json", "--plots", str(tmp_path), stdout=out, stderr=StringIO())
    r = _last_json(out)
    for k in ("n", "accuracy", "macro_f1", "ece", "ms_per_image", "model", "rejected_as_not_mri"):
        assert k in r
    assert r["n"] == 24 and r["accuracy"] >= 0.8
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "reliability_diagram.png").stat().st_size > 1000
    assert "confusion matrix" in out.getvalue()


def _default_model(artifacts) -> str:
    return (artifacts / "default.txt").read_text().strip()


def test_classify_jpeg(artifacts, mri_root, tmp_path):
    f = sorted((mri_root / "pituitary").iterdir())[10]
    out = StringIO()
    call_command("classify", str(f), "--json", "--heatmap-out", str(tmp_path / "h.png"), stdout=out)
    r = _last_json(out)
    assert set(r) >= {"label", "probabilities", "is_brain_mri", "heatmap"}
    assert r["model"] == _default_model(artifacts)
    assert r["is_brain_mri"] is True and r["label"] == "pituitary"  # a training image of that class
    assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert Image.open(r["heatmap"]).size == Image.open(f).size


def test_classify_dicom(artifacts, dicom_series, tmp_path):
    """A middle slice of the real sagittal DWI b=0 series, a brain without a known tumour
    (docs/model-card.md): the image check accepts it, the shipped default model calls it no
    tumour, and the heat map has the DICOM image's size."""
    import pydicom

    f = sorted(dicom_series.glob("*.dcm"))[24]
    out = StringIO()
    call_command("classify", str(f), "--json", "--heatmap-out", str(tmp_path / "h.png"), stdout=out)
    r = _last_json(out)
    assert r["model"] == _default_model(artifacts)
    assert r["is_brain_mri"] is True and r["label"] == "notumor"
    assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    header = pydicom.dcmread(f, stop_before_pixels=True)
    assert Image.open(r["heatmap"]).size == (header.Columns, header.Rows)


def test_classify_document_is_not_mri(artifacts, tmp_path):
    p = tmp_path / "doc.png"
    Image.fromarray(text_document()).save(p)
    out = StringIO()
    call_command("classify", str(p), "--json", stdout=out)
    r = _last_json(out)
    assert r["is_brain_mri"] is False and r["label"] is None and r["heatmap"] is None


def test_classify_missing_file():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("classify", "/nonexistent.png", "--json", stdout=StringIO())
