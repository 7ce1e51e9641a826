"""One settings module, driven by the environment (see README "Configuration").

SQLite under ``$BATCHLINE_HOME`` (default ``./var``) is the zero-set-up default;
``DATABASE_URL=postgres://...`` selects PostgreSQL. Storage is always UTC;
``BATCHLINE_TIME_ZONE`` only changes how times are shown.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from batchline.outbox import destinations as outbox_destinations


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


PACKAGE_DIR = Path(__file__).resolve().parent
HOME = Path(os.environ.get("BATCHLINE_HOME") or Path.cwd() / "var").resolve()

PRODUCTION = _env_bool("BATCHLINE_PRODUCTION", False)
DEBUG = _env_bool("BATCHLINE_DEBUG", False)


def _secret_key() -> str:
    key = os.environ.get("BATCHLINE_SECRET_KEY", "").strip()
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("BATCHLINE_SECRET_KEY must be set when BATCHLINE_PRODUCTION=1")
    # Development: generate once and keep, so sessions survive restarts.
    HOME.mkdir(parents=True, exist_ok=True)
    path = HOME / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("BATCHLINE_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("BATCHLINE_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    # First, so that its commands replace Django's loaddata, flush, sqlflush, changepassword and
    # remove_stale_contenttypes (which would write GMP tables without the audit trail) with refusals.
    "batchline.backup",
    # Before staticfiles: its runserver also serves the simulators of simulated scales (a demo).
    "batchline.simulation",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django_htmx",
    "ninja",  # so the API docs page serves its vendored Swagger UI, not a CDN copy
    "batchline.audit",
    # Before axes: its reset commands are wrapped so that every unlock is audited (accounts/lockout.py).
    "batchline.accounts",
    "axes",
    "batchline.signatures",
    "batchline.approvals",
    "batchline.configuration",
    "batchline.equipment",
    "batchline.materials",
    "batchline.training",
    "batchline.recipes",
    "batchline.masterdata",
    "batchline.execution",
    # Process values from the machines (issue 15): its configuration sits on the plant model.
    "batchline.gateway",
    "batchline.outbox",
    "batchline.erp",
    "batchline.quality",
    # Sample requests out and laboratory results in (lims/); above execution, which never imports it.
    "batchline.lims",
    "batchline.reports",
    "batchline.validation",
    "batchline.auditreview",
    "batchline.periodic",
    "batchline.web",
    "batchline.api",
    "batchline.integrity",  # last: its check runs after every other app has migrated
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "batchline.web.middleware.RejectNulMiddleware",
    # One GMP configuration version per request (configuration/selectors.py).
    "batchline.configuration.selectors.ConfigurationMiddleware",
    # The terminal of the request and its registered station, named on every actor (21 CFR 11.10(h)).
    "batchline.equipment.stations.StationMiddleware",
    # Times shown in the site's zone, with its name (web/middleware.py).
    "batchline.web.middleware.DisplayZoneMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "batchline.accounts.middleware.IdleTimeoutMiddleware",
    "batchline.accounts.middleware.PasswordChangeRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Axes last, as its documentation asks: it turns lockouts into responses.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "batchline.urls"
WSGI_APPLICATION = "batchline.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "batchline.web.context.site",
            ],
        },
    },
]

# --- database -------------------------------------------------------------
HOME.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{HOME / 'batchline.sqlite3'}",
        # Keep connections between requests: opening one to PostgreSQL per request
        # cost more than rendering the execution screen (docs/performance.md).
        conn_max_age=_env_int("BATCHLINE_DB_CONN_MAX_AGE", 60),
        # A reused connection is checked (one round trip) before each request's
        # first query, so a database restart fails no request; off saves that trip.
        conn_health_checks=_env_bool("BATCHLINE_DB_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers never deadlock on
    # a lock upgrade; WAL lets readers go on while one writer commits.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(HOME / "test-batchline.sqlite3")}
elif _env_bool("BATCHLINE_DB_PREPARED_STATEMENTS", True):
    # PostgreSQL plans a statement once per connection instead of on every
    # execution (server-side parameters; psycopg prepares after 5 runs). Halves the
    # database's CPU per cached screen: the execution screen went from 23 % to
    # 29-30 % of a trivial view, completions from 20 % to 24 % of the raw rate
    # (docs/performance.md); the whole suite runs with it. Switch it off behind a
    # pooler in transaction mode that cannot keep prepared statements (PgBouncer
    # before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": 5}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- caches -----------------------------------------------------------------
# "screens" holds rendered execution screens, filed under the audit trail's head,
# so an entry can never show anything older than the last committed write
# (web/screens.py). Per process; the timeout only bounds memory and how long
# an edit made behind the application's back (which `audit verify` finds)
# could stay on screen.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "batchline"},
    "screens": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "batchline-screens",
        "TIMEOUT": 60,
        "OPTIONS": {"MAX_ENTRIES": 500},
    },
}
if not _env_bool("BATCHLINE_SCREEN_CACHE", True):  # every screen reads and renders (the bench's "cache off")
    CACHES["screens"] = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}

# --- accounts, passwords, lockout, sessions -----------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, with the user and their permissions read in one statement (accounts/backends.py).
    "batchline.accounts.backends.ModelBackend",
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]

PASSWORD_MIN_LENGTH = _env_int("BATCHLINE_PASSWORD_MIN_LENGTH", 10)
PASSWORD_HISTORY = _env_int("BATCHLINE_PASSWORD_HISTORY", 5)
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("username", "full_name", "email")},
    },
    # Length, history and age come from the GMP configuration in force (accounts/passwords.py);
    # BATCHLINE_PASSWORD_* only seed its first version.
    {"NAME": "batchline.accounts.passwords.ConfiguredMinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "batchline.accounts.passwords.PasswordHistoryValidator"},
]
# Days after which a password must be changed; 0 switches expiry off.
PASSWORD_MAX_AGE_DAYS = _env_int("BATCHLINE_PASSWORD_MAX_AGE_DAYS", 90)

LOCKOUT_FAILURES = _env_int("BATCHLINE_LOCKOUT_FAILURES", 5)
# MESA's B2MML/BatchML V0700 XSDs, which may not be copied into the project (reports/batchml.py);
# empty: ../shared/schemas/b2mml-v0700 beside the repository.
BATCHLINE_B2MML_SCHEMAS = os.environ.get("BATCHLINE_B2MML_SCHEMAS", "")
# The record PDF embeds DejaVu Sans Condensed; default: Debian fonts-dejavu-core (reports/pdfa.py).
BATCHLINE_RECORD_FONTS = os.environ.get("BATCHLINE_RECORD_FONTS", "")
# Late entry, QP certification, self-approval and the reconciliation tolerance are GMP settings:
# read from the change-controlled configuration (batchline.configuration, docs/configuration.md);
# their environment variables only seed its first version.
# Deviations handed to an external QMS (quality/qms.py, docs/qms.md) go through the outbox's "qms"
# destination: BATCHLINE_QMS_WEBHOOK_URL, _SECRET, BATCHLINE_QMS_TIMEOUT and _MAX_ATTEMPTS configure it.
QMS_SOURCE = os.environ.get("BATCHLINE_QMS_SOURCE", "batchline")  # prefix of message ids

# The outbox (src/batchline/outbox/): where messages that leave Batchline go, by destination name.
# A destination not named here gets no messages (docs/integration.md says how one is configured):
# BATCHLINE_OUTBOX_QMS / _ERP / _LIMS hold a URL whose scheme chooses the transport (https, amqp,
# nats); BATCHLINE_QMS_WEBHOOK_URL still configures "qms".
OUTBOX_SOURCE = os.environ.get("BATCHLINE_OUTBOX_SOURCE", QMS_SOURCE)  # prefix of idempotency keys
try:
    OUTBOX_DESTINATIONS: dict[str, dict[str, str]] = outbox_destinations.from_environment(os.environ)
except outbox_destinations.DestinationError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# How long a deliverer holds the messages it claimed; a deliverer that died lets them go after it.
OUTBOX_LEASE_SECONDS = float(os.environ.get("BATCHLINE_OUTBOX_LEASE_SECONDS", "300"))
# Messages claimed at once (the heads of many streams, and the next few of each), sent concurrently.
OUTBOX_BATCH = _env_int("BATCHLINE_OUTBOX_BATCH", 500)
# Deliver right after the transaction that wrote a message commits (a thread of the web process),
# besides the worker's rounds; off leaves delivery to `batchline worker` / `batchline outbox deliver`.
OUTBOX_DELIVER_ON_COMMIT = _env_bool("BATCHLINE_OUTBOX_DELIVER_ON_COMMIT", True)
# How long a scale may take to answer (a stable weight waits for settling).
# The equipment gateway (gateway/, docs/devices.md). Retention 0 keeps process data for ever: a site
# sets it after its own risk assessment, since the record's trends are read from these rows.
GATEWAY_RETENTION_DAYS = _env_int("BATCHLINE_GATEWAY_RETENTION_DAYS", 0)
# Downsampling (gateway/downsample.py, docs/gateway.md): readings older than this many days are
# summarised per tag into buckets of GATEWAY_DOWNSAMPLE_SECONDS and their raw rows removed; 0 keeps
# every raw row. Off by default, like retention; the summaries have their own retention (0 keeps).
GATEWAY_DOWNSAMPLE_AFTER_DAYS = _env_int("BATCHLINE_GATEWAY_DOWNSAMPLE_AFTER_DAYS", 0)
GATEWAY_DOWNSAMPLE_SECONDS = _env_int("BATCHLINE_GATEWAY_DOWNSAMPLE_SECONDS", 60)
GATEWAY_SUMMARY_RETENTION_DAYS = _env_int("BATCHLINE_GATEWAY_SUMMARY_RETENTION_DAYS", 0)
GATEWAY_PARTITIONS_AHEAD_DAYS = _env_int("BATCHLINE_GATEWAY_PARTITIONS_AHEAD_DAYS", 7)
GATEWAY_BATCH = _env_int("BATCHLINE_GATEWAY_BATCH", 1000)  # readings per write
GATEWAY_QUEUE = _env_int("BATCHLINE_GATEWAY_QUEUE", 20000)  # readings between the adapters and the writer
GATEWAY_SPOOL_DIR = os.environ.get("BATCHLINE_GATEWAY_SPOOL_DIR") or str(HOME / "gateway")
# Readings kept on disk while the database is away; past it the oldest are dropped, counted and reported.
GATEWAY_SPOOL_MAX = _env_int("BATCHLINE_GATEWAY_SPOOL_MAX", 1_000_000)
GATEWAY_STATUS_SECONDS = float(os.environ.get("BATCHLINE_GATEWAY_STATUS_SECONDS", "5"))
SCALE_TIMEOUT_SECONDS = float(os.environ.get("BATCHLINE_SCALE_TIMEOUT", "5"))
# The reverse proxies (addresses or networks) whose X-Forwarded-For names the terminal a request
# came from (equipment/stations.py). Empty: the header is anyone's to write, so a request is from
# the address that connected. Behind a proxy that is not listed, every request comes from the proxy.
BATCHLINE_TRUSTED_PROXIES = tuple(
    part.strip() for part in os.environ.get("BATCHLINE_TRUSTED_PROXIES", "").split(",") if part.strip()
)
# The threshold of the GMP configuration in force (accounts/lockout.py); LOCKOUT_FAILURES only seeds it.
AXES_FAILURE_LIMIT = "batchline.accounts.lockout.failure_limit"
# Per account, and per client address across user names (password spraying): either locks.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_COOLOFF_TIME = None  # a locked account stays locked until an administrator unlocks it
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "batchline.accounts.views.locked_out"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False

IDLE_TIMEOUT_SECONDS = _env_int("BATCHLINE_IDLE_TIMEOUT_MINUTES", 15) * 60
# The idle clock is written to the session only when it has moved by this much, so
# most requests do not write their session; an idle session may end up to this
# much before the timeout, never after it (accounts/middleware.py).
IDLE_ACTIVITY_GRANULARITY_SECONDS = min(30, IDLE_TIMEOUT_SECONDS // 10)
# The server keeps a session well past the idle timeout, so that the idle-timeout
# middleware (not silent expiry) ends it and records the timeout.
SESSION_COOKIE_AGE = max(2 * IDLE_TIMEOUT_SECONDS, 8 * 3600)
# Saved when changed, which the idle clock does at least every
# IDLE_ACTIVITY_GRANULARITY_SECONDS while the person is active; each save also
# pushes the server-side expiry on by SESSION_COOKIE_AGE.
SESSION_SAVE_EVERY_REQUEST = False
# Django's database sessions, read with one hand-written statement (accounts/sessions.py).
SESSION_ENGINE = "batchline.accounts.sessions"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- time -----------------------------------------------------------------
USE_TZ = True
# Display only (storage is UTC): the zone of an installation whose site is not set up yet.
# Once it is, the site's own zone is shown everywhere (equipment.selectors.display_zone).
TIME_ZONE = os.environ.get("BATCHLINE_TIME_ZONE", "UTC")
LANGUAGE_CODE = "en"
USE_I18N = False

# --- static files: vendored, served by whitenoise, no CDN -----------------
STATIC_URL = "/static/"
STATIC_ROOT = HOME / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve straight from the packages; no collectstatic for dev
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- the API ----------------------------------------------------------------
NINJA_PAGINATION_PER_PAGE = 100
# Requests a personal API token may make (accounts/services.py: tokens expire and have a scope too).
BATCHLINE_API_TOKEN_RATE = os.environ.get("BATCHLINE_API_TOKEN_RATE", "600/m").strip()
# The largest request body: a recipe file at its limit (4 MB, recipes/document.py) in a JSON body.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- ERP inbound (B2MML V0700, docs/integration.md) ------------------------------------------
# The largest message read (checked before parsing; a larger one is refused unread, HTTP 413).
BATCHLINE_ERP_MAX_BYTES = _env_int("BATCHLINE_ERP_MAX_BYTES", 2 * 1024 * 1024)
# How long a parked message waits for what it refers to before it expires into a refusal.
BATCHLINE_ERP_PARKED_HOURS = float(os.environ.get("BATCHLINE_ERP_PARKED_HOURS", "24"))

# Content-Security-Policy (django-csp): scripts, styles, images and connections from this server
# only; no inline script or style (the pages have none: htmx is told not to inject its indicator
# style, nor to evaluate code), no plugins, no framing, forms post only here. A violation is
# refused by the browser and shown in its console (docs/configuration.md, "Hardening").
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = _env_bool("BATCHLINE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000

# --- trust: the installation key and the anchors outside the database (docs/trust.md) -----
# The Ed25519 key that signs audit checkpoints and archive manifests; kept outside the database,
# readable by its owner only. Outside production it is generated on first use.
BATCHLINE_KEY_FILE = os.environ.get("BATCHLINE_KEY_FILE") or str(HOME / "keys" / "installation-ed25519.pem")
# A class with sign(data) and public_key_pem() (an HSM or KMS) instead of the key file.
BATCHLINE_KEY_BACKEND = os.environ.get("BATCHLINE_KEY_BACKEND", "").strip()
# Where verification reads the public key; empty: beside the key file (".pub").
BATCHLINE_PUBLIC_KEY_FILE = os.environ.get("BATCHLINE_PUBLIC_KEY_FILE", "").strip()
# Every checkpoint is appended to this file; put it on separate or WORM storage in production.
BATCHLINE_ANCHOR_PATH = os.environ.get("BATCHLINE_ANCHOR_PATH") or str(HOME / "anchor" / "checkpoints.jsonl")
# Optional further anchors: a NATS JetStream server (nats://host:4222) and its stream's subject,
# and syslog (a socket path such as /dev/log, or host:port for UDP).
BATCHLINE_ANCHOR_NATS_URL = os.environ.get("BATCHLINE_ANCHOR_NATS_URL", "").strip()
BATCHLINE_ANCHOR_NATS_STREAM = os.environ.get("BATCHLINE_ANCHOR_NATS_STREAM", "BATCHLINE_CHECKPOINTS").strip()
BATCHLINE_ANCHOR_SYSLOG = os.environ.get("BATCHLINE_ANCHOR_SYSLOG", "").strip()

# Security alerts (a locked account, 21 CFR 11.300(d)) go to the log and, when
# addresses are configured, by e-mail to the security unit at once.
ADMINS = [
    (addr.strip(), addr.strip())
    for addr in os.environ.get("BATCHLINE_SECURITY_ALERT_EMAILS", "").split(",")
    if addr.strip()
]
SERVER_EMAIL = os.environ.get("BATCHLINE_EMAIL_FROM", "batchline@localhost")
DEFAULT_FROM_EMAIL = SERVER_EMAIL
# A mail relay counts as configured only when named: without one, credentials go through the
# enrolment path and alerts stay in the application and the log (accounts/alerts.py).
BATCHLINE_MAIL_RELAY = bool(os.environ.get("BATCHLINE_EMAIL_HOST", "").strip())
EMAIL_HOST = os.environ.get("BATCHLINE_EMAIL_HOST", "").strip() or "localhost"
EMAIL_PORT = _env_int("BATCHLINE_EMAIL_PORT", 25)
EMAIL_SUBJECT_PREFIX = "[Batchline security] "
# The address people open Batchline at: mailed credentials link to its enrolment page.
BATCHLINE_BASE_URL = os.environ.get("BATCHLINE_BASE_URL", "http://127.0.0.1:8000").strip()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
    },
    "loggers": {
        # Security alerts are mailed by accounts/alerts.py (to the security administrators, the
        # auditors and BATCHLINE_SECURITY_ALERT_EMAILS, where a relay is configured), once each.
        "batchline.security": {"handlers": ["console"], "level": "WARNING"},
        "axes": {"handlers": ["console"], "level": "ERROR"},
    },
}

# Lockout is per account (21 CFR 11.300(d)) and per client address across user names (password
# spraying); axes warns about the combination, which is deliberate (accounts/lockout.py).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
