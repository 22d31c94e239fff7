"""Celery app for the worker processes that tests/pipeline starts: portal's app, plus the
contract stand-ins of tests/pipeline/doubles.py when PIPELINE_TEST_DOUBLES is set (only
outside CI, and only for a teammate's module that is not there yet)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")

if os.environ.get("PIPELINE_TEST_DOUBLES"):
    import django

    django.setup()
    from tests.pipeline.doubles import install_missing

    install_missing()

from portal.celery import app  # noqa: E402

__all__ = ["app"]
