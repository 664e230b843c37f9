"""Settings, every deployment value read from the environment.

With no environment at all this is the *embedded default*: SQLite, disks and the Celery broker as
folders under ``var/``, e-mail written to ``var/mail/`` and the console. Production sets
``DEBUG=0`` and must then provide a real ``SECRET_KEY``, ``DATABASE_URL`` and
``CLOUDSTORAGE_MASTER_KEY``; the process refuses to start otherwise.
"""

from __future__ import annotations

import secrets
import sys
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _env_positive(name: str, default: int) -> int:
    """A whole-number setting that must be at least 1 (a limit of 0 would refuse everything)."""
    value = env.int(name, default=default)
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be at least 1")
    return value


# A bad boolean ("DEBUG=maybe") must stop the process, not silently read as False.
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default=None)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


VAR_DIR = Path(env.str("CLOUDSTORAGE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
# The one-machine embedded default served for real (``make run``): DEBUG off (no debug pages), but
# the secret and master keys may be generated under var/, the database is SQLite there and it is
# plain HTTP on the local machine. Production (DEBUG off without this) must configure all of it.
EMBEDDED = env_bool("CLOUDSTORAGE_EMBEDDED", False)


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        if not DEBUG and (len(key) < 40 or key.startswith("django-insecure") or "change" in key):
            raise ImproperlyConfigured("SECRET_KEY is too weak for DEBUG=0 (use 40+ random characters)")
        return key
    if not DEBUG and not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Embedded default: a random key kept under var/ so sessions survive a restart.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The product name in every page title and e-mail (customers see this, never the host name).
SITE_NAME = env.str("SITE_NAME", default="Cloud Storage")

INSTALLED_APPS = [
    "cloudstorage.apps.OperatorAdminConfig",  # django.contrib.admin behind allauth login + 2FA
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.headless",
    "allauth.mfa",
    "accounts",
    "files",
    "disks",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # High in the list so it sees every other middleware's headers (X-Frame-Options).
    "cloudstorage.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "cloudstorage.urls"
WSGI_APPLICATION = "cloudstorage.wsgi.application"

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
                "accounts.context_processors.workspaces",
                "accounts.context_processors.site",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# Connections outlive a request (per thread: Django keeps one per thread, so gunicorn's threads never
# share one). Opening one per request was a third of a small request's time on SQLite (open, the
# PRAGMAs of init_command, close) and costs a TCP and auth round trip on PostgreSQL. The health check
# replaces a connection the server dropped before the request uses it. Celery's Django fixup closes
# connections that are too old or broken around each task, and drops inherited ones after a fork.
CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=60)
# On PostgreSQL the check is a "SELECT 1" round trip before each request's first query (~19% of a
# py-spy profile of GET /api/v1/workspaces/ on a loaded 2-core machine); without it a connection the
# server dropped fails one request and is then replaced. Free on SQLite. On by default.
CONN_HEALTH_CHECKS = env_bool("CONN_HEALTH_CHECKS", True)
PREPARE_THRESHOLD = 5  # psycopg's default: runs of one statement on a connection before it is prepared
SQLITE_SOFT_HEAP_LIMIT = 4 * 1024 * 1024  # bytes, for all of a process's SQLite connections
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"].setdefault("CONN_MAX_AGE", CONN_MAX_AGE)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = CONN_HEALTH_CHECKS
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's, with the health check skipped on a connection used within the last second.
        DATABASES["default"]["ENGINE"] = "cloudstorage.postgresql"
        # Server-side prepared statements: a statement a connection has run PREPARE_THRESHOLD times
        # is prepared once and then only executed, so PostgreSQL stops parsing and planning it for
        # every request (half of its CPU per listing page: 1.3-1.8 -> 0.6-0.7 ms, docs/performance.md).
        # They need server-side parameter binding. Off for a pooler that hands a session's
        # statements to another session (PgBouncer in transaction mode, unless 1.21+ with
        # max_prepared_statements set).
        if env_bool("DATABASE_PREPARED_STATEMENTS", True):
            options = DATABASES["default"].setdefault("OPTIONS", {})
            options.setdefault("server_side_binding", True)
            options.setdefault("prepare_threshold", PREPARE_THRESHOLD)
elif not DEBUG and not EMBEDDED:
    raise ImproperlyConfigured("DATABASE_URL must be set when DEBUG is off")
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # web, worker and beat share the file: WAL lets readers run beside one writer, and
            # IMMEDIATE takes the write lock up front so a transaction never fails half-way. The
            # init_command runs once per connection, so once per thread while it lives. Each
            # connection would keep a page cache of up to 2 MB (a web worker's threads filled theirs
            # with the tus tails' pages, ~10 MB per worker); the process-wide soft limit lets SQLite
            # evict pages to stay near 4 MiB in all, and a page evicted is read back from the OS's
            # cache (listing requests/s unchanged). synchronous=FULL: every commit syncs the WAL
            # before it returns. With NORMAL (WAL mode's usual pairing) the WAL was synced only at
            # checkpoints, so a power cut after a 201 could roll back the file it acknowledged, or a
            # repair's new copy after the old one was deleted (tests/disks/test_commit_durability.py).
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                    f"PRAGMA soft_heap_limit={SQLITE_SOFT_HEAP_LIMIT};"
                ),
            },
            "CONN_MAX_AGE": CONN_MAX_AGE,
            "CONN_HEALTH_CHECKS": CONN_HEALTH_CHECKS,
            "TEST": {"NAME": None},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django REST framework imports django.contrib.postgres.fields, and with it psycopg, whenever
    # psycopg is installed, only to map PostgreSQL's model fields (no model here has one). Nothing
    # else loads psycopg on SQLite: with that one module marked unavailable DRF takes its path for
    # a site without PostgreSQL, and a web worker is ~10 MB smaller (docs/performance.md, Memory).
    sys.modules.setdefault("django.contrib.postgres.fields", None)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Celery ------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "cloudstorage.redis_cache.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    # Shared by every process on the machine (rate limits, throttles, locks), unlike the
    # per-process memory cache, and a write is one UPSERT rather than a file rewritten (see there).
    CACHES = {
        "default": {
            "BACKEND": "cloudstorage.sqlite_cache.SQLiteCache",
            "LOCATION": str(VAR_DIR / "cache.sqlite3"),
        }
    }
    _broker_dir = VAR_DIR / "celery" / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery" / "results").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    # kombu's filesystem transport with messages written whole (cloudstorage/broker.py).
    CELERY_BROKER_TRANSPORT = "cloudstorage.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Without it kombu writes its exchange table to ./control in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery' / 'results'}"

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The one place every periodic job is scheduled.
CELERY_BEAT_SCHEDULE = {
    "disk-probe": {"task": "disks.tasks.disk_probe_all", "schedule": timedelta(minutes=1)},
    "invitations-expire": {"task": "accounts.tasks.invitations_expire", "schedule": crontab(minute=17)},
    "tokens-expired-purge": {"task": "accounts.tasks.tokens_purge_expired", "schedule": crontab(hour=3, minute=7)},
}

