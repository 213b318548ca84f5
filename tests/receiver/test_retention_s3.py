"""The archive on S3-compatible object storage (pyarrow's S3 filesystem), against a local S3
server (moto's, on 127.0.0.1): the same job, manifests, restore and expiry as on a directory."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import free_port
from test_retention_archive import TODAY, due, events_on

from receiver.config import load_config
from receiver.filters import EventFilter
from receiver.ingest import IngestConsumer
from receiver.retention.restore import restore
from receiver.retention.scheduler import build_retention
from receiver.telemetry import ReceiverMetrics
from receiver.writer import GroupCommitWriter


@pytest.fixture
def s3_endpoint(monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="audit-archive")
    yield f"127.0.0.1:{port}"
    server.stop()


def test_archive_restore_and_expiry_on_s3(store, s3_endpoint):
    import boto3

    location = f"s3://audit-archive/prod?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1"
    writer = GroupCommitWriter(store, ReceiverMetrics())

    def service(retain_days: int):
        config = load_config(
            None,
            retention={"default": {"hot_days": 20, "retain_days": retain_days}},
            archive={"path": location},
        )
        consumer = IngestConsumer(config, writer, ReceiverMetrics())
        return build_retention(
            store, config, lambda request, identity: consumer.ingest(request, identity, "internal")
        )

    try:
        days = [TODAY - dt.timedelta(days=back) for back in range(0, 200, 20)]
        store.insert(events_to_table_for("acme/eu", days))
        archived = {d for d in days if due(d, 20)}
        assert service(3650).run().days_archived == len(archived)
        # the policy shrinks: archive days past it are deleted from the bucket, each recorded
        svc = service(120)
        report = svc.run()
        expired = {d for d in days if d + dt.timedelta(days=120) <= TODAY}
        assert set(svc.target.days("acme/eu")) == archived - expired
        assert set(report.archive_days_deleted) == {f"acme/eu/{d.isoformat()}" for d in archived & expired}
        keys = {
            o["Key"]
            for o in boto3.client("s3", endpoint_url=f"http://{s3_endpoint}").list_objects_v2(
                Bucket="audit-archive", Prefix="prod/"
            )["Contents"]
        }
        day = min(archived - expired)
        prefix = f"prod/tenant=acme%2Feu/date={day.isoformat()}/"
        assert {prefix + "events-0001.parquet", prefix + "manifest.json"} <= keys
        assert not any("/.tmp-" in k for k in keys)
        manifest = json.loads(svc.target.read_bytes(f"{svc.target.day_dir('acme/eu', day)}/manifest.json"))
        assert manifest["rows"] == 2
        restored = restore(svc, "acme/eu", min(days), TODAY)
        assert restored.verified and restored.rows == 2 * len(archived - expired)
        assert store.count(EventFilter(tenant="acme/eu", event_name="audit.audit_archive.delete")) == len(
            archived & expired
        )
    finally:
        writer.close()


def events_to_table_for(tenant: str, days: list[dt.date]):
    from receiver.model import events_to_table

    return events_to_table([e for day in days for e in events_on(tenant, day, 2, 20)])
