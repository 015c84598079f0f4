"""Settings for bouncemgr, read from the environment with django-environ.

Every value comes from the environment (or a `.env` file in the project root, or
`var/local.env` which `make run` writes on first start). With nothing configured the
app runs on the embedded default: SQLite under var/ and kombu's filesystem broker, so
no server is needed. Set DATABASE_URL / REDIS_URL to use PostgreSQL / Redis.
See `.env.example` for every variable.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("BOUNCEMGR_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
# Later files do not override earlier ones, and the process environment wins over both.
for env_file in (BASE_DIR / ".env", VAR_DIR / "local.env"):
    if env_file.is_file():
        environ.Env.read_env(env_file, overwrite=False)


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from NAME, or from the file named by NAME_FILE (Docker secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path}: cannot read the secret: {exc.strerror}") from exc
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)
# pytest sets no environment: its settings are these, with a throwaway key (tests/conftest.py
# passes one on to the servers and commands the tests start).
TESTING = "pytest" in sys.modules
SECRET_KEY = env_secret("SECRET_KEY") or ""
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        # Fail closed (issue 12): a fixed fallback key would let anyone forge sessions and
        # password-reset links. `make run` writes a random key into var/local.env.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'; `make run` writes "
            "one into var/local.env. Only DEBUG=true runs without it."
        )
    # Development only; `check --deploy` flags it as insecure.
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Key(s) for encrypting mailbox passwords and OAuth2 secrets at rest (Fernet, urlsafe
# base64 of 32 bytes). Several comma-separated keys allow rotation: the first encrypts,
# all decrypt. Generate one with `python manage.py generate_encryption_key`.
FIELD_ENCRYPTION_KEYS = [k.strip() for k in (env_secret("FIELD_ENCRYPTION_KEY") or "").split(",") if k.strip()]

INSTALLED_APPS = [
    "bouncemgr.apps.AdminConfig",  # django.contrib.admin, two-factor login when REQUIRE_2FA
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_celery_beat",
    "django_celery_results",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "bouncemgr",
    "contacts",
    "campaigns",
    "bounces",
    "rest_framework",
    "drf_spectacular",
    "api",
    "console",
]

MIDDLEWARE = [
    "bouncemgr.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "bouncemgr.middleware.RequireTwoFactorMiddleware",
    "bouncemgr.middleware.PrivateCacheMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "bouncemgr.urls"
WSGI_APPLICATION = "bouncemgr.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'bouncemgr.sqlite3'}"),
}
# The password may come apart from the URL (Docker secrets: DATABASE_PASSWORD_FILE).
if _db_password := env_secret("DATABASE_PASSWORD"):
    DATABASES["default"]["PASSWORD"] = _db_password
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file: IMMEDIATE transactions, a busy
    # timeout and the WAL journal keep them from failing with "database is locked".
    # synchronous=FULL: a commit is on disk when it returns (with NORMAL, a power loss or OS
    # crash could take back a batch whose messages were already deleted on the mail server,
    # or a message the SMTP receiver had answered 250 for).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one user
# from one address, that pair is locked out for AXES_COOLOFF_HOURS (HTTP 429); a good login
# before that resets the count. Unlock early: python manage.py axes_reset_username NAME.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(hours=env.float("AXES_COOLOFF_HOURS", default=1.0))
# "username,ip_address" locks the pair; "ip_address" or "username" alone are stricter
# (the latter lets anyone lock an account out).
AXES_LOCKOUT_PARAMETERS = [env.list("AXES_LOCKOUT_PARAMETERS", default=["username", "ip_address"])]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "bouncemgr/lockout.html"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# Behind a reverse proxy the client address is in X-Forwarded-For: count the proxies.
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# Two-factor login for staff (django-otp, TOTP): with REQUIRE_2FA=true the admin login asks
# for a code and only users verified by a device may use the admin and the staff pages.
# Give each user a device first: python manage.py totp_device NAME (docs/security.md).
REQUIRE_2FA = env.bool("REQUIRE_2FA", default=False)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="bouncemgr")
# The admin lists and deletes devices but never shows their secrets (key, otpauth URL, QR
# code): staff allowed to view devices must not read another user's second factor.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Security (production defaults; relax them only for local HTTP) -------------------
# Only a proxy that sets X-Forwarded-Proto itself (and is the only way in) may be believed;
# otherwise any client could claim HTTPS. Opt in with TRUST_X_FORWARDED_PROTO=true.
TRUST_X_FORWARDED_PROTO = env.bool("TRUST_X_FORWARDED_PROTO", default=False)
if TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# HSTS preload (security.W021) is a commitment to the browsers' preload list that only the
# operator of the domain can make; opt in with SECURE_HSTS_PRELOAD=true.
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=["security.W021"])
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles from this site only, inline ones
# only with the per-request nonce ({{ request.csp_nonce }}). Inline style *attributes*
# (widths, chart colours; they cannot run code) are allowed. Extra sources for a block:
# CSP_EXTRA_<DIRECTIVE>, e.g. CSP_EXTRA_IMG_SRC=https://cdn.example.com.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
for _directive, _sources in CONTENT_SECURITY_POLICY["DIRECTIVES"].items():
    _sources.extend(env.list(f"CSP_EXTRA_{_directive.upper().replace('-', '_')}", default=[]))
# Uploaded files that Django stores are private like the rest of var/ (issue 12).
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# A raw bounce can be 20 MB; admin uploads (CSV imports, pasted messages) stay bounded.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=30 * 1024 * 1024)

# --- Celery ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or "django-db")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: in and out must be the SAME folder, and the control
    # and processed folders need absolute paths (shared/notes/embedded-default.md).
    _broker_dir = VAR_DIR / "celery" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
    for _sub in ("queue", "control", "processed"):
        (_broker_dir / _sub).mkdir(mode=0o700, parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=55 * 60)
CELERY_RESULT_EXTENDED = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# A run over stored messages (reprocessing, the notice sweep) is split into chunks of this many
# messages, one Celery task each, so every worker shares it (docs/deployment.md). A run whose
# chunks show no activity for PROCESSING_CHUNK_STALE_MINUTES is ended by the sweep with what it has
# (above Redis's 1-hour visibility timeout: a chunk of a worker killed outright comes back after it).
PROCESSING_CHUNK_SIZE = env.int("PROCESSING_CHUNK_SIZE", default=500)
PROCESSING_CHUNK_STALE_MINUTES = env.int("PROCESSING_CHUNK_STALE_MINUTES", default=75)

# --- Email (campaign sending) ---------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="smtp://localhost:25")
vars().update(EMAIL_CONFIG)
if _email_password := env_secret("EMAIL_PASSWORD"):  # apart from the URL (EMAIL_PASSWORD_FILE)
    EMAIL_HOST_PASSWORD = _email_password
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="campaigns@localhost")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# --- Alerts and incidents (issue 14; defaults justified in docs/incidents.md) -----------
# Alerts go to these addresses; empty: to ADMINS (Django's mail_admins).
BOUNCEMGR_ALERT_EMAILS = env.list("BOUNCEMGR_ALERT_EMAILS", default=[])
ADMINS = [("", a) for a in env.list("ADMINS", default=[])]
INCIDENT_WINDOW_MINUTES = env.int("INCIDENT_WINDOW_MINUTES", default=10)
INCIDENT_BLOCKED_THRESHOLD = env.int("INCIDENT_BLOCKED_THRESHOLD", default=25)
INCIDENT_BURST_MIN = env.int("INCIDENT_BURST_MIN", default=50)
INCIDENT_BURST_FACTOR = env.float("INCIDENT_BURST_FACTOR", default=10.0)
INCIDENT_BASELINE_HOURS = env.int("INCIDENT_BASELINE_HOURS", default=24)

# --- bouncemgr ------------------------------------------------------------------------
# VERP return path: <BOUNCE_LOCAL_PART>+<token>@<BOUNCE_RETURN_DOMAIN>
BOUNCE_LOCAL_PART = env.str("BOUNCE_LOCAL_PART", default="bounces")
BOUNCE_RETURN_DOMAIN = env.str("BOUNCE_RETURN_DOMAIN", default="bounces.localhost")
BOUNCE_TRACKING_HEADER = env.str("BOUNCE_TRACKING_HEADER", default="X-Bouncemgr-Token")
# Campaign sending: messages per SMTP connection; List-Unsubscribe header template with
# {token} (empty: no header), e.g. "<https://lists.example.com/unsubscribe/{token}>".
CAMPAIGN_SEND_BATCH_SIZE = env.int("CAMPAIGN_SEND_BATCH_SIZE", default=100)
CAMPAIGN_LIST_UNSUBSCRIBE = env.str("CAMPAIGN_LIST_UNSUBSCRIBE", default="")
# Messages deferred at send time (4xx) are retried after these waits (seconds); empty: never.
CAMPAIGN_DEFER_RETRY_DELAYS = [
    int(x) for x in env.list("CAMPAIGN_DEFER_RETRY_DELAYS", default=["900", "3600", "14400"]) if x.strip()
]
# CSV import page: the largest upload (larger files: manage.py import_contacts); files up to
# the inline size are imported in the request, larger ones by a task (contacts/import_jobs.py)
# from CONTACTS_IMPORT_DIR, which web and worker must share.
CONTACTS_IMPORT_UPLOAD_MAX_BYTES = env.int("CONTACTS_IMPORT_UPLOAD_MAX_BYTES", default=100 * 1024 * 1024)
CONTACTS_IMPORT_INLINE_MAX_BYTES = env.int("CONTACTS_IMPORT_INLINE_MAX_BYTES", default=256 * 1024)
CONTACTS_IMPORT_DIR = Path(env.str("CONTACTS_IMPORT_DIR", default=str(VAR_DIR / "imports")))
# Results pages: stored bounce figures older than this are refreshed; campaigns with up to
# CAMPAIGN_STATS_SYNC_LIMIT bounces are recounted in the request, larger ones in a task.
CAMPAIGN_STATS_MAX_AGE = env.int("CAMPAIGN_STATS_MAX_AGE", default=300)
CAMPAIGN_STATS_SYNC_LIMIT = env.int("CAMPAIGN_STATS_SYNC_LIMIT", default=20000)
# Rate guardrails (docs/guardrails.md): the initial site-wide thresholds (percent), written
# into the admin's "Guardrail settings" row on first use and edited there afterwards.
GUARDRAIL_MIN_SENT = env.int("GUARDRAIL_MIN_SENT", default=100)
GUARDRAIL_BOUNCE_WARN_PERCENT = env.str("GUARDRAIL_BOUNCE_WARN_PERCENT", default="5")
GUARDRAIL_BOUNCE_PAUSE_PERCENT = env.str("GUARDRAIL_BOUNCE_PAUSE_PERCENT", default="10")
GUARDRAIL_COMPLAINT_WARN_PERCENT = env.str("GUARDRAIL_COMPLAINT_WARN_PERCENT", default="0.1")
GUARDRAIL_COMPLAINT_PAUSE_PERCENT = env.str("GUARDRAIL_COMPLAINT_PAUSE_PERCENT", default="0.5")
GUARDRAIL_SENDING_WINDOW_HOURS = env.int("GUARDRAIL_SENDING_WINDOW_HOURS", default=24)

# --- REST API and webhooks (api/, docs/api.md) ---------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.ApiKeyAuthentication",
        "api.auth.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ApiPermission"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": env.str("API_THROTTLE_RATE", default="1200/min")},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
}
# A verified API key is remembered per process this many seconds (api.auth): a revocation
# reaches the other server processes within it. 0 checks the database on every request.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "bouncemgr API",
    "DESCRIPTION": "Bounces, contacts' bounce state, suppressions, campaigns' results, mailboxes and rules. "
    "See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # enum names in the schema (choices named in api/schema.py, next to the models' imports)
    "ENUM_NAME_OVERRIDES": {
        "BounceKindEnum": "api.schema.BounceKind",
        "BounceStateEnum": "api.schema.BounceState",
        "SuppressionKindEnum": "api.schema.SuppressionKind",
        "SuppressionReasonEnum": "api.schema.SuppressionReason",
        "ContactStatusEnum": "api.schema.ContactStatus",
        "CampaignStatusEnum": "api.schema.CampaignStatus",
        "RunStatusEnum": "api.schema.RunStatus",
        "RunTriggerEnum": "api.schema.RunTrigger",
        "IncidentStatusEnum": "api.schema.IncidentStatus",
        "IncidentTriggerEnum": "api.schema.IncidentTrigger",
        "RuleActionEnum": "api.schema.RuleAction",
        "RuleBounceTypeEnum": "api.schema.RuleBounceType",
    },
}
# Outgoing webhooks: request timeout (s), first retry delay (s, doubling up to 12 h, for up
# to WEBHOOK_RETRY_HOURS), consecutive failures that disable an endpoint, the sweep's period.
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
WEBHOOK_RETRY_HOURS = env.float("WEBHOOK_RETRY_HOURS", default=72.0)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=100)
WEBHOOK_SWEEP_SECONDS = env.float("WEBHOOK_SWEEP_SECONDS", default=30.0)
# Endpoints on loopback/private/link-local addresses are refused unless this is on
# (outbound requests must not reach the internal network: GitLab's rule).
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)

# --- Logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Intake: SMTP receiver, MTA accounting, ESP webhooks (docs/intake.md) -------------
# The bounce SMTP receiver (manage.py run_bounce_smtpd): the return-path domains it takes
# mail for (others: 550), where it listens, size and connection limits, STARTTLS files.
BOUNCE_SMTPD_DOMAINS = env.list("BOUNCE_SMTPD_DOMAINS", default=[BOUNCE_RETURN_DOMAIN])
BOUNCE_SMTPD_HOST = env.str("BOUNCE_SMTPD_HOST", default="127.0.0.1")
BOUNCE_SMTPD_PORT = env.int("BOUNCE_SMTPD_PORT", default=2525)
BOUNCE_SMTPD_MAX_SIZE = env.int("BOUNCE_SMTPD_MAX_SIZE", default=10 * 1024 * 1024)
BOUNCE_SMTPD_MAX_CONNECTIONS = env.int("BOUNCE_SMTPD_MAX_CONNECTIONS", default=100)
BOUNCE_SMTPD_TLS_CERT = env.str("BOUNCE_SMTPD_TLS_CERT", default="")
BOUNCE_SMTPD_TLS_KEY = env.str("BOUNCE_SMTPD_TLS_KEY", default="")
# celery (a task per committed batch), inline (a thread of the receiver), none (beat sweep only)
BOUNCE_SMTPD_PROCESS = env.str("BOUNCE_SMTPD_PROCESS", default="celery")
# Records pushed over HTTP (/intake/accounting/): largest body; the public base URL shown
# in the generated Logstash configuration (empty: taken from the admin request).
BOUNCE_INTAKE_MAX_BODY = env.int("BOUNCE_INTAKE_MAX_BODY", default=10 * 1024 * 1024)
BOUNCE_INTAKE_PUBLIC_URL = env.str("BOUNCE_INTAKE_PUBLIC_URL", default="")
# Amazon SNS subscription confirmation visits only SubscribeURLs matching this pattern.
BOUNCE_SNS_SUBSCRIBE_URL_PATTERN = env.str(
    "BOUNCE_SNS_SUBSCRIBE_URL_PATTERN", default=r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
)
# ESP webhooks through django-anymail (/intake/esp/<provider>/tracking/). A provider's
# route answers 404 until ANYMAIL_WEBHOOK_SECRET ("user:password", basic auth in the
# webhook URL) is set; Mailgun also needs its signing key, SendGrid checks signatures
# when its verification key is set.
ANYMAIL = {
    "WEBHOOK_SECRET": env_secret("ANYMAIL_WEBHOOK_SECRET", default="") or "",
    "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": env.bool("ANYMAIL_SES_AUTO_CONFIRM", default=True),
    "MAILGUN_WEBHOOK_SIGNING_KEY": env_secret("ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY", default="") or "",
    "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": env_secret(
        "ANYMAIL_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", default="") or None,
}

# --- Mailbox connectors (issue 12; kept as its own block by the connectors' owner) -----
# Local mbox/maildir mailboxes must live inside these folders (comma-separated); a
# relative mailbox path is taken inside the first one.
LOCAL_MAILBOX_ROOTS = env.list("LOCAL_MAILBOX_ROOTS", default=[str(VAR_DIR / "mail")])
# Refuse mail servers and OAuth2 token URLs on loopback, private, link-local and other
# non-public addresses, except the networks / host names in MAILBOX_ALLOWED_NETWORKS.
MAILBOX_BLOCK_PRIVATE_NETWORKS = env.bool("MAILBOX_BLOCK_PRIVATE_NETWORKS", default=False)
MAILBOX_ALLOWED_NETWORKS = env.list("MAILBOX_ALLOWED_NETWORKS", default=[])