# --- Auth and accounts --------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password-reset links are valid for one hour; Django's token embeds the password hash and the
# last login, so a used link stops working once the password changed.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "5/5m/key,20/5m/ip",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "confirm_email": "1/3m/key",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
}
# Two-factor authentication (allauth.mfa): TOTP apps and one-time recovery codes. WebAuthn is left
# out for now (it needs the fido2 package and its own browser flows). A one-step tolerance accepts
# the previous/next 30 s code, for phones whose clocks drift; a used code is refused for its window.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Cloud Storage")
MFA_TOTP_TOLERANCE = 1
HEADLESS_ONLY = False
HEADLESS_FRONTEND_URLS = {
    "account_confirm_email": f"{SITE_URL}/accounts/confirm-email/{{key}}/",
    "account_reset_password_from_key": f"{SITE_URL}/accounts/password/reset/key/{{key}}/",
    "account_signup": f"{SITE_URL}/accounts/signup/",
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG and not EMBEDDED)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG and not EMBEDDED)
# How many proxies of ours stand in front (each appends to X-Forwarded-For). 0: the header is
# ignored and every rate limit counts the TCP peer (cloudstorage/client_address.py).
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# HSTS: sent only on HTTPS requests (SecurityMiddleware), so on by default only where the site is
# served over TLS in production; a year, as browsers' preload lists expect. 0 turns it off.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if BEHIND_TLS_PROXY and not DEBUG else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
X_FRAME_OPTIONS = "DENY"
# GET /healthz/detail (database, broker, every disk probed) is for staff sessions, and for a monitor
# that sends "Authorization: Bearer <this>" when set; empty: staff only (cloudstorage/health.py).
HEALTHZ_TOKEN = env.str("HEALTHZ_TOKEN", default="")

