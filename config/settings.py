"""Settings for voicechat, read from the environment (and an optional `.env`) by django-environ."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
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
    "voicechat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The realtime service. With no endpoint the bridge has nothing to talk to;
# see the README for both endpoint forms.
AZURE_OPENAI_ENDPOINT = env.str("AZURE_OPENAI_ENDPOINT", default="")
AZURE_OPENAI_API_KEY = env.str("AZURE_OPENAI_API_KEY", default="")
AZURE_OPENAI_DEPLOYMENT = env.str("AZURE_OPENAI_DEPLOYMENT", default="gpt-realtime")
AZURE_OPENAI_API_VERSION = env.str("AZURE_OPENAI_API_VERSION", default="")
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

# The built-in local voice engine, used when AZURE_OPENAI_ENDPOINT is empty.
# Better models on disk, never downloaded: a faster-whisper (CTranslate2) model
# folder and a piper voice file; and an OpenAI-compatible chat-completions URL.
LOCAL_WHISPER_MODEL = env.str("LOCAL_WHISPER_MODEL", default="")
LOCAL_PIPER_VOICE = env.str("LOCAL_PIPER_VOICE", default="")
LOCAL_LLM_URL = env.str("LOCAL_LLM_URL", default="")
LOCAL_LLM_MODEL = env.str("LOCAL_LLM_MODEL", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "voicechat": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    },
}
