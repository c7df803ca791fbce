"""Django settings: one module, every knob read from the environment.

Each variable is listed with its default in deploy/.env.example and in the README's table
(tests/lib/test_settings_documented.py keeps the three in step).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ

from playground.lib import paths

env = environ.Env()
BASE_DIR = paths.REPO_DIR
VAR_DIR = paths.var_dir()


def _secret_key() -> str:
    """PLAYGROUND_SECRET_KEY, or a random key generated once and kept in var/ for local installs."""
    key = env.str("PLAYGROUND_SECRET_KEY", default="")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


SECRET_KEY = _secret_key()
DEBUG = env.bool("PLAYGROUND_DEBUG", default=False)
ALLOWED_HOSTS = env.list("PLAYGROUND_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("PLAYGROUND_CSRF_TRUSTED_ORIGINS", default=[])

# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto and send cookies over HTTPS only.
if env.bool("PLAYGROUND_BEHIND_HTTPS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 3600

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "channels",
    "playground.programs",
    "playground.runs",
    "playground.llm",
    "playground.streaming",
    "playground.sharing",
    "playground.classroom",
    "playground.benchmarks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "playground.urls"
ASGI_APPLICATION = "playground.asgi.application"
WSGI_APPLICATION = "playground.wsgi.application"

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
                "playground.context_processors.site",
            ],
        },
    },
]

# PostgreSQL only. Unset: the embedded server that `make run` / `make test` start under var/.
DATABASE_URL = env.str("DATABASE_URL", default="") or paths.embedded_database_url(VAR_DIR)
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise environ.ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgresql://...).")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("PLAYGROUND_DB_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker and result backend, channel layer. Unset: the embedded server.
REDIS_URL = env.str("REDIS_URL", default="") or paths.embedded_redis_url(VAR_DIR)


def _celery_redis_url(url: str) -> str:
    """Kombu spells a unix-socket Redis URL as redis+socket:///path?virtual_host=N."""
    if url.startswith("unix://"):
        path, _, query = url.removeprefix("unix://").partition("?")
        db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("db", "0")
        return f"redis+socket://{path}?virtual_host={db}"
    return url


CELERY_BROKER_URL = _celery_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = "sandbox"
CELERY_TASK_ROUTES = {
    "playground.runs.tasks.execute_real_run": {"queue": "sandbox"},
    "playground.runs.tasks.execute_emulation": {"queue": "llm"},
    "playground.classroom.tasks.grade_puzzle_submission": {"queue": "sandbox"},
    "playground.benchmarks.tasks.run_evaluation": {"queue": "batch"},
}
CELERY_TASK_ACKS_LATE = True
# A task taken by a worker that dies is handed out again after this many seconds (Redis keeps
# it unacknowledged); longer than the longest task's time limit, or it would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 1200}
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("PLAYGROUND_CELERY_EAGER", default=False)

# The cache (rate limits) lives in Redis, shared by every web process.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "playground",
    }
}
# New runs per minute: anonymous visitors per IP address, signed-in users per account (pages and
# the JSON API alike).
PLAYGROUND_RUN_RATE_ANON = env.str("PLAYGROUND_RUN_RATE_ANON", default="20/m")
PLAYGROUND_RUN_RATE_USER = env.str("PLAYGROUND_RUN_RATE_USER", default="60/m")

# Redis pub/sub: a group message reaches each web process once, which hands it to its own
# viewers (the list-based layer stores one copy per viewer). Nothing is lost for viewers: a
# run's events are also kept in a Redis stream that every viewer replays first.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
SIGNUP_ENABLED = env.bool("PLAYGROUND_SIGNUP_ENABLED", default=True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("PLAYGROUND_TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("PLAYGROUND_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("PLAYGROUND_MANIFEST_STATIC", default=False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Serve static files from the app directories without collectstatic (the embedded setup); the
# directory must exist for WhiteNoise, even empty.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Uploads: a program is at most 100 KB; leave room for the other fields, refuse anything bigger.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Limits on what a user may submit.
PLAYGROUND_MAX_SOURCE_BYTES = env.int("PLAYGROUND_MAX_SOURCE_BYTES", default=100_000)
PLAYGROUND_MAX_STDIN_BYTES = env.int("PLAYGROUND_MAX_STDIN_BYTES", default=64_000)
PLAYGROUND_MAX_CALL_CHARS = env.int("PLAYGROUND_MAX_CALL_CHARS", default=10_000)
PLAYGROUND_PAGE_SIZE = env.int("PLAYGROUND_PAGE_SIZE", default=25)

# The sandbox (real execution). PLAYGROUND_SANDBOX (bwrap | unsafe-local), PLAYGROUND_SANDBOX_POOL
# and PLAYGROUND_SANDBOX_PYTHON are read by playground/sandbox/process.py, which needs no Django.
PLAYGROUND_SANDBOX_UNSAFE = env.str("PLAYGROUND_SANDBOX", default="bwrap") == "unsafe-local"
PLAYGROUND_SANDBOX_CPU_S = env.int("PLAYGROUND_SANDBOX_CPU_S", default=2)
PLAYGROUND_SANDBOX_WALL_S = env.float("PLAYGROUND_SANDBOX_WALL_S", default=5.0)
PLAYGROUND_SANDBOX_MEMORY_MB = env.int("PLAYGROUND_SANDBOX_MEMORY_MB", default=256)
PLAYGROUND_SANDBOX_MAX_STEPS = env.int("PLAYGROUND_SANDBOX_MAX_STEPS", default=10_000)
PLAYGROUND_SANDBOX_MAX_STDOUT = env.int("PLAYGROUND_SANDBOX_MAX_STDOUT", default=64_000)
# A stored trace keeps its steps up to this size (characters of JSON); later ones are dropped
# and the trace says so (stats.capped). Guards the database and every page that reads traces.
PLAYGROUND_MAX_TRACE_BYTES = env.int("PLAYGROUND_MAX_TRACE_BYTES", default=5_000_000)
# How far a signed-in user may raise CPU time and steps for one run (anonymous: never above).
PLAYGROUND_SANDBOX_CEILING_CPU_S = env.int("PLAYGROUND_SANDBOX_CEILING_CPU_S", default=10)
PLAYGROUND_SANDBOX_CEILING_STEPS = env.int("PLAYGROUND_SANDBOX_CEILING_STEPS", default=100_000)

# PLAYGROUND_HOST, PLAYGROUND_PORT and the PLAYGROUND_*_WORKERS counts are read by the launcher
# (playground/lib/launcher.py), which starts the processes; Django itself does not need them.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("PLAYGROUND_LOG_LEVEL", default="INFO")},
    # One line per model request is noise; failures are reported by the client itself.
    "loggers": {"httpx": {"level": "WARNING"}},
}
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
