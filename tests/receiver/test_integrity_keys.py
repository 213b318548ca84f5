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


def test_checkpoints_are_published_to_an_http_endpoint_with_its_headers(store, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, str]] = []

    class Witness(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            received.append((self.headers.get("authorization", ""), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Witness)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        private, _ = generate_key(tmp_path / "keys")
        url = f"http://127.0.0.1:{server.server_address[1]}/checkpoints"
        publish = [{"url": url, "headers": {"authorization": "Bearer w1"}}, {"dir": str(tmp_path / "worm")}]
        receiver = start_receiver(
            store, integrity={"key": str(private), "publish": publish, "instance_id": "h1"}
        )
        export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs()) for _ in range(4)]))
        receiver.stop_listeners()
    finally:
        server.shutdown()
        server.server_close()
    sizes = {body.split("\n")[1] for auth, body in received if auth == "Bearer w1"}
    assert {"0", "4"} <= sizes and all(b.startswith("otel-audit/acme/h1\n") for _, b in received)
    on_disk = {n for _, n in read_published(tmp_path / "worm")}
    assert {b for _, b in received} == on_disk  # the same notes in both places


def test_a_pem_body_with_plus_signs_is_not_read_as_a_verifier_key(tmp_path):
    """A .pub's PEM body is base64: a line with two "+" is not a C2SP verifier key line (this
    made key rotation's default verifiers flaky: about one random key in ten)."""
    from receiver.integrity.checkpoints import generate_key, load_verifiers

    for i in range(500):
        _, public = generate_key(tmp_path / str(i))
        body = [line for line in public.read_text().splitlines() if not line.startswith("-----")][:-1]
        if any(line.count("+") >= 2 for line in body):
            assert len(load_verifiers(str(public))) == 1
            return
    raise AssertionError("no key with such a PEM body in 500 tries")
