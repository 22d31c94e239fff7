"""Test settings: fast hashing, isolated media, same code paths as production otherwise."""
import tempfile
from pathlib import Path

from portal.settings.base import *  # noqa: F401,F403
from portal.settings.base import STORAGES

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="portal-test-media-"))
if STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
    STORAGES["default"]["OPTIONS"]["location"] = str(MEDIA_ROOT)
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

# Tests run tasks in-process unless a test starts real workers (tests/pipeline), which
# point them at TEST_REDIS_URL explicitly; a stray REDIS_URL must not leak work to Redis.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
AXES_ENABLED = True
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="portal-test-static-"))
WHITENOISE_USE_FINDERS = True
