"""The one settings module. Every deployment knob is read from the environment; the defaults are
safe for development (DEBUG on, SQLite under var/, the offline simulator as the upstream)."""

import os
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("Set SECRET_KEY when DEBUG is off.")
    SECRET_KEY = "dev-only-secret-key-never-use-in-production-0123456789abcdef"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

# Local state for development: the SQLite database and stored images.
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks_db",
    "health_check",
    # django-ninja, for the JSON API: in INSTALLED_APPS so that its docs page uses the Swagger
    # UI files it ships (served from here), not a CDN's.
    "ninja",
    "imageedits.edits",
]

MIDDLEWARE = [
    "imageedits.logfilters.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "imageedits.edits.metrics.RequestTimingMiddleware",
]

ROOT_URLCONF = "imageedits.urls"
WSGI_APPLICATION = "imageedits.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "imageedits.edits.teams.notifications_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and callbacks write concurrently: WAL and IMMEDIATE transactions keep SQLite
    # from answering "database is locked" under that load.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A connection per thread, kept: opening one (and its PRAGMAs) cost more than the status
    # poll's two queries.
    DATABASES["default"]["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", 600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Tests use a file, not memory, so the live server, the worker thread and the test share it;
    # one per process, so that two test runs never meet.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and (
    pool_size := envint("DB_POOL_SIZE", 0)
):
    # psycopg's pool in each process: connections are reused instead of opened per request.
    # Size it at least to the process's threads (gunicorn's WEB_THREADS).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": pool_size,
        "timeout": 10,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}
