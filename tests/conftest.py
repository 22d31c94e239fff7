"""Shared fixtures: named users per role, service checks and the ../shared data folder.

In CI (CI=true) a test that needs PostgreSQL, Redis or ../shared fails instead of
skipping: a green CI run must mean those paths really ran.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_PASSWORD = "correct-horse-battery-staple"

# One Playwright browser for the whole session, whichever folder a browser test lives in.
pytest_plugins = ["tests.browser.fixtures"]


def skip_or_fail(reason: str) -> None:
    """Skip locally; in CI a missing service is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        skip_or_fail(f"../shared/data not present at {SHARED_DATA}: the sample data is not in this checkout")
    return SHARED_DATA


@pytest.fixture
def postgres(db) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no Redis here"
        skip_or_fail(f"needs Redis at {url}: {exc}")
    return url


# --- Named users, one per role ---------------------------------------------------------


def _make_user(email: str, role: str, name: str, **extra):
    from accounts.models import User

    return User.objects.create_user(email=email, password=TEST_PASSWORD, role=role, full_name=name, **extra)


@pytest.fixture
def patient_alice(db):
    from scans.models import Patient

    user = _make_user("alice@example.org", "patient", "Alice Patient")
    Patient.objects.create(mrn="MRN-ALICE", full_name="Alice Patient", user=user)
    return user


@pytest.fixture
def patient_bob(db):
    from scans.models import Patient

    user = _make_user("bob@example.org", "patient", "Bob Patient")
    Patient.objects.create(mrn="MRN-BOB", full_name="Bob Patient", user=user)
    return user


@pytest.fixture
def radiologist(db):
    return _make_user("rita@example.org", "radiologist", "Dr Rita Radiologist")


@pytest.fixture
def second_radiologist(db):
    return _make_user("sam@example.org", "radiologist", "Dr Sam Second")


@pytest.fixture
def administrator(db):
    return _make_user("ada@example.org", "administrator", "Ada Administrator", is_staff=True)


@pytest.fixture
def deactivated_user(db):
    return _make_user("gone@example.org", "radiologist", "Former Radiologist", is_active=False)
