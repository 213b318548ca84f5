"""Where the signing key lives: beside the data by default (0700 directory, 0600 file), never
inside the store's data directory unless the config says so, and then ``serve`` warns loudly."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from conftest import start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from receiver.config import ConfigError, load_config
from receiver.integrity.checkpoints import generate_key, read_published
from receiver.integrity.setup import default_verifiers, resolve
from receiver.integrity.verify import verify_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_key_is_made_beside_the_data_dir_with_private_modes(store):
    integrity = load_config(None).integrity
    settings = resolve(integrity, store)
    data = Path(store.path).resolve()
    assert settings.signer is not None and settings.key_path is not None
    assert not settings.key_path.resolve().is_relative_to(data)
    assert f"{data.name}-integrity" in settings.key_path.parts
    assert mode(settings.key_path) == 0o600 and mode(settings.key_path.parent) == 0o700
    (target,) = settings.targets
    assert not Path(target.directory).resolve().is_relative_to(data)


def test_key_inside_the_data_dir_is_refused_unless_the_config_says_so(store, caplog):
    inside = Path(store.path) / "integrity-keys-test" / store.database
    private, _ = generate_key(inside)
    with pytest.raises(ConfigError, match="inside the store's data directory"):
        resolve(load_config(None, integrity={"key": str(private)}).integrity, store)
    with caplog.at_level(logging.WARNING, logger="otel_audit.receiver"):
        receiver = start_receiver(store, integrity={"key": str(private), "key_in_data_dir": True})
        receiver.stop_listeners()
    assert any("INSIDE the store's data directory" in r.getMessage() for r in caplog.records)


def test_default_config_publishes_and_verify_reads_the_published_copy(store):
    receiver = start_receiver(store, integrity={"instance_id": "d1"})
    export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs()) for _ in range(7)]))
    receiver.stop_listeners()
    integrity = load_config(None, integrity={"instance_id": "d1"}).integrity
    settings = resolve(integrity, store, create_key=False)
    notes = [
        n for _, n in read_published(settings.targets[0].directory) if n.startswith("otel-audit/acme/d1\n")
    ]
    assert {n.split("\n")[1] for n in notes} >= {"0", "7"}
    (report,) = verify_store(
        store,
        tenants=("acme",),
        checkpoint_dirs=[settings.targets[0].directory],
        verifiers=default_verifiers(integrity, store),
    )
    assert report.status == "intact" and report.external_copy and report.signatures_checked, report.summary()
