"""`otel-audit viewer-token` as a vendor's operator runs it: through a running receiver (--server,
an admin token) and signed locally from the config (the mint recorded in the store); bad flags
are one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import yaml
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS
from conftest import REPO, start_receiver

from receiver.viewer.tokens import ViewerTokens

SECRET = "viewer-secret-cli-0123456789abcdef-0123"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=180
    )


def test_viewer_token_through_serve(store):
    receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS, viewer={"secrets": [SECRET]})
    base = f"http://127.0.0.1:{receiver.admin_port}"
    try:
        made = run_cli(
            "viewer-token", "--server", base, "--token", ADMIN, "--tenant", "acme", "--actor", "alice",
            "--ttl", "15m", "--export", "--json",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        doc = json.loads(made.stdout)
        claims = ViewerTokens([SECRET]).verify(doc["token"])
        assert (claims.tenant, claims.actor, claims.can_export) == ("acme", "alice", True)
        assert claims.expires_at - claims.issued_at == 900
        answer = httpx.get(f"{base}/api/events", headers={"authorization": f"Bearer {doc['token']}"})
        assert answer.status_code == 200
        url_only = run_cli("viewer-token", "--server", base, "--token", ADMIN, "--tenant", "acme")
        assert url_only.returncode == 0 and url_only.stdout.startswith(f"{base}/viewer#token=oav1.")
        refused = run_cli("viewer-token", "--server", base, "--token", ACME_AUDITOR, "--tenant", "acme")
        assert refused.returncode == 2 and "admin token" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        receiver.stop_listeners()


def test_viewer_token_signed_locally_and_recorded(tmp_path: Path):
    config = tmp_path / "otel-audit.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store": f"chdb://{tmp_path / 'data'}",
                "listen": {"admin": "127.0.0.1:18318"},
                "viewer": {"secrets": [SECRET], "base_url": "https://audit.example.com"},
            }
        )
    )
    made = run_cli("viewer-token", "--config", str(config), "--tenant", "acme", "--ttl", "2h", "--json")
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert doc["url"].startswith("https://audit.example.com/viewer#token=oav1.")
    claims = ViewerTokens([SECRET]).verify(doc["token"])
    assert claims.tenant == "acme" and claims.actor is None and not claims.can_export
    assert claims.expires_at - claims.issued_at == 7200
    found = run_cli(
        "query", "--config", str(config), "--tenant", "acme", "--action", "grant", "--format", "jsonl"
    )
    assert found.returncode == 0, found.stderr
    (grant,) = [json.loads(line) for line in found.stdout.splitlines()]
    assert grant["resource_id"] == f"viewer-token:{claims.token_id}"
    assert grant["user_agent"] == "otel-audit viewer-token"


def test_bad_flags_are_one_line(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"store": f"chdb://{tmp_path / 'data'}"}))
    for args, words in (
        (("--tenant", "acme", "--ttl", "2x"), "ttl"),
        (("--tenant", "acme", "--ttl", "2d"), "ttl_seconds"),
        (("--tenant", "acme", "--actor", "bo*"), "actor"),
        (("--tenant", "acme"), "viewer.secrets"),
    ):
        result = run_cli("viewer-token", "--config", str(config), *args)
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
