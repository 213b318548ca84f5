"""``otel_audit.django``: the Django app. Add it to ``INSTALLED_APPS`` and its middleware after
``AuthenticationMiddleware``::

    INSTALLED_APPS = [..., "otel_audit.django"]
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "otel_audit.django.middleware.AuditContextMiddleware", ...]
    OTEL_AUDIT = {"trusted_proxies": ["10.0.0.0/8"], "exclude_fields": ["last_login"]}

Saves and deletes of the tracked models (signals), many-to-many changes, ``QuerySet.update()``,
``bulk_create()``, ``bulk_update()`` and queryset deletes become ``create``/``update``/``delete``
events after the transaction commits; admin actions become ``execute`` events. Settings: see
``otel_audit.django.options``.
"""
