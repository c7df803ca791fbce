"""Django settings: one module, every knob read from the environment.

Each variable is listed with its default in deploy/.env.example and in the README's table
(tests/lib/test_settings_documented.py keeps the three in step).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from environ.fileaware_mapping import FileAwareMapping

from playground.lib import paths, ratelimits, redis_roles, worktimes


class _FileAwareMapping(FileAwareMapping):
    """django-environ's, less the line end that an editor or ``echo`` leaves at the end of a
    file (a DATABASE_URL ending in a newline names another database)."""

    def __getitem__(self, key: str) -> str:
        value: str = super().__getitem__(key)
        return value.rstrip("\r\n") if self.env.get(f"{key}_FILE") else value


class _Env(environ.FileAwareEnv):
    ENVIRON = _FileAwareMapping()


# Every variable X may instead be given as X_FILE, the path of a file holding the value (a
# Docker or Kubernetes secret mounted as a file), read first when both are set.
env = _Env()
BASE_DIR = paths.REPO_DIR
VAR_DIR = paths.var_dir()


def _secret_key() -> str:
    """PLAYGROUND_SECRET_KEY, or a random key generated once and kept in var/ for local installs.
    Refused with a database reached over the network: the web processes and workers of a site
    on several machines (or containers without a shared var/) must share one key, or a session
    signed by one is rejected by the next."""
    key = env.str("PLAYGROUND_SECRET_KEY", default="")
    if key:
        return key
    database = env.str("DATABASE_URL", default="")
    # The sandbox worker in deploy/compose.yml signs nothing (no pages, no mail, no links) and
    # gets no secret it does not use: it says so, and keeps a key of its own in its private var.
    signs_nothing = env.bool("PLAYGROUND_SECRET_KEY_UNUSED", default=False)
    if database and paths.over_the_network(database) and not signs_nothing:
        raise environ.ImproperlyConfigured(
            "Set PLAYGROUND_SECRET_KEY (or PLAYGROUND_SECRET_KEY_FILE, a file holding it): "
            "DATABASE_URL names a database server, so this site may run on several machines, "
            "which must all use the same key. Make one with: python -c "
            '"import secrets; print(secrets.token_urlsafe(50))"'
        )
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
# A web process signs sessions and links: it refuses to start with this set (asgi.py).
PLAYGROUND_SECRET_KEY_UNUSED = env.bool("PLAYGROUND_SECRET_KEY_UNUSED", default=False)
DEBUG = env.bool("PLAYGROUND_DEBUG", default=False)
# Error pages and reports hide passwords inside URLs too (DATABASE_URL, REDIS_URL, ...), whose
# names Django's own filter does not recognise as secret.
DEFAULT_EXCEPTION_REPORTER_FILTER = "playground.lib.redact.RedactingExceptionReporterFilter"
ALLOWED_HOSTS = env.list("PLAYGROUND_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("PLAYGROUND_CSRF_TRUSTED_ORIGINS", default=[])

# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto and send cookies over HTTPS only.
if env.bool("PLAYGROUND_BEHIND_HTTPS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # A year: browsers then refuse plain HTTP to this host, even on a first typed http:// link.
    SECURE_HSTS_SECONDS = 31_536_000
    # Off by default: it would also force HTTPS on every other site under this domain.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("PLAYGROUND_HSTS_INCLUDE_SUBDOMAINS", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "csp",
    # Installed, django-ninja serves its API docs from its own static files (no CDN, no inline
    # script) instead of Swagger UI from a CDN.
    "ninja",
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
    "playground.accounts",  # sign-up, the account page, API tokens, the admin of accounts
    "playground.moderation",
    "playground.lti",  # LTI 1.3: launches from an LMS, deep linking, grades back (docs/LTI.md)
]

MIDDLEWARE = [
    # /metrics for the scrapers that ask by a pod's address (not an allowed host): answered
    # before the host check, to allowed addresses or the token only (playground/metrics.py).
    "playground.metrics.MetricsMiddleware",
    # Each request's id (X-Request-ID), on every record logged while it is served and on the
    # tasks it sends (playground/lib/logcontext.py): first after /metrics, whose scrapes need
    # none, so that the host check's and every later middleware's records carry it.
    "playground.lib.logcontext.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A body over DATA_UPLOAD_MAX_MEMORY_SIZE gets a 413 before the session or CSRF middleware
    # reads it (with playground.lib.uploads.BodyLimit around the ASGI application).
    "playground.lib.uploads.TooLargeMiddleware",
    # A NUL in an address is refused before anything reads the session or the database.
    "playground.lib.middleware.RefuseNulMiddleware",
    # A session an LTI launch signed in may be framed by its LMS, with SameSite=None cookies
    # over HTTPS (playground/lti/middleware.py); before the session middleware, to see its cookie.
    "playground.lti.middleware.LtiFrameMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Authorization: Bearer on the API and event streams: the request acts as the token's owner.
    "playground.accounts.tokens.ApiTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "playground.lib.middleware.MethodNotAllowedPageMiddleware",
    # Last, so that it sees what views raise: a requester over a limit gets a 429 page.
    "playground.lib.middleware.RateLimitedMiddleware",
]

# Database sessions that know their account: disabling an account ends its sessions at once.
SESSION_ENGINE = "playground.moderation.sessions"

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
# Connections (deploy/README.md, "PostgreSQL connections"). The web process is ASGI: Django
# wants persistent connections off there and a pool instead ("When using ASGI, persistent
# connections should be disabled. Instead, use your database backend's built-in connection
# pooling", docs/ref/databases): PLAYGROUND_DB_POOL_MAX > 0 gives each process a psycopg pool
# of at most that many connections (asgi.py makes it 8 in the web process unless set). Celery
# workers may keep theirs instead (PLAYGROUND_DB_CONN_MAX_AGE, seconds). Behind PgBouncer in
# transaction mode, PLAYGROUND_DB_PGBOUNCER=1: no server-side cursors (they need a session).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("PLAYGROUND_DB_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
PLAYGROUND_DB_POOL_MAX = env.int("PLAYGROUND_DB_POOL_MAX", default=0)
if PLAYGROUND_DB_POOL_MAX > 0:
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise environ.ImproperlyConfigured(
            "PLAYGROUND_DB_POOL_MAX and PLAYGROUND_DB_CONN_MAX_AGE exclude each other: a pooled "
            "connection goes back to the pool after each request."
        )
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env.int("PLAYGROUND_DB_POOL_MIN", default=1), PLAYGROUND_DB_POOL_MAX),
        "max_size": PLAYGROUND_DB_POOL_MAX,
        # Waiting longer than this for a free connection fails the request (a clear 500 in
        # the log, not a hang); connections idle this long are closed down to min_size.
        "timeout": 10,
        "max_idle": 300,
    }
# A transaction pool's server connection is someone else's after each transaction: no
# server-side cursors (.iterator() declares one WITH HOLD). Prepared statements need nothing:
# Django binds parameters on the client, and psycopg's client-side cursors never prepare.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "PLAYGROUND_DB_PGBOUNCER", default=False
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis. Unset: the embedded server. Each of its five roles may live on its own server (or
# behind Sentinel: redis+sentinel://...), see lib/redis_roles.py; every role defaults to
# REDIS_URL, so one URL still serves them all.
# Under pytest-xdist each test worker takes a database of its own (paths.xdist_worker_redis_db).
REDIS_URL = env.str("REDIS_URL", default="") or paths.embedded_redis_url(
    VAR_DIR, db=paths.xdist_worker_redis_db()
)
REDIS_ROLES = {
    # Celery's queues, the leases and the other coordination keys: noeviction and AOF.
    "broker": env.str("PLAYGROUND_REDIS_BROKER_URL", default="") or REDIS_URL,
    # Celery's results (a sandbox job's answer).
    "results": env.str("PLAYGROUND_REDIS_RESULTS_URL", default="") or REDIS_URL,
    # Django's cache (rate limits): volatile-lru, no persistence.
    "cache": env.str("PLAYGROUND_REDIS_CACHE_URL", default="") or REDIS_URL,
    # The runs' event streams: volatile-lru, no persistence.
    "events": env.str("PLAYGROUND_REDIS_EVENTS_URL", default="") or REDIS_URL,
}
# The channel layer's pub/sub: a comma list shards the runs' groups over several servers.
PLAYGROUND_REDIS_CHANNELS_URLS = redis_roles.split_urls(
    env.str("PLAYGROUND_REDIS_CHANNELS_URLS", default="")
) or [REDIS_URL]
try:
    for _role, _url in [
        *REDIS_ROLES.items(),
        *(("channels", u) for u in PLAYGROUND_REDIS_CHANNELS_URLS),
    ]:
        redis_roles.check(_url, f"the Redis URL of the {_role} role")
except redis_roles.RedisURLError as exc:
    raise environ.ImproperlyConfigured(str(exc)) from None

CELERY_BROKER_URL, _broker_options = redis_roles.celery_url(REDIS_ROLES["broker"])
CELERY_RESULT_BACKEND, _results_options = redis_roles.celery_url(REDIS_ROLES["results"])
if _results_options:
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = _results_options
# A task without a route goes to `default` (the llm worker takes it), never to `sandbox`: the
# sandbox worker runs untrusted code and gets no secrets (deploy/compose.yml), so only the
# tasks that need it are routed there.
CELERY_TASK_DEFAULT_QUEUE = "default"
# Who may read /metrics (playground/metrics.py): these networks, or the bearer of the token
# (from the environment or PLAYGROUND_METRICS_TOKEN_FILE). Parsed here, so that a mistyped
# network stops every process at its start instead of failing each scrape.
try:
    PLAYGROUND_METRICS_ALLOW = [
        ipaddress.ip_network(part.strip(), strict=False)
        for part in env.str("PLAYGROUND_METRICS_ALLOW", default="127.0.0.1/32,::1/128").split(",")
        if part.strip()
    ]
except ValueError as exc:
    raise environ.ImproperlyConfigured(
        f"PLAYGROUND_METRICS_ALLOW must be a comma list of networks (10.0.0.0/8,::1/128): {exc}"
    ) from None
PLAYGROUND_METRICS_TOKEN = env.str("PLAYGROUND_METRICS_TOKEN", default="")
# The one queue whose workers run untrusted code; every other worker kind and the web process
# refuse to start a sandbox and send their code there (runs/sandboxing.py).
PLAYGROUND_SANDBOX_QUEUE = env.str("PLAYGROUND_SANDBOX_QUEUE", default="sandbox")
# The evaluations' queue: their items fan out over its workers (benchmarks/execution.py).
PLAYGROUND_BATCH_QUEUE = env.str("PLAYGROUND_BATCH_QUEUE", default="batch")
CELERY_TASK_ROUTES = {
    "playground.runs.tasks.execute_real_run": {"queue": PLAYGROUND_SANDBOX_QUEUE},
    "playground.runs.tasks.run_sandbox_job": {"queue": PLAYGROUND_SANDBOX_QUEUE},
    "playground.runs.tasks.execute_emulation": {"queue": "llm"},
    "playground.runs.tasks.score_surprise": {"queue": "llm"},
    "playground.classroom.tasks.grade_puzzle_submission": {"queue": PLAYGROUND_SANDBOX_QUEUE},
    "playground.classroom.tasks.check_checkpoints": {"queue": PLAYGROUND_SANDBOX_QUEUE},
    "playground.classroom.tasks.make_variants": {"queue": PLAYGROUND_SANDBOX_QUEUE},
    "playground.benchmarks.tasks.run_evaluation": {"queue": PLAYGROUND_BATCH_QUEUE},
    "playground.benchmarks.tasks.evaluate_item": {"queue": PLAYGROUND_BATCH_QUEUE},
    # Re-scoring runs the benchmarks' checks: in the sandbox, so on its queue.
    "playground.benchmarks.tasks.rescore_evaluation": {"queue": PLAYGROUND_SANDBOX_QUEUE},
    "playground.runs.retention.expire_anonymous_runs": {"queue": "default"},
    "playground.reaper.reap": {"queue": "default"},
    "playground.moderation.tasks.clear_expired_sessions": {"queue": "default"},
    "playground.lti.tasks.send_score": {"queue": "default"},
    "playground.lti.tasks.send_revealed_scores": {"queue": "default"},
    "playground.privacy.retention.apply_retention": {"queue": "default"},
}
# Modules with tasks that are not in an app's tasks.py (autodiscovery finds only those).
CELERY_IMPORTS = ["playground.runs.retention", "playground.reaper", "playground.privacy.retention"]
CELERY_TASK_ACKS_LATE = True
# A task taken by a worker that dies is handed out again after this many seconds (Redis keeps
# it unacknowledged); longer than the longest task's time limit, or it would run twice. Every
# time limit and recovery timing is in lib/worktimes.py, checked against each other there.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": worktimes.VISIBILITY_TIMEOUT_S,
    **_broker_options,
}
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("PLAYGROUND_CELERY_EAGER", default=False)

# Periodic tasks: Celery beat (one process: `make run` starts it, compose runs one `beat`) sends
# them; add later ones here. Its state (when each entry last ran) lives under the var dir.
# Runs made without an account (and anonymous programs left without runs) are deleted this many
# hours after they were made; 0 keeps them forever.
PLAYGROUND_ANON_RUN_TTL_HOURS = env.int("PLAYGROUND_ANON_RUN_TTL_HOURS", default=7 * 24)
# Retention of signed-in people's data, in days (0: for ever), applied daily by
# playground/privacy/retention.py (docs/PRIVACY.md): submissions, step predictions, exam starts
# and extensions after their course's last assignment closed; runs after they were made (a
# course item's answer key excepted); invitations by e-mail once answered or expired; the LTI
# app's score log (and launch records, once it keeps them).
PLAYGROUND_RETAIN_SUBMISSIONS_DAYS = env.int("PLAYGROUND_RETAIN_SUBMISSIONS_DAYS", default=0)
PLAYGROUND_RETAIN_RUNS_DAYS = env.int("PLAYGROUND_RETAIN_RUNS_DAYS", default=0)
PLAYGROUND_RETAIN_INVITATIONS_DAYS = env.int("PLAYGROUND_RETAIN_INVITATIONS_DAYS", default=0)
PLAYGROUND_RETAIN_LTI_DAYS = env.int("PLAYGROUND_RETAIN_LTI_DAYS", default=0)
# The most one account's data export (playground/privacy/export.py) may hold, in MiB.
PLAYGROUND_EXPORT_MAX_MB = env.int("PLAYGROUND_EXPORT_MAX_MB", default=100)
CELERY_BEAT_SCHEDULE = {
    # Work a dead worker took with it is sent again (playground/reaper.py, lib/worktimes.py).
    "reap-lost-work": {
        "task": "playground.reaper.reap",
        "schedule": float(worktimes.REAP_EVERY_S),
        "options": {"expires": worktimes.REAP_EVERY_S},
    },
    "expire-anonymous-runs": {
        "task": "playground.runs.retention.expire_anonymous_runs",
        "schedule": 3600.0,
        # A message nobody took within the hour is dropped: the next one does the same work.
        "options": {"expires": 3000},
    },
    # Retention periods of signed-in people's data (playground/privacy/retention.py), daily.
    "apply-retention": {
        "task": "playground.privacy.retention.apply_retention",
        "schedule": 86400.0,
        "options": {"expires": 82800},
    },
    # LTI scores held back while hidden, sent once the assignment closed (playground/lti/tasks.py).
    "lti-revealed-scores": {
        "task": "playground.lti.tasks.send_revealed_scores",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Expired sessions (Django's `clearsessions`), once a day.
    "clear-expired-sessions": {
        "task": "playground.moderation.tasks.clear_expired_sessions",
        "schedule": 86400.0,
        "options": {"expires": 82800},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# The cache (rate limits) lives in Redis, shared by every web process.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # A list: Django splits a string at commas (several servers), and a Sentinel URL has them.
        "LOCATION": [REDIS_ROLES["cache"]],
        "KEY_PREFIX": "playground",
        "OPTIONS": {"pool_class": "playground.lib.redis_roles.SentinelPool"},
    }
}
# Every limit on what a requester may start, create or hold open, in one table: the written
# defaults of playground/lib/ratelimits.py (DEFAULTS, listed in the README), scaled by the
# profile ("public"; "load-test" multiplies them for a load harness), then the operator's
# overrides: PLAYGROUND_LIMITS="runs.anon=30/m streams.user=5".
PLAYGROUND_LIMITS_PROFILE = env.str("PLAYGROUND_LIMITS_PROFILE", default="public")
try:
    PLAYGROUND_LIMITS = ratelimits.table(
        PLAYGROUND_LIMITS_PROFILE,
        ratelimits.parse_overrides(env.str("PLAYGROUND_LIMITS", default="")),
    )
except ratelimits.LimitsError as exc:
    raise environ.ImproperlyConfigured(str(exc)) from None
# Exam rooms: hiding answers is per account, so a signed-out visitor could run an exam's code.
# On: only signed-in users start runs (pages and API).
PLAYGROUND_RUN_REQUIRES_LOGIN = env.bool("PLAYGROUND_RUN_REQUIRES_LOGIN", default=False)

# Redis pub/sub: a group message reaches each web process once, which hands it to its own
# viewers (the list-based layer stores one copy per viewer). Nothing is lost for viewers: a
# run's events are also kept in a Redis stream that every viewer replays first.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [redis_roles.channels_host(u) for u in PLAYGROUND_REDIS_CHANNELS_URLS]},
    }
}

# E-mail: course invitations and password resets. Unset: mails are printed on the console
# (development). On a server: smtp+tls://user:password@mail.example.org:587 for STARTTLS,
# smtp+ssl://...:465 for implicit TLS (django-environ's email_url; percent-encode special
# characters of the password).
_email = env.email_url("PLAYGROUND_EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH") or str(VAR_DIR / "mail")
EMAIL_TIMEOUT = 20  # a mail server that does not answer must not hold a worker for ever
DEFAULT_FROM_EMAIL = env.str("PLAYGROUND_EMAIL_FROM", default="playground@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
del _email
# Course invitations by e-mail: how long a link works, and how many invitation mails one person
# may send in 24 hours (a roster must not be a way to send mail in bulk).
PLAYGROUND_INVITATION_DAYS = env.int("PLAYGROUND_INVITATION_DAYS", default=14)
PLAYGROUND_INVITATION_MAILS_PER_DAY = env.int("PLAYGROUND_INVITATION_MAILS_PER_DAY", default=500)

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
# Content-Security-Policy on every response: scripts, styles, images and fonts only from this
# site's own files; no inline script or style and no eval (htmx runs with allowEval off, see
# base.html), so an injected tag or attribute would not run; fetches and websockets only to this
# host; no plugins, no <base>, forms only to this site; no page may be framed, except the embed
# view of a share link (playground/sharing/views.py), which allows the ancestors below.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}


def _frame_ancestors(raw: list[str]) -> list[str]:
    """PLAYGROUND_EMBED_FRAME_ANCESTORS: CSP source expressions (``*``, ``https:``,
    ``https://lms.example.edu``, ``'self'``, ``'none'``), checked so that no value can add a
    directive of its own to the header."""
    sources = [s for item in raw for s in item.split()]
    for source in sources:
        if not source or any(c in source for c in ';,"\r\n') or not source.isascii():
            raise environ.ImproperlyConfigured(
                f"PLAYGROUND_EMBED_FRAME_ANCESTORS: {source!r} is not a CSP source expression."
            )
    return sources or [NONE]


# Who may frame a share link's embed view. Default: any site (the point of an embed: blogs,
# course pages). It shows only what the link already shows anyone and offers nothing to click
# that changes anything, so framing it hides no action from its viewer.
PLAYGROUND_EMBED_FRAME_ANCESTORS = _frame_ancestors(
    env.list("PLAYGROUND_EMBED_FRAME_ANCESTORS", default=["*"])
)
SESSION_COOKIE_HTTPONLY = True
# Uploads: a program is at most 100 KB; leave room for the other fields, refuse anything bigger.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Limits on what a user may submit.
PLAYGROUND_MAX_SOURCE_BYTES = env.int("PLAYGROUND_MAX_SOURCE_BYTES", default=100_000)
PLAYGROUND_MAX_STDIN_BYTES = env.int("PLAYGROUND_MAX_STDIN_BYTES", default=64_000)
PLAYGROUND_MAX_CALL_CHARS = env.int("PLAYGROUND_MAX_CALL_CHARS", default=10_000)
PLAYGROUND_PAGE_SIZE = env.int("PLAYGROUND_PAGE_SIZE", default=25)

# The sandbox (real execution). PLAYGROUND_SANDBOX (bwrap | unsafe-local) and
# PLAYGROUND_SANDBOX_UNSAFE_ANY_HOST are read by playground/sandbox/setting.py alone, for the
# worker and for the banner (context_processors.py) alike; PLAYGROUND_SANDBOX_POOL and
# PLAYGROUND_SANDBOX_PYTHON by playground/sandbox/warm_pool.py and jail.py. Neither needs Django.
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
# (playground/launcher.py), which starts the processes; Django itself does not need them.

# plain: one readable line a record (`make run`'s terminal). json: one JSON object a line with
# the request, run and task ids as fields (playground/lib/logcontext.py), for a log collector.
PLAYGROUND_LOG_FORMAT = env.str("PLAYGROUND_LOG_FORMAT", default="plain").strip().lower()
if PLAYGROUND_LOG_FORMAT not in ("plain", "json"):
    raise environ.ImproperlyConfigured(
        "PLAYGROUND_LOG_FORMAT must be plain (readable lines) or json (one object a line, for "
        f"a log collector), not {PLAYGROUND_LOG_FORMAT[:40]!r}."
    )
# One line per model request is noise; failures are reported by the client itself.
_loggers: dict[str, dict[str, object]] = {"httpx": {"level": "WARNING"}}
if PLAYGROUND_LOG_FORMAT == "json":
    # uvicorn writes its own lines (startup, the access log) through handlers of its own: in
    # JSON they go through the root's instead, so that every line of the web process parses.
    for _name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        _loggers[_name] = {"handlers": [], "propagate": True}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "playground.lib.logcontext.IdsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "playground.lib.logcontext.json_formatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": PLAYGROUND_LOG_FORMAT,
            "filters": ["ids"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("PLAYGROUND_LOG_LEVEL", default="INFO")},
    "loggers": _loggers,
}
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
