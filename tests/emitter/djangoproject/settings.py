"""Settings of the Django project the otel_audit.django tests run (SQLite file from the environment)."""

from __future__ import annotations

import os

SECRET_KEY = "test-only-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "djangoproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djangoproject.shop",
    "otel_audit.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "otel_audit.django.middleware.AuditContextMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["OTEL_AUDIT_DJANGO_DB"]}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
OTEL_AUDIT = {
    "tenant_resolver": lambda request: request.headers.get("X-Tenant"),
    "trusted_proxies": ["127.0.0.0/8"],
    "sensitive": ["GET /products/{pk}=product"],
    "exclude": ["sessions", "contenttypes", "admin", "auth.permission", "shop.Untracked"],
    "exclude_fields": ["last_login", "shop.Product.updated_at"],
}
