"""Settings for voicechat, read from the environment (and an optional `.env`) by django-environ."""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# DEBUG_DEFAULT: DEBUG when neither the environment nor `.env` sets it (`make run` and
# `make https` set it to true, so a DEBUG in `.env` still wins over them).
DEBUG = env.bool("DEBUG", default=env.bool("DEBUG_DEFAULT", default=False))
# A fixed development key is only acceptable while DEBUG is on; the check
# voicechat.E001 refuses to run a non-debug server without a real one.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-only-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "csp",
    "voicechat",
]

MIDDLEWARE = [
    # First: /healthz answers a load balancer whatever its Host, over plain HTTP too.
    "voicechat.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

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

WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Turns are written from worker threads while pages are read: WAL and a
    # busy timeout keep SQLite from answering "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"})
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool of open connections (psycopg-pool), as Django advises under ASGI: without one,
    # each database call opened a connection of its own (7 ms, 1.5 ms of it the process's CPU),
    # and 300 sockets opening at once took 22 s instead of 6 s (bench/relay.py).
    # DATABASE_POOL_MAX_SIZE=0 turns it off, e.g. behind PgBouncer.
    pool_size = env.int("DATABASE_POOL_MAX_SIZE", default=10)
    if pool_size > 0:
        # A call waits at most DATABASE_POOL_TIMEOUT for a connection: with the database down,
        # every call waits in turn in the one database thread, so it must fail fast.
        pool_timeout = env.float("DATABASE_POOL_TIMEOUT", default=1.0)
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, pool_size),
            "max_size": pool_size,
            "timeout": pool_timeout,
            # The pool gives up reconnecting after this and tries again at the next call, so a
            # database back after an outage is used within about a second, not after backoff.
            "reconnect_timeout": pool_timeout,
        }
        # A pooled connection the database dropped (a restart) is replaced before it is used.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Each socket waits on the layer with a 5 s BZPOPMIN; redis-py 8 gives up reading
            # after 5 s by default, which ends sockets at random after 5 s: no read timeout, as
            # redis-py 7 had.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username
# from one address, that username is refused from that address for LOGIN_LOCKOUT_MINUTES (each
# further try starts the wait again). Username and address together: nobody can lock every user
# out from one address, nor keep guessing one account's password from it.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "voicechat.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "voicechat.client_ip.client_ip"
# Reverse proxies (nginx, a load balancer) in front of the app that append the address they
# saw to X-Forwarded-For. 0: the address of the connection is the client's. Only set it when
# the app cannot be reached but through them: the header is otherwise the client's to forge.
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)

# HTTPS and browser protections; the development server (DEBUG on) speaks plain HTTP.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # the pages' scripts never read it
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Behind a proxy that ends TLS, Django sees plain HTTP unless it trusts the proxy's word;
# only a proxy that always sets (never passes on) X-Forwarded-Proto may be trusted.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Pages load only their own scripts, styles and sockets (django-csp), in every mode.
# 'self' in connect-src covers the page's own ws:// and wss:// origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "connect-src": [SELF],
        "img-src": [SELF, "data:"],
        "style-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Production (STATIC_HASHED=true): `manage.py collectstatic` copies the files to STATIC_ROOT under
