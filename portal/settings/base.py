"""Settings shared by every environment.

Everything that differs between a laptop and a hospital deployment is read from the
environment (see README.md, "Configuration"). With no variables set, the portal runs on
an embedded default: SQLite, local files, tasks run in-process, offline explainer.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from portal.settings.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (no CDN)
    "axes",
    "accounts",
    "scans",
    "hospital",
    "inference",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.ActiveUserSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    # AxesMiddleware must be last: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# DATABASE_URL selects PostgreSQL in the full stack; SQLite is the embedded default.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent requests on the embedded default write one after another instead of failing
    # with "database is locked": WAL lets readers run beside the one writer, IMMEDIATE takes
    # the write lock when a transaction starts (a read lock cannot be upgraded under a
    # concurrent writer, which no wait can resolve), and a writer waits for the lock up to
    # SQLITE_BUSY_TIMEOUT_SECONDS.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_float("SQLITE_BUSY_TIMEOUT_SECONDS", 30.0),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts, passwords, sessions -----------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

AUTHENTICATION_BACKENDS = [
    # Axes first so that a locked-out client is refused before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Idle sessions end after 15 minutes: every request pushes the expiry forward.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 15 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# Login lockout (django-axes). Keyed on the account name and the socket address (REMOTE_ADDR):
# gunicorn is reached directly (compose has no reverse proxy), and the client-supplied
# X-Forwarded-For is never read.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "accounts.lockout.lockout_username"
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# --- Internationalisation -----------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files and scan storage -------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Scan files are never served from a public URL: views check permission and stream them.
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-served/"

S3_BUCKET = env_str("S3_BUCKET")
_scan_storage: dict = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(MEDIA_ROOT)},
}
if S3_BUCKET:
    _scan_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "region_name": env_str("S3_REGION", "us-east-1"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
STORAGES = {
    "default": _scan_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Upload limits: checked before anything is stored.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 200 * 1024 * 1024)
UPLOAD_MAX_FILES = env_int("UPLOAD_MAX_FILES", 2000)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 40_000_000)
ZIP_MAX_EXPANDED_BYTES = env_int("ZIP_MAX_EXPANDED_BYTES", 1024 * 1024 * 1024)
ZIP_MAX_ENTRIES = env_int("ZIP_MAX_ENTRIES", 5000)
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

# --- Celery -----------------------------------------------------------------------------------
# With no REDIS_URL the same task functions run in-process (eager), so the embedded default
# needs no broker. With REDIS_URL, work goes to the "inference" and "llm" queues.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "portal.tasks.classify_series": {"queue": "inference"},
    "portal.tasks.explain_study": {"queue": "llm"},
    "portal.tasks.send_dicom": {"queue": "default"},
}
# The longest task (a large series with heat maps on a CPU) stays well under this; a message
# whose worker vanished is redelivered after it. The sweeper is the backstop for lost ones.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 1800)}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1200)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1100)
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {
        "task": "portal.tasks.sweep_stale_jobs",
        "schedule": env_float("SWEEPER_INTERVAL_SECONDS", 60.0),
    },
}
JOB_STALE_AFTER_SECONDS = env_int("JOB_STALE_AFTER_SECONDS", 300)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)
JOB_RETRY_BACKOFF_SECONDS = env_float("JOB_RETRY_BACKOFF_SECONDS", 5.0)
# TEST-ONLY fault injection (portal/workflow/faults.py); empty/0 everywhere but tests/pipeline.
PIPELINE_TEST_CRASH_MARKER = ""
PIPELINE_TEST_SLEEP_SECONDS = 0.0

# --- Hospital integration (DICOM, see docs/dicom-conformance.md) ----------------------------
# The listener's own AE title and port (manage.py dicom_listener; options override them).
DICOM_AE_TITLE = env_str("DICOM_AE_TITLE", "BRAINPORTAL")
DICOM_PORT = env_int("DICOM_PORT", 11112)
DICOM_BIND_ADDRESS = env_str("DICOM_BIND_ADDRESS", "127.0.0.1")
# Callers allowed to associate, as "AE_TITLE@host" (host may be "*"). Empty: the embedded
# default, where any caller connecting from 127.0.0.1 is accepted. Remote nodes marked
# "may send" on the administration page are allowed as well.
DICOM_ALLOWED_CALLERS = env_list("DICOM_ALLOWED_CALLERS", [])
# Received instances wait in this folder until their association ends (or is quiet).
DICOM_SPOOL_DIR = Path(env_str("DICOM_SPOOL_DIR", str(VAR_DIR / "dicom-spool")))
# A study is processed when its association ends, or after this many seconds without a
# new instance on an association that stays open.
DICOM_QUIET_SECONDS = env_float("DICOM_QUIET_SECONDS", 10.0)
# Unsigned AI results go to the PACS only when this is on (then marked preliminary).
DICOM_SEND_PRELIMINARY = env_bool("DICOM_SEND_PRELIMINARY", False)
# A PACS may be down for a while: send jobs get more attempts than other jobs.
DICOM_SEND_MAX_ATTEMPTS = env_int("DICOM_SEND_MAX_ATTEMPTS", 20)
DICOM_NETWORK_TIMEOUT_SECONDS = env_float("DICOM_NETWORK_TIMEOUT_SECONDS", 30.0)
# Root under which the portal's UIDs (SR, secondary capture) are generated.
DICOM_UID_PREFIX = env_str("DICOM_UID_PREFIX", "")
DICOM_INSTITUTION = env_str("DICOM_INSTITUTION", "Brain MRI portal")

# --- Inference ---------------------------------------------------------------------------------
INFERENCE_MODELS_DIR = Path(env_str("INFERENCE_MODELS_DIR", str(BASE_DIR / "inference" / "artifacts")))
INFERENCE_DEFAULT_MODEL = env_str("INFERENCE_MODEL", "")
INFERENCE_RUNTIME = env_str("INFERENCE_RUNTIME", "")  # onnx (default) | keras

# --- Patient explanations (LLM) ------------------------------------------------------------
EXPLAINER = {
    "PROVIDER": env_str("EXPLAINER_PROVIDER", "offline"),  # offline | gemini | openai
    "MODEL": env_str("EXPLAINER_MODEL", "gemma-3-27b-it"),
    "API_KEY": env_str("EXPLAINER_API_KEY"),
    "BASE_URL": env_str("EXPLAINER_BASE_URL"),
    "TIMEOUT_SECONDS": env_float("EXPLAINER_TIMEOUT_SECONDS", 20.0),
    "MAX_RETRIES": env_int("EXPLAINER_MAX_RETRIES", 2),
}

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes "not logged in" a 401, not a 403.
        "accounts.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# API tokens (accounts.tokens): one per client, named; they expire, and die with a password
# change or deactivation.
API_TOKEN_LIFETIME_DAYS = env_float("API_TOKEN_LIFETIME_DAYS", 30.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "Brain MRI portal API",
    "DESCRIPTION": "Upload scans, read AI results and signed reports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # A signed finding is a tumour class or "unassessable"; the AI's class is a tumour class.
    "ENUM_NAME_OVERRIDES": {"TumourClassEnum": "scans.findings.TumourClass", "FindingEnum": "scans.findings.FINDING_CHOICES"},
}

# --- Security headers --------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Every asset is served by the app, so the policy allows nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)

EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "portal@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
