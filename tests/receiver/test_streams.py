"""Log streams (SPEC section 11) on real OTLP into real chDB, delivered to real loopback
destinations: every stored event once, in stored order, for each kind; an outage then recovery;
a restart resuming from the stored position; tenant isolation; a replay through the CLI."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import REPO, start_receiver
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from stream_support import HttpCollector, SyslogCollector, send_events, stored_order, wait_for

SECRET = "stream-secret-for-tests"
ADMIN = "admin-token-streams-0123456789"
AUDITOR = "auditor-token-streams-0123456"
TOKENS = [
    {"token": ADMIN, "role": "admin", "tenants": ["*"], "name": "sam.secops"},
    {"token": AUDITOR, "role": "auditor", "tenants": ["acme"], "name": "gus"},
]
FAST = {"poll_seconds": 0.1, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 1}


@pytest.fixture
def collector():
    c = HttpCollector()
    yield c
    c.close()


def webhook(url: str, **extra: object) -> dict:
    return {"name": "siem", "kind": "webhook", "url": url, "secret": SECRET, "batch_size": 4, **FAST, **extra}


def webhook_ids(collector: HttpCollector) -> list[str]:
    return [json.loads(line)["id"] for body in collector.bodies() for line in body.splitlines()]


def test_webhook_delivers_every_stored_event_in_order_signed_and_keyed_like_the_api(store, collector):
    receiver = start_receiver(store, streams=[webhook(collector.base + "/in")], admin_tokens=TOKENS)
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        sent = send_events(grpc, "acme", 7) + send_events(grpc, "globex", 3)
        wait_for(lambda: len(webhook_ids(collector)) >= 10, what="10 events delivered")
        time.sleep(0.5)  # nothing more arrives
        assert webhook_ids(collector) == stored_order(store)
        assert sorted(webhook_ids(collector)) == sorted(sent)
        path, headers, body = collector.accepted[0]
        assert path == "/in"
        assert headers["content-encoding"] == "gzip"
        assert headers["content-type"] == "application/x-ndjson"
        assert (
            headers["x-otel-audit-signature"]
            == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        )
        assert len(gzip.decompress(body).splitlines()) == 4  # batch_size
        event = json.loads(gzip.decompress(body).splitlines()[0])
        api = httpx.get(
            f"http://127.0.0.1:{receiver.admin_port}/api/events",
            params={"tenant": event["tenant_id"], "limit": 100},
            headers={"authorization": f"Bearer {ADMIN}"},
        ).json()["events"]
        assert next(e for e in api if e["id"] == event["id"]) == event
        # GET /api/streams: admin only, secrets withheld
        answer = httpx.get(
            f"http://127.0.0.1:{receiver.admin_port}/api/streams",
            headers={"authorization": f"Bearer {ADMIN}"},
        )
        (status,) = answer.json()["streams"]
        assert status["name"] == "siem" and status["delivered_events"] >= 10 and status["failures"] == 0
        assert status["config"]["secret"] == "***" and SECRET not in answer.text
        assert sum(status["positions"].values()) >= 10
        refused = httpx.get(
            f"http://127.0.0.1:{receiver.admin_port}/api/streams",
            headers={"authorization": f"Bearer {AUDITOR}"},
        )
        assert refused.status_code == 403
    finally:
        receiver.stop_listeners()


def test_outage_then_recovery_resumes_after_the_last_accepted_batch(store, collector):
    receiver = start_receiver(store, streams=[webhook(collector.base, backlog_limit=5)])
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        send_events(grpc, "acme", 6)
        wait_for(lambda: len(webhook_ids(collector)) >= 6, what="the first events")
        collector.down = True
        send_events(grpc, "acme", 9)  # ingest goes on while the destination is down
        wait_for(lambda: collector.refused >= 3, what="retries against the outage")
        runner = receiver.streams.runners["siem"]
        wait_for(lambda: runner.progress.backlog_exceeded, what="the backlog warning")
        metrics = receiver.metrics.registry.get_sample_value
        assert metrics("otel_audit_stream_backlog_exceeded", {"stream": "siem"}) == 1
        assert metrics("otel_audit_stream_batches_total", {"stream": "siem", "result": "failed"}) >= 3
        assert "503" in runner.progress.last_error
        collector.down = False
        wait_for(lambda: len(webhook_ids(collector)) >= 15, what="delivery after recovery")
        time.sleep(0.5)
        assert webhook_ids(collector) == stored_order(store)  # nothing lost, nothing twice
        wait_for(lambda: metrics("otel_audit_stream_lag_events", {"stream": "siem"}) == 0, what="lag 0")
        assert metrics("otel_audit_stream_delivered_events_total", {"stream": "siem"}) == 15
    finally:
        receiver.stop_listeners()


def test_restart_resumes_from_the_stored_position(store, collector):
    receiver = start_receiver(store, streams=[webhook(collector.base)])
    grpc = f"127.0.0.1:{receiver.grpc_port}"
    first = send_events(grpc, "acme", 5)
    wait_for(lambda: len(webhook_ids(collector)) >= 5, what="the first events")
    receiver.stop_listeners()
    receiver = start_receiver(store)  # no streams: events pile up
    later = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 6)
    receiver.stop_listeners()
    receiver = start_receiver(store, streams=[webhook(collector.base)])
    try:
        wait_for(lambda: len(webhook_ids(collector)) >= 11, what="the rest after the restart")
        time.sleep(0.5)
        assert webhook_ids(collector) == first + later
    finally:
        receiver.stop_listeners()


def test_a_stream_for_one_tenant_never_sends_another_tenants_events(store, collector):
    stream = webhook(collector.base, tenants=["acme"], filter={"action": ["read", "login"]})
    receiver = start_receiver(store, streams=[stream])
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        send_events(grpc, "globex", 4)
        acme = send_events(grpc, "acme", 3)
        send_events(grpc, "acme", 2, audit__action="delete")
        send_events(grpc, "globex", 2)
        wait_for(lambda: len(webhook_ids(collector)) >= 3, what="acme's events")
        time.sleep(1.0)
        assert webhook_ids(collector) == acme
        assert receiver.streams.runners["siem"].progress.lag_events == 0
    finally:
        receiver.stop_listeners()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", "streams", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_replay_through_the_cli_resends_from_a_time_and_is_recorded(store, collector):
    receiver = start_receiver(store, streams=[webhook(collector.base, tenants=["acme"])], admin_tokens=TOKENS)
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        early = send_events(grpc, "acme", 3)
        time.sleep(0.3)
        cut = dt.datetime.now(dt.timezone.utc)
        time.sleep(0.3)
        late = send_events(grpc, "acme", 4)
        wait_for(lambda: len(webhook_ids(collector)) >= 7, what="first delivery")
        server = f"http://127.0.0.1:{receiver.admin_port}"
        done = cli("replay", "siem", "--since", cut.isoformat(), "--server", server, "--token", ADMIN)
        assert done.returncode == 0, done.stderr
        assert "replaying from" in done.stdout
        wait_for(lambda: len(webhook_ids(collector)) >= 12, what="the replayed events and the replay event")
        time.sleep(0.5)
        delivered = webhook_ids(collector)
        assert delivered[:7] == early + late
        replayed = delivered[7:]
        assert replayed[:4] == late
        events = [json.loads(line) for body in collector.bodies() for line in body.splitlines()]
        marker = [e for e in events if e["event_name"] == "audit.stream.replayed"]
        assert (
            len(marker) == 1 and marker[0]["user_id"] == "sam.secops" and marker[0]["resource_id"] == "siem"
        )
        status = cli("status", "--server", server, "--token", ADMIN)
        assert status.returncode == 0 and status.stdout.startswith("siem\twebhook\tlag 0 events")
        denied = cli("replay", "siem", "--since", "now-1h", "--server", server, "--token", AUDITOR)
        assert denied.returncode != 0 and "403" in denied.stderr
        unknown = cli("replay", "nope", "--since", "now-1h", "--server", server, "--token", ADMIN)
        assert unknown.returncode != 0 and "404" in unknown.stderr
    finally:
        receiver.stop_listeners()


def test_splunk_hec_envelope_and_token(store, collector):
    collector.answer_body = b'{"text":"Success","code":0}'
    stream = {
        "name": "splunk",
        "kind": "splunk_hec",
        "url": collector.base + "/services/collector/event",
        "token": "hec-token-1",
        "index": "audit",
        "sourcetype": "otel:audit",
        **FAST,
    }
    receiver = start_receiver(store, streams=[stream])
    try:
        sent = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 5)
        wait_for(lambda: sum(len(b.splitlines()) for b in collector.bodies()) >= 5, what="HEC events")
        path, headers, _ = collector.accepted[0]
        assert path == "/services/collector/event"
        assert headers["authorization"] == "Splunk hec-token-1"
        envelopes = [json.loads(line) for body in collector.bodies() for line in body.splitlines()]
        assert [e["event"]["id"] for e in envelopes] == sent
        first = envelopes[0]
        assert (first["index"], first["sourcetype"], first["source"]) == ("audit", "otel:audit", "otel-audit")
        created = dt.datetime.fromisoformat(first["event"]["created_at"].replace("Z", "+00:00"))
        assert first["time"] == pytest.approx(created.timestamp())
    finally:
        receiver.stop_listeners()


def test_otlp_http_log_records_carry_the_receivers_own_attributes(store, collector):
    stream = {"name": "collector", "kind": "otlp_http", "endpoint": collector.base, **FAST}
    receiver = start_receiver(store, streams=[stream])
    try:
        sent = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 4, audit__outcome="failure")
        wait_for(lambda: len(collector.accepted) >= 1, what="an OTLP request")
        path, headers, body = collector.accepted[0]
        assert path == "/v1/logs" and headers["content-type"] == "application/x-protobuf"
        req = ExportLogsServiceRequest.FromString(body)
        records = [r for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records]
        attrs = [{kv.key: kv.value.string_value for kv in r.attributes} for r in records]
        assert [a["audit.event.id"] for a in attrs] == sent
        assert attrs[0]["audit.tenant.id"] == "acme" and attrs[0]["audit.outcome"] == "failure"
        assert records[0].event_name == "audit.document.read" and records[0].severity_text == "WARN"
        service = {kv.key: kv.value.string_value for kv in req.resource_logs[0].resource.attributes}
        assert service == {"service.name": "test-svc"}
    finally:
        receiver.stop_listeners()


@pytest.mark.parametrize("fmt", ["json", "cef"])
def test_syslog_rfc5424_octet_counted(store, fmt):
    sink = SyslogCollector()
    stream = {
        "name": "qradar",
        "kind": "syslog",
        "host": "127.0.0.1",
        "port": sink.port,
        "format": fmt,
        **FAST,
    }
    receiver = start_receiver(store, streams=[stream])
    try:
        sent = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 3, audit__outcome="denied")
        wait_for(lambda: len(sink.messages) >= 3, what="syslog messages")
        first = sink.messages[0].decode()
        assert first.startswith("<108>1 ")  # facility 13 (log audit) * 8 + severity 4 (warning)
        head, sd_and_msg = first.split(" [", 1)
        assert head.split(" ")[3:6] == ["otel-audit", "-", "audit.document.read"]
        assert f'id="{sent[0]}" tenant="acme"]' in sd_and_msg
        msg = sd_and_msg.split("] ", 1)[1]
        if fmt == "json":
            assert [
                json.loads(m.decode().split("] ", 1)[1].lstrip("\ufeff"))["id"] for m in sink.messages
            ] == sent
        else:
            assert msg.startswith("CEF:0|otel-audit|otel-audit|1|audit.document.read|audit.document.read|7|")
            assert f"externalId={sent[0]}" in msg and "cs1=acme" in msg and "outcome=denied" in msg
    finally:
        receiver.stop_listeners()
        sink.close()


def test_syslog_reconnects_after_the_collector_went_away(store):
    sink = SyslogCollector()
    port = sink.port
    stream = {"name": "qradar", "kind": "syslog", "host": "127.0.0.1", "port": port, **FAST}
    receiver = start_receiver(store, streams=[stream])
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        send_events(grpc, "acme", 2)
        wait_for(lambda: len(sink.messages) >= 2, what="first messages")
        sink.close()
        runner = receiver.streams.runners["qradar"]
        runner.sink.close()  # the collector restarts: the old connection is gone
        send_events(grpc, "acme", 2)
        wait_for(lambda: runner.progress.failures >= 1, what="a refused connection")
        sink = SyslogCollector(port=port)  # back on its port
        wait_for(lambda: len(sink.messages) >= 2, what="delivery after the collector is back")
        ids = [json.loads(m.decode().split("] ", 1)[1].lstrip("\ufeff"))["id"] for m in sink.messages]
        assert ids == stored_order(store)[2:]
    finally:
        receiver.stop_listeners()
        sink.close()


def test_s3_objects_and_manifests_read_back_with_boto3(store):
    import boto3
    from conftest import free_port
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=endpoint, **creds)
    s3.create_bucket(Bucket="audit")
    stream = {
        "name": "lake",
        "kind": "s3",
        "bucket": "audit",
        "prefix": "events/",
        "endpoint_url": endpoint,
        "access_key_id": "test",
        "secret_access_key": "test",
        "batch_size": 3,
        **FAST,
    }
    receiver = start_receiver(store, streams=[stream])
    try:
        send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 7)

        def manifests() -> list[dict]:
            listed = s3.list_objects_v2(Bucket="audit", Prefix="events/manifests/").get("Contents", [])
            return [json.loads(s3.get_object(Bucket="audit", Key=o["Key"])["Body"].read()) for o in listed]

        wait_for(lambda: sum(m["events"] for m in manifests()) >= 7, what="7 events in the bucket")
        found = sorted(manifests(), key=lambda m: min(r[0] for r in m["ranges"].values()))
        ids = []
        for m in found:
            raw = s3.get_object(Bucket="audit", Key=m["object"])["Body"].read()
            assert hashlib.sha256(raw).hexdigest() == m["sha256"] and m["object"].endswith(".ndjson.gz")
            lines = gzip.decompress(raw).splitlines()
            assert len(lines) == m["events"] <= 3
            ids += [json.loads(line)["id"] for line in lines]
        assert ids == stored_order(store)
        assert found[0]["object"].startswith(
            "events/" + dt.datetime.now(dt.timezone.utc).strftime("%Y/%m/%d/")
        )
    finally:
        receiver.stop_listeners()
        server.stop()


def test_kill_9_mid_batch_resends_only_that_batch(tmp_path, collector):
    from conftest import ServeProcess

    config = tmp_path / "otel-audit.yaml"
    stream = webhook(collector.base, tenants=["acme"], filter={"event_name": "audit.document.read"})
    stream.update(lease_seconds=3, timeout_seconds=120)  # the killed receiver's lease ends soon
    config.write_text(json.dumps({"alerts": {"enabled": False}, "streams": [stream]}))
    serve = ServeProcess(tmp_path / "data", ("--config", str(config))).start()
    try:
        sent = send_events(serve.grpc_endpoint, "acme", 10)
        wait_for(lambda: len(webhook_ids(collector)) >= 10, what="the first events")
        collector.delay = 60.0  # the next batch is stored by the destination, its answer never arrives
        sent += send_events(serve.grpc_endpoint, "acme", 10)
        wait_for(lambda: len(webhook_ids(collector)) >= 14, what="a batch in flight")
        time.sleep(0.5)  # its answer is delayed: the position is not saved
        before = len(webhook_ids(collector))
        serve.kill()
        collector.delay = 0.0
        serve = ServeProcess(tmp_path / "data", ("--config", str(config))).start()
        wait_for(
            lambda: set(webhook_ids(collector)) >= set(sent), timeout=90, what="every event after the restart"
        )
        time.sleep(1.0)
        delivered = webhook_ids(collector)
        unique = list(dict.fromkeys(delivered))
        assert unique == sent  # nothing lost, in order
        duplicates = len(delivered) - len(unique)
        assert 0 < duplicates <= 4  # only the batch in flight (batch_size 4) came twice
        assert delivered[before : before + duplicates] == delivered[before - duplicates : before]
    finally:
        serve.stop()


def test_otlp_grpc_export_to_a_real_grpc_server(store):
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc

    got: list[ExportLogsServiceRequest] = []
    refuse = [2]  # the first two calls answer UNAVAILABLE: retried

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, req, context):  # noqa: N802 - the generated interface
            if refuse[0]:
                refuse[0] -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
            got.append(req)
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stream = {"name": "collector", "kind": "otlp_grpc", "endpoint": f"http://127.0.0.1:{port}", **FAST}
    receiver = start_receiver(store, streams=[stream])
    try:
        sent = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 5)

        def count() -> int:
            return sum(len(sl.log_records) for r in got for rl in r.resource_logs for sl in rl.scope_logs)

        wait_for(lambda: count() >= 5, what="OTLP/gRPC records")
        records = [lr for r in got for rl in r.resource_logs for sl in rl.scope_logs for lr in sl.log_records]
        ids = [
            next(kv.value.string_value for kv in lr.attributes if kv.key == "audit.event.id")
            for lr in records
        ]
        assert ids == sent
        assert receiver.streams.runners["collector"].progress.failures == 2
        assert "UNAVAILABLE" in receiver.streams.runners["collector"].progress.last_error
    finally:
        receiver.stop_listeners()
        server.stop(0)


def _self_signed(tmp_path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def test_syslog_over_tls_verifies_the_collector(store, tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    sink = SyslogCollector(wrap=lambda conn: context.wrap_socket(conn, server_side=True))
    stream = {
        "name": "tls",
        "kind": "syslog",
        "host": "localhost",
        "port": sink.port,
        "tls": True,
        "tls_ca_file": cert,
        **FAST,
    }
    untrusted = dict(stream, name="untrusted", tls_ca_file="")  # the system CAs do not know this collector
    receiver = start_receiver(store, streams=[stream, untrusted])
    try:
        sent = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 3)
        wait_for(lambda: len(sink.messages) >= 3, what="messages over TLS")
        ids = [json.loads(m.decode().split("] ", 1)[1].lstrip("\ufeff"))["id"] for m in sink.messages]
        assert ids == sent
        bad = receiver.streams.runners["untrusted"]
        wait_for(lambda: bad.progress.failures >= 1, what="the untrusted collector refused")
        assert "CERTIFICATE_VERIFY_FAILED" in bad.progress.last_error and bad.progress.delivered_events == 0
    finally:
        receiver.stop_listeners()
        sink.close()


def test_a_tenant_admin_sees_only_its_tenants_streams(store, collector):
    acme_admin = "admin-token-acme-only-01234567"
    tokens = [*TOKENS, {"token": acme_admin, "role": "admin", "tenants": ["acme"], "name": "ann"}]
    streams = [
        webhook(collector.base),
        webhook(collector.base, name="acme-feed", tenants=["acme"], secret=""),
    ]
    receiver = start_receiver(store, streams=streams, admin_tokens=tokens)
    try:
        base = f"http://127.0.0.1:{receiver.admin_port}/api/streams"
        mine = httpx.get(base, headers={"authorization": f"Bearer {acme_admin}"}).json()["streams"]
        assert [s["name"] for s in mine] == ["acme-feed"]
        every = httpx.get(base, headers={"authorization": f"Bearer {ADMIN}"}).json()["streams"]
        assert [s["name"] for s in every] == ["siem", "acme-feed"]
        other = httpx.post(
            base + "/siem/replay", json={"since": "now-1h"}, headers={"authorization": f"Bearer {acme_admin}"}
        )
        assert other.status_code == 404
        bad = httpx.post(
            base + "/acme-feed/replay",
            json={"since": "yesterday"},
            headers={"authorization": f"Bearer {ADMIN}"},
        )
        assert bad.status_code == 400 and "since" in bad.json()["error"]
    finally:
        receiver.stop_listeners()


@pytest.fixture
def rsyslog(tmp_path):
    """Debian's rsyslogd with an imtcp listener on a free loopback port, writing what it parsed to a file."""
    import shutil

    from conftest import free_port

    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not Path(binary).exists():
        if os.geteuid() == 0 and shutil.which("apt-get"):
            subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", "rsyslog"],
                capture_output=True,
                timeout=600,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
            )
        if not Path(binary).exists():
            pytest.skip(
                "rsyslogd is not installed (apt-get install rsyslog; the test installs it when run as root)"
            )
    port = free_port()
    out = tmp_path / "rsyslog.out"
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{tmp_path}")\n'
        'module(load="imtcp")\n'
        'template(name="t" type="string" string="%hostname%|%app-name%|%msgid%|%structured-data%|%msg%\\n")\n'
        'ruleset(name="r") { action(type="omfile" file="' + str(out) + '" template="t") }\n'
        f'input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="r")\n'
    )
    proc = subprocess.Popen(
        [binary, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: _listening(port), timeout=30, what="rsyslogd listening")
    yield port, out
    proc.terminate()
    proc.wait(10)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_syslog_into_a_real_rsyslog(store, rsyslog):
    port, out = rsyslog
    stream = {"name": "rsyslog", "kind": "syslog", "host": "127.0.0.1", "port": port, **FAST}
    receiver = start_receiver(store, streams=[stream])
    try:
        sent = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 6)

        def lines() -> list[str]:
            return out.read_text(encoding="utf-8").splitlines() if out.exists() else []

        wait_for(lambda: len(lines()) >= 6, what="rsyslog wrote the messages")
        parsed = [line.split("|", 4) for line in lines()]
        assert [p[1:3] for p in parsed] == [["otel-audit", "audit.document.read"]] * 6
        assert [json.loads(p[4].lstrip("\ufeff"))["id"] for p in parsed] == sent
        assert f'id="{sent[0]}"' in parsed[0][3] and 'tenant="acme"' in parsed[0][3]
    finally:
        receiver.stop_listeners()
