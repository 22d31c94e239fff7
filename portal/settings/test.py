"""Test settings: fast hashing, isolated media, same code paths as production otherwise."""
import os
import tempfile
from pathlib import Path

from portal.settings.base import *  # noqa: F401,F403
from portal.settings.base import STORAGES

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Real-worker tests share one media folder between pytest and the workers it starts.
MEDIA_ROOT = Path(os.environ.get("PORTAL_TEST_MEDIA_ROOT") or tempfile.mkdtemp(prefix="portal-test-media-"))
if STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
    STORAGES["default"]["OPTIONS"]["location"] = str(MEDIA_ROOT)
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

# Tests run tasks in-process unless a test starts real workers (tests/pipeline), which
# point them at TEST_REDIS_URL explicitly; a stray REDIS_URL must not leak work to Redis.
CELERY_TASK_ALWAYS_EAGER = True
# An error in an in-process task fails the test instead of hiding in an EagerResult.
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
if os.environ.get("CELERY_WORKER_TEST"):
    # Set only on the `celery worker` processes that tests/pipeline starts.
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_URL = os.environ["TEST_REDIS_URL"]
# Fault injection for the real-worker tests (tests/pipeline sets these on a worker's environment).
PIPELINE_TEST_CRASH_MARKER = os.environ.get("PIPELINE_TEST_CRASH_MARKER", "")
PIPELINE_TEST_SLEEP_SECONDS = float(os.environ.get("PIPELINE_TEST_SLEEP_SECONDS") or 0)
AXES_ENABLED = True
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="portal-test-static-"))
WHITENOISE_USE_FINDERS = True
