"""Local development: the embedded default (SQLite, local files, in-process tasks)."""
from portal.settings.base import *  # noqa: F401,F403
from portal.settings.base import VAR_DIR
from portal.settings.env import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
WHITENOISE_USE_FINDERS = True
VAR_DIR.mkdir(parents=True, exist_ok=True)
