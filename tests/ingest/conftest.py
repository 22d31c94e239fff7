from __future__ import annotations

from pathlib import Path

import pytest

from scans import imaging


@pytest.fixture
def media(tmp_path, settings) -> Path:
    """A fresh, empty file-system storage for this test, so 'nothing stored' is checkable."""
    root = tmp_path / "media"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    imaging.decoded_cache.clear()
    yield root
    imaging.decoded_cache.clear()


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def staff_api(client, radiologist):
    client.force_login(radiologist)
    return client