# --- E-mail -------------------------------------------------------------------------------------
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
elif env.str("EMAIL_HOST", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env.str("EMAIL_HOST")
    EMAIL_PORT = env.int("EMAIL_PORT", default=587)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
else:
    EMAIL_BACKEND = "accounts.mail.FileAndConsoleBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Cloud Storage <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
OPERATOR_EMAILS = env.list("OPERATOR_EMAILS", default=[])

# Multipart uploads stream into the chunk store (files/uploadhandler.py); a folder upload sends a
# file and a relative_path field per file, so allow more parts than Django's defaults (100 / 1000).
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("DATA_UPLOAD_MAX_NUMBER_FILES", default=1000)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=2000)

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's own JSON, written by orjson (cloudstorage/renderers.py); the browsable API as before.
    "DEFAULT_RENDERER_CLASSES": [
        "cloudstorage.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "cloudstorage.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "cloudstorage.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "cloudstorage.throttling.AnonThrottle",
        "cloudstorage.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="120/min"),
        "user": env.str("THROTTLE_USER", default="2000/min"),
        "token_issue": env.str("THROTTLE_TOKEN_ISSUE", default="10/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": ALLAUTH_TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cloud Storage API",
    "DESCRIPTION": "Files, folders, sharing, links, trash, versions, search and plans. "
    "Authenticate with `Authorization: Bearer <personal access token>` or the session cookie.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files: no page loads anything from another host.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Three different "permission" choice sets: name each instead of a generated hash suffix.
    "ENUM_NAME_OVERRIDES": {
        "SharePermissionEnum": "files.models.Share.Permission",
        "LinkPermissionEnum": "files.models.PublicLink.Permission",
        "NodePermissionEnum": ["view", "edit", "manage"],
    },
}

# --- Static, i18n -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
LANGUAGE_CODE = "en-us"
# locale/en: the site's words for allauth's account pages (sentence case, "Log out").
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- The product --------------------------------------------------------------------------------


def _master_key() -> str:
    """The key that wraps every workspace's data key (base64 of 32 bytes)."""
    key = env.str("CLOUDSTORAGE_MASTER_KEY", default="")
    if key:
        return key
    if not DEBUG and not EMBEDDED:
        raise ImproperlyConfigured("CLOUDSTORAGE_MASTER_KEY must be set when DEBUG is off")
    path = VAR_DIR / "master_key"
    if not path.exists():
        import base64

        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


CLOUDSTORAGE_MASTER_KEY = _master_key()
CLOUDSTORAGE_DISKS_DIR = Path(env.str("CLOUDSTORAGE_DISKS_DIR", default=str(VAR_DIR / "disks")))
CLOUDSTORAGE_REPLICAS = env.int("CLOUDSTORAGE_REPLICAS", default=2)
# Where the admin's disk form may point a disk (see disks/locations.py). S3: host[:port] patterns
# (wildcards) accepted as given; any other endpoint must be https on public addresses only.
CLOUDSTORAGE_S3_ENDPOINT_ALLOW = env.list("CLOUDSTORAGE_S3_ENDPOINT_ALLOW", default=[])
# Folders under which local disks may be attached; empty: CLOUDSTORAGE_DISKS_DIR only.
CLOUDSTORAGE_LOCAL_DISK_ROOTS = [Path(p) for p in env.list("CLOUDSTORAGE_LOCAL_DISK_ROOTS", default=[])]
CLOUDSTORAGE_FREE_GB = 1
CLOUDSTORAGE_INVITATION_DAYS = env.int("CLOUDSTORAGE_INVITATION_DAYS", default=7)
# Invitation e-mails carry a name the inviter chose to any address: an address is mailed again from
# one workspace only after this many minutes, and one user sends at most so many an hour.
CLOUDSTORAGE_INVITATION_RESEND_MINUTES = env.int("CLOUDSTORAGE_INVITATION_RESEND_MINUTES", default=15)
CLOUDSTORAGE_INVITATIONS_PER_HOUR = _env_positive("CLOUDSTORAGE_INVITATIONS_PER_HOUR", 30)
CLOUDSTORAGE_DISK_PROBE_FAILURES = env.int("CLOUDSTORAGE_DISK_PROBE_FAILURES", default=3)
# Good probes in a row that clear earlier failures: fewer between failures don't (flapping is damped).
CLOUDSTORAGE_DISK_PROBE_RECOVERY = env.int("CLOUDSTORAGE_DISK_PROBE_RECOVERY", default=3)

# Seconds a request may send no part of its body before it is answered 408 and its gunicorn thread
# freed (cloudstorage/bodytimeout.py); 0 turns it off. nginx's request buffering is the real answer.
REQUEST_BODY_TIMEOUT = env.float("REQUEST_BODY_TIMEOUT", default=15.0)
if REQUEST_BODY_TIMEOUT < 0:
    raise ImproperlyConfigured("REQUEST_BODY_TIMEOUT must not be negative")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"body_timeouts": {"()": "cloudstorage.bodytimeout.DropBodyTimeouts"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "django.request": {"filters": ["body_timeouts"]}},
}