# names with a hash of their content (ES module imports rewritten to match) beside gzipped copies,
# and pages link those names. The app serves them itself (WhiteNoise), hashed names cached for
# good; nginx in front serves STATIC_ROOT from disk instead (deploy/nginx-site.conf).
# Off (development, tests): plain names, served by the development and test servers.
STATIC_HASHED = env.bool("STATIC_HASHED", default=False)
if STATIC_HASHED:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "voicechat.static_files.HashedStaticFilesStorage"},
    }
    # Right after SecurityMiddleware, as WhiteNoise asks: its HTTPS redirect still applies, and
    # nothing else (sessions, sign-in throttling) runs for a static file.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "voicechat.static_files.StaticFilesMiddleware",
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The realtime service: Azure OpenAI if its endpoint is set (with its key, or without one
# Microsoft Entra ID through azure-identity), else OpenAI if its key is set, else the local
# engine below; see the README.
AZURE_OPENAI_ENDPOINT = env.str("AZURE_OPENAI_ENDPOINT", default="")
AZURE_OPENAI_API_KEY = env.str("AZURE_OPENAI_API_KEY", default="")
AZURE_OPENAI_DEPLOYMENT = env.str("AZURE_OPENAI_DEPLOYMENT", default="gpt-realtime")
AZURE_OPENAI_API_VERSION = env.str("AZURE_OPENAI_API_VERSION", default="")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_REALTIME_MODEL = env.str("OPENAI_REALTIME_MODEL", default="gpt-realtime")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
REALTIME_VOICE = env.str("REALTIME_VOICE", default="alloy")
REALTIME_INSTRUCTIONS = env.str(
    "REALTIME_INSTRUCTIONS",
    default="You are a helpful, friendly voice assistant. Keep your answers short and conversational.",
)
REALTIME_TRANSCRIPTION_MODEL = env.str("REALTIME_TRANSCRIPTION_MODEL", default="whisper-1")
REALTIME_VAD_SILENCE_MS = env.int("REALTIME_VAD_SILENCE_MS", default=200)
REALTIME_CONNECT_TIMEOUT = env.float("REALTIME_CONNECT_TIMEOUT", default=10.0)
REALTIME_MAX_CLIENT_FRAME_BYTES = env.int("REALTIME_MAX_CLIENT_FRAME_BYTES", default=256 * 1024)
# How often one conversation may go on in a new service session when the old one
# ends on its own (session_expired, dropped connection).
REALTIME_MAX_RESUMES = env.int("REALTIME_MAX_RESUMES", default=3)
# How long after its socket dropped a conversation can be taken up again by the page.
REALTIME_RESUME_WINDOW_SECONDS = env.int("REALTIME_RESUME_WINDOW_SECONDS", default=300)

# Limits per socket and per user (0 turns a limit off).
REALTIME_MAX_CLIENT_EVENTS_PER_SECOND = env.int("REALTIME_MAX_CLIENT_EVENTS_PER_SECOND", default=50)
# Refused frames (too big, malformed, too fast) a socket may send within a minute before it is closed.
REALTIME_MAX_REFUSED_FRAMES = env.int("REALTIME_MAX_REFUSED_FRAMES", default=20)
REALTIME_MAX_SESSIONS_PER_USER = env.int("REALTIME_MAX_SESSIONS_PER_USER", default=2)
REALTIME_MAX_SESSION_MINUTES = env.float("REALTIME_MAX_SESSION_MINUTES", default=30)
REALTIME_IDLE_TIMEOUT_MINUTES = env.float("REALTIME_IDLE_TIMEOUT_MINUTES", default=5)
# Connecting to the voice service again after a 429 or a transient failure: how often, and the
# first wait (doubling each time, at most REALTIME_RETRY_MAX_SECONDS, or what Retry-After asks).
REALTIME_CONNECT_RETRIES = env.int("REALTIME_CONNECT_RETRIES", default=3)
REALTIME_RETRY_BASE_SECONDS = env.float("REALTIME_RETRY_BASE_SECONDS", default=1.0)
REALTIME_RETRY_MAX_SECONDS = env.float("REALTIME_RETRY_MAX_SECONDS", default=8.0)
# How long records that could not be saved (database down) keep being retried after the socket closed.
REALTIME_SAVE_RETRY_SECONDS = env.float("REALTIME_SAVE_RETRY_SECONDS", default=600)

# A user's daily budget, counted from midnight in TIME_ZONE (0: no limit).
BUDGET_DAILY_MINUTES = env.float("BUDGET_DAILY_MINUTES", default=120)
BUDGET_DAILY_TOKENS = env.int("BUDGET_DAILY_TOKENS", default=1_000_000)

# Prices for the cost estimate, in USD per million tokens (gpt-realtime and its
# transcription model, as listed by Azure; check your agreement). The local engine costs nothing.
PRICE_TEXT_INPUT = env.float("PRICE_TEXT_INPUT", default=4.00)
PRICE_TEXT_CACHED_INPUT = env.float("PRICE_TEXT_CACHED_INPUT", default=0.40)
PRICE_TEXT_OUTPUT = env.float("PRICE_TEXT_OUTPUT", default=16.00)
PRICE_AUDIO_INPUT = env.float("PRICE_AUDIO_INPUT", default=32.00)
PRICE_AUDIO_CACHED_INPUT = env.float("PRICE_AUDIO_CACHED_INPUT", default=0.40)
PRICE_AUDIO_OUTPUT = env.float("PRICE_AUDIO_OUTPUT", default=64.00)
# Transcription billed by the minute (whisper-1) or by the token (gpt-4o-transcribe models).
PRICE_TRANSCRIPTION_PER_MINUTE = env.float("PRICE_TRANSCRIPTION_PER_MINUTE", default=0.006)
PRICE_TRANSCRIPTION_AUDIO_INPUT = env.float("PRICE_TRANSCRIPTION_AUDIO_INPUT", default=6.00)
PRICE_TRANSCRIPTION_TEXT_INPUT = env.float("PRICE_TRANSCRIPTION_TEXT_INPUT", default=2.50)
PRICE_TRANSCRIPTION_TEXT_OUTPUT = env.float("PRICE_TRANSCRIPTION_TEXT_OUTPUT", default=10.00)

# Conversations older than this many days are deleted by `manage.py purge_conversations` (0: kept).
CONVERSATION_RETENTION_DAYS = env.int("CONVERSATION_RETENTION_DAYS", default=0)

# The built-in local voice engine, used when AZURE_OPENAI_ENDPOINT and OPENAI_API_KEY are empty.
# Better models on disk, never downloaded: a faster-whisper (CTranslate2) model
# folder and a piper voice file; and an OpenAI-compatible chat-completions URL.
LOCAL_WHISPER_MODEL = env.str("LOCAL_WHISPER_MODEL", default="")
LOCAL_PIPER_VOICE = env.str("LOCAL_PIPER_VOICE", default="")
LOCAL_LLM_URL = env.str("LOCAL_LLM_URL", default="")
LOCAL_LLM_MODEL = env.str("LOCAL_LLM_MODEL", default="")

# The app's own log lines, to standard error: plain text, or one JSON object per line for a
# log collector (LOG_FORMAT=json). Each conversation logs a `session_started` and a
# `session_ended` line with its ids, duration, turns, tokens and end reason (voicechat/session_log.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "{asctime} {levelname} {name} {message}", "style": "{"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "{asctime}{levelname}{name}{message}",
            "style": "{",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "text"}
    },
    # One handler, on the root logger: every library's warnings come out in the same format,
    # and a server that configured logging before (daphne does) does not print lines twice.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "voicechat": {"level": env.str("LOG_LEVEL", default="INFO")},
    },
}
