"""configure() and the instrumentor check their inputs and say, naming otel_audit and the
parameter, what is wrong (issue 20: a literal "…" token used to give endless gRPC-core noise)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import otel_audit
from otel_audit.config import EmitterConfigError, resolve_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"token": "…"}, "otel_audit: token contains '…' (U+2026) at position 1"),
        ({"token": "abc def ghi jkl mno"}, "otel_audit: token contains ' ' (U+0020) at position 4"),
        ({"endpoint": "127.0.0.1:4317"}, "otel_audit: endpoint must be an http(s) URL"),
        (
            {"endpoint": "http://127.0.0.1:99999"},
            "otel_audit: endpoint 'http://127.0.0.1:99999' has no valid port",
        ),
        ({"endpoint": "http://:4317"}, "otel_audit: endpoint 'http://:4317' has no host"),
        ({"headers": {"x team": "a"}}, "otel_audit: headers: 'x team' is not a valid header name"),
        ({"headers": {"x-team": "caf\u00e9"}}, "otel_audit: headers: the value of 'x-team' contains 'é'"),
        ({"protocol": "udp"}, "otel_audit: protocol must be one of"),
        ({"service_name": " "}, "otel_audit: service_name must be printable text"),
        ({"timeout": 0}, "otel_audit: timeout must be positive"),
    ],
)
def test_configure_names_the_bad_parameter(kwargs, expected) -> None:
    with pytest.raises(EmitterConfigError) as info:
        otel_audit.configure(spool_dir="off", **kwargs)
    assert str(info.value).startswith(expected), str(info.value)
    assert not otel_audit.is_configured()


def test_environment_values_name_their_variable() -> None:
    with pytest.raises(EmitterConfigError, match=r"^otel_audit: token \(OTEL_AUDIT_TOKEN\) contains"):
        resolve_settings(environ={"OTEL_AUDIT_TOKEN": "…"})
    with pytest.raises(EmitterConfigError, match=r"^otel_audit: endpoint \(OTEL_AUDIT_ENDPOINT\)"):
        resolve_settings(environ={"OTEL_AUDIT_ENDPOINT": "grpc://x:1"})
    with pytest.raises(
        EmitterConfigError, match=r"^otel_audit: timeout \(OTEL_AUDIT_TIMEOUT\) must be a number"
    ):
        resolve_settings(environ={"OTEL_AUDIT_TIMEOUT": "ten"})
    with pytest.raises(EmitterConfigError, match=r"^otel_audit: headers \(OTEL_AUDIT_HEADERS\)"):
        resolve_settings(environ={"OTEL_AUDIT_HEADERS": "x-team=caf\u00e9"})


def test_a_token_from_init_is_accepted() -> None:
    from receiver.commands.init import new_token

    settings = resolve_settings(token=new_token(), spool_dir="off", environ={})
    assert settings.header_dict()["authorization"].startswith("Bearer ")


_APP = textwrap.dedent(
    """
    import asyncio, httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request):
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", hello)])

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            print((await client.get("/")).text)

    asyncio.run(main())
    """
)


def _instrumented(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(_APP)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(env, OTEL_AUDIT_SPOOL_DIR="off", OTEL_LOGS_EXPORTER="none", OTEL_TRACES_EXPORTER="none")
    environ["OTEL_METRICS_EXPORTER"] = "none"
    return subprocess.run(
        [str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        cwd=tmp_path,
    )


def test_instrumented_app_with_a_bad_token_runs_and_says_why_once(tmp_path) -> None:
    done = _instrumented(tmp_path, OTEL_AUDIT_TOKEN="…", OTEL_AUDIT_SENSITIVE_ROUTES="GET /=page")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("otel_audit: token (OTEL_AUDIT_TOKEN) contains '…'")
    assert "audit events will NOT be sent" in lines[0]


def test_instrumented_app_with_bad_routes_or_proxies_names_the_variable(tmp_path) -> None:
    done = _instrumented(tmp_path, OTEL_AUDIT_TRUSTED_PROXIES="10.0.0.0/33")
    assert done.returncode == 0 and done.stdout.strip() == "hello"
    assert done.stderr.strip().startswith("otel_audit: OTEL_AUDIT_TRUSTED_PROXIES:"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