# --- Billing (billing/) -------------------------------------------------------------------------
# Without STRIPE_SECRET_KEY the product runs in the clearly labelled local billing mode: plan
# changes apply at once and local invoices are recorded, no payment is taken.
BILLING_PRICE_PER_GB_CENTS = env.int("BILLING_PRICE_PER_GB_CENTS", default=20)
BILLING_CURRENCY = env.str("BILLING_CURRENCY", default="usd").lower()
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=7)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# A licensed, recurring monthly price of one GB; a subscription's quantity is the plan's GB.
STRIPE_PRICE_ID = env.str("STRIPE_PRICE_ID", default="")
# How old a webhook signature may be (seconds) before it is refused as a replay.
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
if BILLING_PRICE_PER_GB_CENTS < 0:
    raise ImproperlyConfigured("BILLING_PRICE_PER_GB_CENTS must not be negative")
if STRIPE_SECRET_KEY and not (STRIPE_WEBHOOK_SECRET and STRIPE_PRICE_ID):
    raise ImproperlyConfigured("STRIPE_SECRET_KEY needs STRIPE_WEBHOOK_SECRET and STRIPE_PRICE_ID as well")
CELERY_BEAT_SCHEDULE["billing-grace-enforce"] = {
    "task": "billing.tasks.billing_grace_enforce",
    "schedule": crontab(hour=4, minute=23),
}
CELERY_BEAT_SCHEDULE["billing-local-renew"] = {
    "task": "billing.tasks.billing_local_renew",
    "schedule": crontab(hour=4, minute=41),
}