# Worker processes per machine (`make run`, `make serve`). Without callbacks each one waits on
# one upstream request at a time (30-120 s); with callbacks it is free as soon as it has sent.
WORKER_PROCESSES = envint("WORKER_PROCESSES", 2)
if TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
    # Workers: `manage.py rqworker-pool` (see management/topology.py for its options).
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    RQ_QUEUES = {
        "default": {
            "URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            # RQ kills a job that runs longer (its own default, 180 s, is shorter than one
            # upstream wait); the system check imageedits.E001 keeps it above the longest step.
            "DEFAULT_TIMEOUT": envint("TASK_TIMEOUT", 600),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
AUTHENTICATION_BACKENDS = ["imageedits.edits.accounts.CachedModelBackend"]
# Abuse limits: per person, edits started per minute and under way at once; failed log-ins per
# username and per address within 15 minutes. The log-in counters live in the cache, per process
# by default; with several web processes, CACHE_URL puts them in a Redis they all share.
# Sessions and their users are read from the "shared" cache, and from the database only when it
# misses: a status poll costs one query. That cache must be one every web process shares, so
# that a session ended or a user changed in one is gone for all: Redis with CACHE_URL, else
# files in VAR_DIR.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "shared"
if CACHE_URL := os.environ.get("CACHE_URL", ""):
    CACHES = {
        alias: {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        for alias in ("default", "shared")
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "shared-cache",
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        },
    }
# Rendered gallery cards, in each process's own memory: their keys hold whatever of a card can
# change, so no copy is ever stale and none needs sharing; a restart (a deploy) empties it.
CACHES["fragments"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "fragments",
    "OPTIONS": {"MAX_ENTRIES": 10_000},
}
EDITS_PER_MINUTE = envint("EDITS_PER_MINUTE", 10)
EDITS_IN_FLIGHT = envint("EDITS_IN_FLIGHT", 5)
LOGIN_FAILURES_PER_USER = envint("LOGIN_FAILURES_PER_USER", 5)
LOGIN_FAILURES_PER_ADDRESS = envint("LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_REDIRECT_URL = "edit-new"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
# Uploaded inputs and stored results. Never served as public static files: the app serves each
# one to its owner only.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# An S3-compatible bucket (AWS, MinIO, R2...) instead of MEDIA_ROOT, when AWS_STORAGE_BUCKET_NAME
# is set (install the `s3` extra). django-storages reads AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY from the environment itself. The bucket stays private: images reach
# their owner through a redirect to a URL signed for a few minutes.
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
AWS_S3_ENDPOINT_URL = os.environ.get("AWS_S3_ENDPOINT_URL", "").rstrip("/")
AWS_S3_REGION_NAME = os.environ.get("AWS_S3_REGION_NAME", "us-east-1")
SIGNED_URL_SECONDS = envint("SIGNED_URL_SECONDS", 300)
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL or None,
            "region_name": AWS_S3_REGION_NAME,
            # Other S3-compatible services take the bucket in the path, not the host name.
            "addressing_style": "path" if AWS_S3_ENDPOINT_URL else "virtual",
            "signature_version": "s3v4",
            "file_overwrite": False,
            "default_acl": None,
            "querystring_expire": SIGNED_URL_SECONDS,
        },
    }
# Bigger uploads stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
EDIT_MAX_UPLOAD_BYTES = envint("EDIT_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
# All of one edit's uploads together (Django itself caps form fields, not files).
EDIT_MAX_REQUEST_BYTES = envint("EDIT_MAX_REQUEST_BYTES", 200 * 1024 * 1024)
# Batches (one instruction over many images): how many images one may hold, all its uploads
# together (files or one ZIP), and how many of its edits may be under way at once.
BATCH_MAX_IMAGES = envint("BATCH_MAX_IMAGES", 200)
BATCH_MAX_REQUEST_BYTES = envint("BATCH_MAX_REQUEST_BYTES", 1024 * 1024 * 1024)
BATCH_CONCURRENCY = envint("BATCH_CONCURRENCY", 4)
# Django refuses a request with more files than this: a batch may hold BATCH_MAX_IMAGES.
DATA_UPLOAD_MAX_NUMBER_FILES = BATCH_MAX_IMAGES + 10

# The upstream images API. Without OPENAI_BASE_URL the app talks to the offline simulator
# (`python -m imageedits.simulator`, started by `make run`).
SIMULATOR_URL = os.environ.get("SIMULATOR_URL", "http://127.0.0.1:8001")
SIMULATOR_TOKEN = os.environ.get("SIMULATOR_TOKEN", "sk-simulator")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "").rstrip("/") or f"{SIMULATOR_URL}/openai"
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "") or (
    SIMULATOR_TOKEN if not os.environ.get("OPENAI_BASE_URL") else ""
)
# "ace" or "openai"; empty means: decided from OPENAI_BASE_URL.
OPENAI_FLAVOUR = os.environ.get("OPENAI_FLAVOUR", "")
# Where the upstream can reach this app for callbacks (e.g. https://edits.example.com). Empty
# means no callbacks: the worker waits for each answer.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").rstrip("/")
# Seconds to wait for a synchronous answer; edits take 30-120 s upstream.
UPSTREAM_TIMEOUT = envint("UPSTREAM_TIMEOUT", 200)
# Seconds to download all the result images of one answer from the upstream's URLs.
RESULT_DOWNLOAD_TIMEOUT = envint("RESULT_DOWNLOAD_TIMEOUT", 120)
# Failures worth retrying (rate limits, 5xx, timeouts, connection errors) are retried with
# exponential backoff and jitter, honouring Retry-After, up to this many tries in all.
UPSTREAM_ATTEMPTS = envint("UPSTREAM_ATTEMPTS", 4)
RETRY_BASE_DELAY = float(os.environ.get("RETRY_BASE_DELAY", 2))
RETRY_MAX_DELAY = float(os.environ.get("RETRY_MAX_DELAY", 120))
# The reaper (`manage.py reap`) takes a queued edit or request whose task has not run for this
# many seconds to have lost its task, and queues it again.
REAP_STALE_AFTER = envint("REAP_STALE_AFTER", 300)
# A request's lease, the longest one step of the pipeline can take: UPSTREAM_TIMEOUT, plus
# RESULT_DOWNLOAD_TIMEOUT, plus this many seconds to store the results. Past it, the worker is
# taken to have died and the reaper sends the request again.
LEASE_MARGIN = envint("LEASE_MARGIN", 60)
# After this many seconds without a callback, ask the task query endpoint; give up after the
# second number.
CALLBACK_CHECK_AFTER = envint("CALLBACK_CHECK_AFTER", 180)
CALLBACK_GIVE_UP_AFTER = envint("CALLBACK_GIVE_UP_AFTER", 1800)
# Credits per result, overriding the catalog's default prices, e.g. "gpt-image-2=0.5,dall-e-2=0.02".
MODEL_CREDITS = {
    name.strip(): float(price)
    for name, _, price in (item.partition("=") for item in envlist("MODEL_CREDITS", ""))
}
# Hosts the server itself may fetch image URLs from although they are private (the simulator in
# development and tests). Everything else must resolve to a public address.
IMAGE_FETCH_ALLOWED_HOSTS = envlist(
    "IMAGE_FETCH_ALLOWED_HOSTS",
    "" if os.environ.get("OPENAI_BASE_URL") else SIMULATOR_URL.split("://", 1)[-1],
)

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
if AWS_STORAGE_BUCKET_NAME:  # the signed image URLs point there
    SECURE_CSP["img-src"] += (
        [AWS_S3_ENDPOINT_URL]
        if AWS_S3_ENDPOINT_URL
        else [  # us-east-1 signs with the global host name, other regions with their own
            f"https://{AWS_STORAGE_BUCKET_NAME}.s3.amazonaws.com",
            f"https://{AWS_STORAGE_BUCKET_NAME}.s3.{AWS_S3_REGION_NAME}.amazonaws.com",
        ]
    )
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Production (DEBUG=0) is HTTPS-only by default; each switch can be turned off from the
# environment, e.g. behind a proxy that already redirects.
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers and Prometheus call these over plain HTTP, from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ready/$", r"^metrics/$"]
# /metrics/ answers only requests with "Authorization: Bearer <METRICS_TOKEN>"; 404 when unset.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
BEHIND_TLS_PROXY = envbool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "imageedits.logfilters.JsonFormatter"},
    },
    "filters": {"redact_secrets": {"()": "imageedits.logfilters.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            # LOG_FORMAT=json: one JSON object a line, with the request's id, for collectors.
            "formatter": "json" if os.environ.get("LOG_FORMAT") == "json" else "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers for these (a console without the redaction in DEBUG, e-mail to
        # ADMINS) would print "Not Found: /s/<token>/" whole: replaced by ours, in every mode.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # httpx logs every request URL at INFO; keep it at WARNING so nothing upstream-related
        # is logged by accident.
        "httpx": {"level": "WARNING"},
        # runserver's access log, which would otherwise print callback URLs whole.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "httpcore": {"level": "WARNING"},
    },
}

# Error reports to Sentry when SENTRY_DSN is set (install the `sentry` extra): no personal data,
# and the same redaction as the logs.
if SENTRY_DSN := os.environ.get("SENTRY_DSN", ""):
    import sentry_sdk

    from imageedits.logfilters import redact_event

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        send_default_pii=False,
        traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", 0)),
        before_send=redact_event,
        before_send_transaction=redact_event,
        environment=os.environ.get("SENTRY_ENVIRONMENT", "production"),
    )
