"""Auto-instrumentation: ``opentelemetry-instrument uvicorn app:app`` audits Starlette/FastAPI apps.

``AuditInstrumentor`` is registered as the ``opentelemetry_instrumentor`` entry point ``otel_audit``.
It wraps ``Starlette.build_middleware_stack`` (and FastAPI's own, when FastAPI is installed) so
every application built afterwards has ``AuditMiddleware`` outermost, and calls ``configure()``
unless the application already did. ``uninstrument()`` restores the original methods (stacks
already built keep their middleware). Everything is configured by environment variables:

==================================  ===========================================================
``OTEL_AUDIT_ENDPOINT``             OTLP endpoint (else ``OTEL_EXPORTER_OTLP_ENDPOINT``, else
                                    ``http://127.0.0.1:4317``; ``:4318/v1/logs`` for HTTP)
``OTEL_AUDIT_PROTOCOL``             ``grpc`` (default) or ``http/protobuf``
``OTEL_AUDIT_TOKEN``                ingest token, sent as ``authorization: Bearer <token>``
``OTEL_AUDIT_HEADERS``              extra export headers, ``k1=v1,k2=v2``
``OTEL_AUDIT_INSECURE``             ``true`` for a plaintext gRPC channel (default: from the URL)
``OTEL_AUDIT_TIMEOUT``              export timeout in seconds (default 10)
``OTEL_AUDIT_SERVICE_NAME``         ``service.name`` (else ``OTEL_SERVICE_NAME``)
``OTEL_AUDIT_REDACT``               comma list of field names redacted on top of the defaults
``OTEL_AUDIT_REUSE_GLOBAL``         ``true``: emit through the global SDK LoggerProvider instead
                                    of a provider of our own
``OTEL_AUDIT_SENSITIVE_ROUTES``     audited routes, ``;``-separated
                                    ``[METHODS ]PATH=RESOURCE_TYPE[:ACTION]``, e.g.
                                    ``GET /patients/{id}=patient;DELETE /documents/{id}=document``
``OTEL_AUDIT_USER_HEADER``          request header holding the actor id (e.g. ``x-user-id``)
``OTEL_AUDIT_TENANT_HEADER``        request header holding the tenant id
``OTEL_AUDIT_SESSION_HEADER``       request header holding the session id
``OTEL_AUDIT_USER_RESOLVER``        ``module:function`` taking the ASGI scope, returning the actor
                                    id (wins over the header)
``OTEL_AUDIT_TENANT_RESOLVER``      ``module:function`` for the tenant id (wins over the header)
``OTEL_AUDIT_TRUSTED_PROXIES``      comma list of proxy CIDRs whose ``X-Forwarded-For`` is honoured
``OTEL_AUDIT_ACTOR_TYPE``           actor type of request users (default ``user``)
==================================  ===========================================================

``AuditInstrumentor().instrument(**kw)`` also takes ``AuditMiddleware`` keyword arguments (they win
over the environment) and ``logger_provider=`` (passed to ``configure()``).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_audit.asgi import AuditMiddleware, header_resolver
from otel_audit.config import split_list
from otel_audit.pipeline import configure, is_configured
from otel_audit.proxies import TrustedProxies
from otel_audit.routes import parse_sensitive_routes

ENV_REUSE_GLOBAL = "OTEL_AUDIT_REUSE_GLOBAL"
ENV_SENSITIVE_ROUTES = "OTEL_AUDIT_SENSITIVE_ROUTES"
ENV_USER_HEADER = "OTEL_AUDIT_USER_HEADER"
ENV_TENANT_HEADER = "OTEL_AUDIT_TENANT_HEADER"
ENV_SESSION_HEADER = "OTEL_AUDIT_SESSION_HEADER"
ENV_USER_RESOLVER = "OTEL_AUDIT_USER_RESOLVER"
ENV_TENANT_RESOLVER = "OTEL_AUDIT_TENANT_RESOLVER"
ENV_TRUSTED_PROXIES = "OTEL_AUDIT_TRUSTED_PROXIES"
ENV_ACTOR_TYPE = "OTEL_AUDIT_ACTOR_TYPE"

log = logging.getLogger("otel_audit")

#: Classes whose ``build_middleware_stack`` is wrapped, when importable and defined on the class.
_TARGETS = (("starlette.applications", "Starlette"), ("fastapi.applications", "FastAPI"))
_MIDDLEWARE_OPTIONS = (
    "user_resolver",
    "tenant_resolver",
    "session_resolver",
    "trusted_proxies",
    "sensitive",
    "actor_type",
)


def load_callable(spec: str) -> Callable[..., Any]:
    """``"package.module:attr.path"`` → the object it names."""
    module_name, sep, attr_path = spec.strip().partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"expected 'module:function', got {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def middleware_options_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``AuditMiddleware`` keyword arguments from the ``OTEL_AUDIT_*`` variables."""
    env = os.environ if env is None else env
    try:
        sensitive = parse_sensitive_routes(env.get(ENV_SENSITIVE_ROUTES, ""))
    except ValueError as exc:
        raise ValueError(f"otel_audit: {ENV_SENSITIVE_ROUTES}: {exc}") from exc
    try:
        proxies = split_list(env.get(ENV_TRUSTED_PROXIES, ""))
        TrustedProxies.parse(proxies)  # refused here, with the variable's name
    except ValueError as exc:
        raise ValueError(f"otel_audit: {ENV_TRUSTED_PROXIES}: {exc}") from exc
    options: dict[str, Any] = {
        "sensitive": sensitive,
        "trusted_proxies": proxies,
        "actor_type": env.get(ENV_ACTOR_TYPE, "").strip() or "user",
    }
    for option, resolver_env, header_env in (
        ("user_resolver", ENV_USER_RESOLVER, ENV_USER_HEADER),
        ("tenant_resolver", ENV_TENANT_RESOLVER, ENV_TENANT_HEADER),
        ("session_resolver", None, ENV_SESSION_HEADER),
    ):
        spec = env.get(resolver_env, "").strip() if resolver_env else ""
        header = env.get(header_env, "").strip()
        if spec:
            try:
                options[option] = load_callable(spec)
            except Exception as exc:
                raise ValueError(f"otel_audit: {resolver_env}={spec!r} cannot be loaded: {exc}") from exc
        elif header:
            options[option] = header_resolver(header)
    return options