# --- Chunk store (disks/) -----------------------------------------------------------------------
# FastCDC's target average chunk size; real chunks average about 1.25x this, at most 4x.
CLOUDSTORAGE_CHUNK_AVG = env.int("CLOUDSTORAGE_CHUNK_AVG", default=1024 * 1024)
# Master keys that still unwrap data keys during a rotation (see `manage.py rotate_master_key`).
CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = env.list("CLOUDSTORAGE_PREVIOUS_MASTER_KEYS", default=[])
CLOUDSTORAGE_REPAIR_BATCH = env.int("CLOUDSTORAGE_REPAIR_BATCH", default=500)
CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND = env.int("CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND", default=50 * 1024 * 1024)
CLOUDSTORAGE_SCRUB_PERIOD = env.int("CLOUDSTORAGE_SCRUB_PERIOD", default=30 * 24 * 3600)
CLOUDSTORAGE_SCRUB_INTERVAL = env.int("CLOUDSTORAGE_SCRUB_INTERVAL", default=600)
CLOUDSTORAGE_GC_GRACE = env.int("CLOUDSTORAGE_GC_GRACE", default=24 * 3600)
CLOUDSTORAGE_PENDING_GRACE = env.int("CLOUDSTORAGE_PENDING_GRACE", default=3 * 24 * 3600)
CLOUDSTORAGE_CAPACITY_ALERT_PERCENT = env.int("CLOUDSTORAGE_CAPACITY_ALERT_PERCENT", default=85)
# While a category stays above the threshold, the alert is repeated at most this often (seconds).
CLOUDSTORAGE_CAPACITY_ALERT_REPEAT = env.int("CLOUDSTORAGE_CAPACITY_ALERT_REPEAT", default=24 * 3600)
CELERY_BEAT_SCHEDULE["disk-repair"] = {"task": "disks.tasks.replicas_repair", "schedule": timedelta(minutes=1)}
CELERY_BEAT_SCHEDULE["disk-remap"] = {"task": "disks.tasks.workspaces_remap", "schedule": timedelta(minutes=1)}
CELERY_BEAT_SCHEDULE["disk-drain"] = {"task": "disks.tasks.disks_drain", "schedule": timedelta(minutes=1)}
# The backup tier (disks marked "backup" in the admin): chunks without a copy there get one.
CELERY_BEAT_SCHEDULE["disk-backup"] = {"task": "disks.tasks.chunks_backup", "schedule": timedelta(minutes=1)}
CELERY_BEAT_SCHEDULE["disk-scrub"] = {
    "task": "disks.tasks.replicas_scrub",
    "schedule": timedelta(seconds=CLOUDSTORAGE_SCRUB_INTERVAL),
}
# A plan change relocates a workspace once; chunks an upload was writing meanwhile (with the placement
# it read before) or that found no room then are moved by this re-check (a join over every copy).
CELERY_BEAT_SCHEDULE["disk-relocate-check"] = {
    "task": "disks.tasks.workspaces_relocate_check",
    "schedule": crontab(hour="*/6", minute=29),
}
CELERY_BEAT_SCHEDULE["disk-gc"] = {"task": "disks.tasks.chunks_gc", "schedule": crontab(minute=37)}
CELERY_BEAT_SCHEDULE["disk-capacity-alert"] = {
    "task": "disks.tasks.capacity_alert",
    "schedule": crontab(minute="*/15"),
}
# Disk self-care (issue 18): a chunk's repair lock is a lease of this many seconds, renewed while
# its holder works; a copy recorded as being written for longer than CLOUDSTORAGE_WRITE_GRACE
# belongs to a dead writer, whose upload GC releases at its next run.
CLOUDSTORAGE_REPAIR_LEASE = env.int("CLOUDSTORAGE_REPAIR_LEASE", default=60)
CLOUDSTORAGE_WRITE_GRACE = env.int("CLOUDSTORAGE_WRITE_GRACE", default=600)
CELERY_BEAT_SCHEDULE["disk-standby"] = {"task": "disks.tasks.standbys_activate", "schedule": timedelta(minutes=1)}
# Health probes have a queue of their own (the Procfile's `probe` worker consumes only it, the
# `worker` both), so no backlog of other tasks ever delays them.
# Health jobs never wait behind repair, drain or GC work: probes, and the standby activation that a
# filling category needs within one beat interval.
CELERY_TASK_ROUTES = {
    "disks.tasks.disk_probe_all": {"queue": "probes"},
    "disks.tasks.disk_probe": {"queue": "probes"},
    "disks.tasks.standbys_activate": {"queue": "probes"},
}
if not REDIS_URL:
    # The filesystem broker polls an empty queue once a second by default; a probe waits less.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.2

# --- Files: trash, sharing and public links (files/) --------------------------------------------
# Levels of folders below a workspace's root: every walk up or down the tree, and every path in a
# listing, stays bounded (an unbounded chain let a move make a cycle and a page weigh 100s of MB).
CLOUDSTORAGE_MAX_FOLDER_DEPTH = env.int("CLOUDSTORAGE_MAX_FOLDER_DEPTH", default=256)
if not 1 <= CLOUDSTORAGE_MAX_FOLDER_DEPTH <= 5_000:
    raise ImproperlyConfigured("CLOUDSTORAGE_MAX_FOLDER_DEPTH must be between 1 and 5000")
