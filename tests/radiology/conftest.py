"""Fixtures for the radiologist workspace tests."""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from scans.models import SlicePrediction
from tests.factories import make_study, png_bytes


@pytest.fixture
def alice_record(patient_alice):
    return patient_alice.patient_record


@pytest.fixture
def study(alice_record):
    """Alice's study awaiting review: AI says glioma at 93 %, 5 slices, key slice 2, heat maps."""
    s = make_study(alice_record, n_slices=5, label="glioma", confidence=0.93)
    for sp in SlicePrediction.objects.filter(slice__series__study=s):
        sp.heatmap.save(f"hm{sp.slice_id}.png", ContentFile(png_bytes(seed=sp.slice_id)), save=True)
    return s


@pytest.fixture
def staff_client(client, radiologist):
    client.force_login(radiologist)
    return client
