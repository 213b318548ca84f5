"""`otel-audit init` (SPEC section 13) and the generated configuration reference."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO

from receiver.commands.init import next_steps
from receiver.config import Config, load_config
from receiver.config_reference import DOC, render

_HEADER_SAFE = re.compile(r"[A-Za-z0-9_-]{32}")


def run_cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_init_writes_a_config_serve_accepts_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "audit"
    done = run_cli("init", str(target), "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    text = (target / "otel-audit.yaml").read_text()
    assert text.count("#") > 10  # commented
    assert (target / "otel-audit.yaml").stat().st_mode & 0o077 == 0  # it holds the tokens
    cwd = os.getcwd()
    os.chdir(target)  # paths in the file are relative to DIR
    try:
        config = load_config("otel-audit.yaml")
    finally:
        os.chdir(cwd)
    ingest, admin = config.ingest_tokens[0].token, config.admin_tokens[0].token
    assert _HEADER_SAFE.fullmatch(ingest) and _HEADER_SAFE.fullmatch(admin) and ingest != admin
    assert config.ingest_tokens[0].tenant == "acme" and config.admin_tokens[0].tenants == ("*",)
    # the signing key is outside the data directory, the checkpoints are published in DIR
    key = (target / config.integrity.key).resolve()
    assert key.is_file() and (target / "keys" / "otel-audit-signing.pub").is_file()
    data_dir = (target / config.store.removeprefix("chdb://")).resolve()
    assert data_dir not in key.parents
    assert [(p.dir, p.url) for p in config.integrity.publish] == [("./checkpoints", None)]
    assert (target / "checkpoints").is_dir()
    # what to run next, with the real ingest token
    assert f"export OTEL_AUDIT_TOKEN={ingest}" in done.stdout
    assert f"cd {target} && otel-audit serve --config otel-audit.yaml" in done.stdout
    assert "http://127.0.0.1:8318/" in done.stdout and "16" in done.stdout

    again = run_cli("init", str(target))
    assert again.returncode == 2
    assert again.stderr.strip().endswith("refusing to overwrite it (remove it, or init another directory)")
    assert (target / "otel-audit.yaml").read_text() == text
    second = run_cli("init", str(tmp_path / "other"))
    assert second.returncode == 0
    assert load_config(tmp_path / "other" / "otel-audit.yaml").ingest_tokens[0].token != ingest


def test_next_steps_show_the_tokens(tmp_path):
    text = next_steps(tmp_path, "acme", "i" * 32, "a" * 32, tmp_path / "k", tmp_path / "p")
    assert "OTEL_AUDIT_TOKEN=" + "i" * 32 in text and "OTEL_AUDIT_ADMIN_TOKEN=" + "a" * 32 in text


def test_configuration_reference_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/CONFIGURATION.md is stale: run `python -m receiver.config_reference`"
    )
    check = subprocess.run(
        [sys.executable, "-m", "receiver.config_reference", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert check.returncode == 0, check.stderr


def test_every_config_field_is_described_and_in_the_reference():
    from receiver.config_reference import _models

    text = render()
    seen: set[type] = set()
    todo: list[type] = [Config]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description="
            assert f"| `{name}` |" in text
            todo += _models(info.annotation)
    assert "length ≥ 16" in text  # the token minimum is documented


def test_stale_reference_is_detected(tmp_path):
    stale = tmp_path / "CONFIGURATION.md"
    stale.write_text(render().replace("OTLP/gRPC address", "gRPC address"))
    check = subprocess.run(
        [sys.executable, "-m", "receiver.config_reference", "--check", "--out", str(stale)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert check.returncode == 1 and "is stale" in check.stderr
