"""The s3 stream's Parquet objects (``format: parquet``) on a real moto S3 server, read back with
pyarrow: every stored event once, in stored order, with the stored columns and types, each
object described by its manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import pyarrow.parquet as pq
import pytest
from conftest import free_port, start_receiver
from stream_support import send_events, stored_order, wait_for

from receiver.model import API_COLUMNS
from receiver.streams.config import Stream

FAST = {"poll_seconds": 0.1, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 1}


def test_parquet_objects_and_manifests_read_back_with_pyarrow(store):
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=endpoint, **creds)
    s3.create_bucket(Bucket="lake")
    stream = {
        "name": "lake",
        "kind": "s3",
        "format": "parquet",
        "bucket": "lake",
        "prefix": "pq/",
        "endpoint_url": endpoint,
        "access_key_id": "test",
        "secret_access_key": "test",
        "batch_size": 4,
        **FAST,
    }
    receiver = start_receiver(store, streams=[stream])
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        send_events(grpc, "acme", 6, app__region="eu-west-1")
        send_events(grpc, "globex", 3)

        def manifests() -> list[dict]:
            listed = s3.list_objects_v2(Bucket="lake", Prefix="pq/manifests/").get("Contents", [])
            return [json.loads(s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read()) for o in listed]

        wait_for(lambda: sum(m["events"] for m in manifests()) >= 9, what="9 events in Parquet objects")
        found = sorted(
            manifests(), key=lambda m: (sorted(m["ranges"]), min(r[0] for r in m["ranges"].values()))
        )
        rows = []
        for m in found:
            obj = s3.get_object(Bucket="lake", Key=m["object"])
            raw = obj["Body"].read()
            assert m["format"] == "parquet" and m["object"].endswith(".parquet")
            assert m["object"].startswith("pq/" + dt.datetime.now(dt.timezone.utc).strftime("%Y/%m/%d/"))
            assert hashlib.sha256(raw).hexdigest() == m["sha256"] and len(raw) == m["bytes"]
            assert raw[:4] == b"PAR1" and "ContentEncoding" not in obj
            table = pq.read_table(io.BytesIO(raw))
            assert table.num_rows == m["events"] <= 4
            assert table.column_names == list(API_COLUMNS)
            assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
            rows += table.to_pylist()
        ids = [r["id"] for r in rows]
        assert sorted(ids) == sorted(stored_order(store)) and len(ids) == len(set(ids)) == 9
        for tenant in ("acme", "globex"):  # stored order per log (one log per tenant here)
            assert [r["id"] for r in rows if r["tenant_id"] == tenant] == stored_order(store, (tenant,))
        acme = [r for r in rows if r["tenant_id"] == "acme"]
        assert dict(acme[0]["attributes"])["app.region"] == "eu-west-1"
    finally:
        receiver.stop_listeners()
        server.stop()


@pytest.mark.parametrize(("kind", "fmt"), [("s3", "cef"), ("syslog", "parquet"), ("webhook", "parquet")])
def test_a_format_that_does_not_fit_the_kind_is_refused(kind, fmt):
    extra = {"s3": {"bucket": "b"}, "syslog": {"host": "h", "port": 514}, "webhook": {"url": "http://x/"}}
    with pytest.raises(ValueError, match=f"format {fmt} is not for a {kind} stream"):
        Stream(name="x", kind=kind, format=fmt, **extra[kind])