# Days an item stays in the trash before the nightly job deletes it forever.
CLOUDSTORAGE_TRASH_DAYS = _env_positive("CLOUDSTORAGE_TRASH_DAYS", 30)
CELERY_BEAT_SCHEDULE["trash-purge-expired"] = {
    "task": "files.tasks.trash_purge_expired",
    "schedule": crontab(hour=2, minute=13),
}
# The change feed (files/changes.py): entries kept this long (an older cursor gets 410), and how many
# threads of a web process may sit in a long-poll (?wait=) at once; the rest are told to back off.
CLOUDSTORAGE_CHANGES_DAYS = _env_positive("CLOUDSTORAGE_CHANGES_DAYS", 30)
CLOUDSTORAGE_CHANGES_WAITERS = env.int("CLOUDSTORAGE_CHANGES_WAITERS", default=4)
# The version policy's nightly job: files thinned per run (an age limit reached by time alone, and
# thinnings that failed after an upload); a bigger backlog continues the next night.
CLOUDSTORAGE_VERSIONS_THIN_BATCH = _env_positive("CLOUDSTORAGE_VERSIONS_THIN_BATCH", 10_000)
CELERY_BEAT_SCHEDULE["versions-thin"] = {
    "task": "files.tasks.versions_thin_due",
    "schedule": crontab(hour=2, minute=27),
}
CELERY_BEAT_SCHEDULE["changes-prune"] = {"task": "files.tasks.changes_prune", "schedule": crontab(hour=2, minute=43)}


def _env_optional_positive(name: str) -> int | None:
    raw = env.str(name, default="").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be at least 1 (leave it empty for no limit)")
    return value


# Operator defaults for public links; a workspace's owners may tighten them, never loosen the maximum
# or drop a password the operator requires.
CLOUDSTORAGE_LINK_DEFAULT_EXPIRY_DAYS = _env_optional_positive("CLOUDSTORAGE_LINK_DEFAULT_EXPIRY_DAYS")
CLOUDSTORAGE_LINK_MAX_EXPIRY_DAYS = _env_optional_positive("CLOUDSTORAGE_LINK_MAX_EXPIRY_DAYS")
CLOUDSTORAGE_LINK_PASSWORD_REQUIRED = env_bool("CLOUDSTORAGE_LINK_PASSWORD_REQUIRED", False)
CLOUDSTORAGE_LINK_DEFAULT_MAX_DOWNLOADS = _env_optional_positive("CLOUDSTORAGE_LINK_DEFAULT_MAX_DOWNLOADS")
# Wrong link passwords allowed per link and client address in the window, before 429.
CLOUDSTORAGE_LINK_PASSWORD_ATTEMPTS = env.int("CLOUDSTORAGE_LINK_PASSWORD_ATTEMPTS", default=5)
CLOUDSTORAGE_LINK_PASSWORD_WINDOW = env.int("CLOUDSTORAGE_LINK_PASSWORD_WINDOW", default=15 * 60)
# Files an anonymous sender may put through one upload link (a file request): per request, and per
# link in an hour. Quota bounds their bytes, not their number: empty files cost none.
CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_REQUEST = _env_positive("CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_REQUEST", 500)
CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR = _env_positive("CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR", 1000)

# --- Resumable uploads (tus) --------------------------------------------------------------------
# Incomplete uploads expire after this many days; a beat job reclaims their bytes and quota.
CLOUDSTORAGE_UPLOAD_EXPIRY_DAYS = env.int("CLOUDSTORAGE_UPLOAD_EXPIRY_DAYS", default=7)
# Seconds a PATCH holds its upload between renewals: an upload whose writer died is resumable then.
CLOUDSTORAGE_UPLOAD_LEASE = env.int("CLOUDSTORAGE_UPLOAD_LEASE", default=120)
CELERY_BEAT_SCHEDULE["uploads-expire"] = {"task": "files.tasks.uploads_expire", "schedule": crontab(minute=47)}
# An upload's reserved quota that nobody touched for this long belongs to a dead process: given back.
CLOUDSTORAGE_QUOTA_HOLD_STALE = env.int("CLOUDSTORAGE_QUOTA_HOLD_STALE", default=3600)
CELERY_BEAT_SCHEDULE["quota-holds-reclaim"] = {
    "task": "files.tasks.quota_holds_reclaim",
    "schedule": timedelta(minutes=10),
}
# Nightly: a workspace's used_bytes recounted from its versions and uploads in flight, and corrected
# (with a warning in the log) where it drifted.
CELERY_BEAT_SCHEDULE["quota-recount"] = {"task": "files.tasks.usage_recount", "schedule": crontab(hour=3, minute=31)}

