"""Run by .ci/wheel-smoke with the clean virtualenv's python, outside the checkout:
``base`` checks the emitter-only install, ``receiver`` the install with the receiver extra."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def fail(message: str) -> None:
    print(f"wheel-smoke: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def base() -> None:
    import otel_audit

    if "site-packages" not in otel_audit.__file__:
        fail(f"otel_audit imported from {otel_audit.__file__}, not the installed wheel")
    try:
        otel_audit.configure(token="…", spool_dir="off")
        fail("configure() accepted a token that cannot be sent in a header")
    except ValueError as exc:
        if not str(exc).startswith("otel_audit: token"):
            fail(f"unclear configure() error: {exc}")
    done = subprocess.run([str(BIN / "otel-audit"), "--help"], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    if done.returncode != 2 or len(lines) != 1 or "otel-audit[receiver]" not in lines[0]:
        fail(f"base install's otel-audit: exit {done.returncode}, stderr {done.stderr!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receiver() -> None:
    import httpx
    import yaml

    import otel_audit

    work = Path(tempfile.mkdtemp())
    cli = str(BIN / "otel-audit")
    subprocess.run([cli, "init", "audit"], cwd=work, check=True, capture_output=True)
    config = yaml.safe_load((work / "audit" / "otel-audit.yaml").read_text())
    ingest, admin = config["ingest_tokens"][0]["token"], config["admin_tokens"][0]["token"]
    grpc, http, admin_port = free_port(), free_port(), free_port()
    listen = ["--grpc-listen", f"127.0.0.1:{grpc}", "--http-listen", f"127.0.0.1:{http}"]
    serve = subprocess.Popen(
        [cli, "serve", "--config", "otel-audit.yaml", *listen, "--admin-listen", f"127.0.0.1:{admin_port}"],
        cwd=work / "audit",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        if not serve.stdout.readline().startswith("otel-audit serving"):
            fail(f"serve did not start: {serve.stderr.read() if serve.poll() is not None else ''}")
        otel_audit.configure(
            endpoint=f"http://127.0.0.1:{grpc}", token=ingest, service_name="smoke", spool_dir="off"
        )
        otel_audit.record(action="read", resource_type="wheel", resource_id="smoke-1", user_id="ci")
        otel_audit.force_flush()
        env = {**os.environ, "OTEL_AUDIT_ADMIN_TOKEN": admin}
        server = ["--server", f"http://127.0.0.1:{admin_port}"]
        deadline = time.monotonic() + 60
        while True:
            query = subprocess.run(
                [cli, "query", *server, "--format", "csv"], env=env, capture_output=True, text=True
            )
            if "smoke-1" in query.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if "smoke-1" not in query.stdout:
            fail(f"the event did not arrive: {query.stdout!r} {query.stderr!r}")
        ui = httpx.get(f"http://127.0.0.1:{admin_port}/", timeout=30)
        if ui.status_code != 200 or "<html" not in ui.text.lower():
            fail(f"the admin UI is not in the wheel: {ui.status_code}")
        verify = subprocess.run([cli, "verify", *server], env=env, capture_output=True, text=True)
        if verify.returncode != 0:
            fail(f"verify: {verify.stdout} {verify.stderr}")
    finally:
        otel_audit.shutdown()
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
    if serve.returncode != 0:
        fail(f"serve exited {serve.returncode}: {serve.stderr.read()}")


if __name__ == "__main__":
    {"base": base, "receiver": receiver}[sys.argv[1]]()