def _wrap(original: Callable[[Any], Any], options: Mapping[str, Any]) -> Callable[[Any], Any]:
    @functools.wraps(original)
    def build_middleware_stack(app: Any) -> Any:
        stack = original(app)
        if isinstance(stack, AuditMiddleware):  # a subclass calling the wrapped base method
            return stack
        return AuditMiddleware(stack, **options)

    build_middleware_stack.__otel_audit_original__ = original  # type: ignore[attr-defined]
    return build_middleware_stack


class AuditInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Puts ``AuditMiddleware`` around every Starlette/FastAPI app built while instrumented."""

    _patched: tuple[tuple[type, Callable[[Any], Any]], ...] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("starlette >= 0.13",)

    def _instrument(self, **kwargs: Any) -> None:
        # A bad OTEL_AUDIT_* value must not stop the application: one clear line, no auditing.
        try:
            options = middleware_options_from_env()
            options.update({k: kwargs[k] for k in _MIDDLEWARE_OPTIONS if k in kwargs})
            provider = kwargs.get("logger_provider")
            if provider is not None:
                configure(logger_provider=provider)
            elif not is_configured():
                reuse = os.environ.get(ENV_REUSE_GLOBAL, "").strip().lower() in ("1", "true", "yes", "on")
                configure(reuse_global=reuse)
        except Exception as exc:
            message = str(exc) if str(exc).startswith("otel_audit:") else f"otel_audit: {exc}"
            log.error("%s; audit events will NOT be sent (the application runs unaudited)", message)
            return
        patched: list[tuple[type, Callable[[Any], Any]]] = []
        for module_name, class_name in _TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            cls = getattr(module, class_name, None)
            original = vars(cls).get("build_middleware_stack") if isinstance(cls, type) else None
            if cls is None or original is None:
                continue
            cls.build_middleware_stack = _wrap(original, options)
            patched.append((cls, original))
        self._patched = tuple(patched)

    def _uninstrument(self, **kwargs: Any) -> None:
        for cls, original in self._patched:
            cls.build_middleware_stack = original  # type: ignore[attr-defined]
        self._patched = ()