# --- Web dashboard ------------------------------------------------------------------------------
# Files from this size on are uploaded through tus (resumable) in chunks of DASHBOARD_TUS_CHUNK;
# DASHBOARD_UPLOAD_PARALLEL files go up at once.
DASHBOARD_TUS_THRESHOLD = env.int("DASHBOARD_TUS_THRESHOLD", default=8 * 1024 * 1024)
DASHBOARD_TUS_CHUNK = env.int("DASHBOARD_TUS_CHUNK", default=5 * 1024 * 1024)
DASHBOARD_UPLOAD_PARALLEL = env.int("DASHBOARD_UPLOAD_PARALLEL", default=3)
if DASHBOARD_TUS_CHUNK < 64 * 1024 or DASHBOARD_UPLOAD_PARALLEL < 1 or DASHBOARD_TUS_THRESHOLD < 0:
    raise ImproperlyConfigured("DASHBOARD_TUS_CHUNK must be at least 64 KiB and DASHBOARD_UPLOAD_PARALLEL at least 1")

# --- Observability (cloudstorage/metrics.py, cloudstorage/logs.py) -------------------------------
# GET /metrics (Prometheus text) answers a monitor holding METRICS_TOKEN (Bearer) or calling from an
# address in METRICS_ALLOW (addresses or networks, e.g. 10.0.0.0/8); anyone else gets a 404. The
# embedded default (and a DEBUG run) is one machine, where a Prometheus scrapes from 127.0.0.1;
# production allows no address unless told (behind a proxy on the same host every request would
# come from 127.0.0.1). METRICS_ALLOW= (empty) closes the embedded default too.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOW = env.list("METRICS_ALLOW", default=["127.0.0.1"] if DEBUG or EMBEDDED else [])
INSTALLED_APPS += ["django_prometheus"]
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "cloudstorage.logs.RequestIdMiddleware",
    *MIDDLEWARE,
    "cloudstorage.metrics.TransferMetricsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# Log lines carry the request id; LOG_FORMAT=json writes one JSON object a line (for a log shipper).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json")
LOGGING["filters"]["request_id"] = {"()": "cloudstorage.logs.RequestIdFilter"}
LOGGING["handlers"]["console"]["filters"] = ["request_id"]
LOGGING["formatters"]["plain"]["format"] = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
LOGGING["formatters"]["json"] = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
    "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
}
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT
# Errors go to Sentry too when SENTRY_DSN is set (nothing is sent otherwise).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(dsn=SENTRY_DSN, send_default_pii=False, traces_sample_rate=0.0)

# --- Database backups (disks/metadata_backup.py) ------------------------------------------------
# With CLOUDSTORAGE_BACKUP_DISK (a disk's name) set, beat backs the database up onto that disk
# every CLOUDSTORAGE_BACKUP_INTERVAL seconds, keeping the CLOUDSTORAGE_BACKUP_KEEP newest.
CLOUDSTORAGE_BACKUP_DISK = env.str("CLOUDSTORAGE_BACKUP_DISK", default="")
CLOUDSTORAGE_BACKUP_KEEP = env.int("CLOUDSTORAGE_BACKUP_KEEP", default=14)
CLOUDSTORAGE_BACKUP_INTERVAL = env.int("CLOUDSTORAGE_BACKUP_INTERVAL", default=86400)
if CLOUDSTORAGE_BACKUP_DISK:
    CELERY_BEAT_SCHEDULE["metadata-backup"] = {
        "task": "disks.tasks.metadata_backup",
        "schedule": timedelta(seconds=CLOUDSTORAGE_BACKUP_INTERVAL),
    }
