"""Fixtures for the inference tests: the shipped artifacts and small symlinked subsets of ../shared."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.data import CLASSES
from inference.predict import DEFAULT_MODELS_DIR
from tests.conftest import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
MRI_ROOT = REPO.parent / "shared" / "data" / "brain-tumor-mri" / "Training"
DICOM_SERIES = REPO.parent / "shared" / "data" / "dicom" / "brain-dwi-sagittal-48"


def need_shared(path: Path) -> Path:
    if not path.exists():
        skip_or_fail(f"../shared/data not present: {path}")
    return path


@pytest.fixture(scope="session")
def mri_root() -> Path:
    return need_shared(MRI_ROOT)


@pytest.fixture(scope="session")
def dicom_series() -> Path:
    return need_shared(DICOM_SERIES)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    if not (DEFAULT_MODELS_DIR / "default.txt").exists():
        skip_or_fail(f"no shipped model in {DEFAULT_MODELS_DIR}")
    return DEFAULT_MODELS_DIR


def make_subset(root: Path, dst: Path, per_class: int, offset: int = 0) -> Path:
    """Kaggle-layout folder of symlinks: `per_class` evenly spaced images of each class."""
    for c in CLASSES:
        files = sorted((root / c).iterdir())
        step = max(1, len(files) // per_class)
        (dst / c).mkdir(parents=True, exist_ok=True)
        for f in files[offset::step][:per_class]:
            (dst / c / f.name).symlink_to(f.resolve())
    return dst


@pytest.fixture(scope="session")
def subset_dir(mri_root: Path, tmp_path_factory) -> Path:
    return make_subset(mri_root, tmp_path_factory.mktemp("subset"), per_class=6, offset=3)


def text_document(size: int = 400) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    for i in range(18):
        d.text((20, 15 + i * 21), f"Invoice line {i}: lorem ipsum dolor sit amet {i * 37} EUR", fill="black")
    return np.asarray(im)


def colour_photo(size: int = 300) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] / size
    img = np.stack([200 * yy + 40, 150 * np.sin(6 * xx) ** 2 + 60, 255 * (1 - yy) * xx], axis=-1)
    img[(yy - 0.6) ** 2 + (xx - 0.4) ** 2 < 0.04] = [30, 160, 40]  # a green "tree"
    return np.clip(img, 0, 255).astype(np.uint8)


def non_mri_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "uniform noise": rng.integers(0, 256, (224, 224), dtype=np.uint8),
        "colour noise": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "blank black": np.zeros((224, 224), np.uint8),
        "blank white": np.full((224, 224), 255, np.uint8),
        "blank grey": np.full((256, 256, 3), 128, np.uint8),
        "colour photo": colour_photo(),
        "text document": text_document(),
    }
