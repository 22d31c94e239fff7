"""Celery app for the worker processes that tests/pipeline starts: portal's app under the
test settings (which point it at TEST_REDIS_URL when CELERY_WORKER_TEST is set)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")

from portal.celery import app  # noqa: E402

__all__ = ["app"]
