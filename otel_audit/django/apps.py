"""The app config: connects the model signals and the queryset and admin hooks once Django is ready."""

from __future__ import annotations

from django.apps import AppConfig


class OtelAuditConfig(AppConfig):
    name = "otel_audit.django"
    label = "otel_audit"
    verbose_name = "OpenTelemetry audit"

    def ready(self) -> None:
        from otel_audit.django.options import DjangoOptions
        from otel_audit.django.tracking import install

        install(DjangoOptions.from_settings())
