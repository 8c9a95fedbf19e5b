"""The same data path against a real S3-compatible server (moto) on loopback."""

import os
import threading
import time

import pyarrow.parquet as pq
import io

from lumen_harness import S3_ENV, TcpProxy, make_spans, wait_for
from test_core import answers
from test_crash import Client


def s3_args(moto_endpoint, bucket, prefix="lumen"):
    return ["--storage", f"s3://{bucket}/{prefix}", "--s3-endpoint", moto_endpoint, "--s3-allow-http"]


def keys(client, bucket, prefix=""):
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def test_parquet_lands_in_the_bucket_and_a_second_server_sees_it(lumen, moto, bucket):
    s3 = moto.client()
    args = s3_args(moto.endpoint, bucket) + ["--flush-age", "300ms"]
    first = lumen(args=args, env=S3_ENV)
    assert first.ingest(make_spans(2500, seed=21)).status_code == 200
    hot = answers(first)
    assert hot["count"] == [[2500]]
    first.wait_flushed()
    assert answers(first) == hot

    objects = keys(s3, bucket)
    data = [k for k in objects if k.endswith(".parquet")]
    assert data and all(k.startswith("lumen/spans/date=2026-11-28/hour=") for k in data), data
    assert any(k.startswith("lumen/_lumen/manifest/") for k in objects)
    assert not list((first.data_dir).rglob("*.parquet")), "Parquet goes to the bucket, not the data dir"
    rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows for k in data)
    assert rows == 2500

    # A second server with its own data dir, on the same bucket, answers the same.
    second = lumen(args=args, env=S3_ENV)
    assert answers(second) == hot
    # Spans the second one ingests are seen by the first after its manifest refresh.
    assert second.ingest(make_spans(100, seed=22, prefix="two")).status_code == 200
    second.wait_flushed()
    wait_for(lambda: first.scalar("SELECT count(*) FROM spans") == 2600, timeout=30, what="manifest refresh")
    first.restart()
    assert first.scalar("SELECT count(*) FROM spans") == 2600


def test_large_files_use_multipart_upload(lumen, moto, bucket):
    s3 = moto.client()
    server = lumen(args=s3_args(moto.endpoint, bucket) + ["--flush-age", "1h", "--multipart-part", "5MiB"], env=S3_ENV)
    # Content that does not compress: ~14 MB of random text in one hour partition.
    spans = make_spans(1400, seed=23, start="2026-11-28T08:00:00")
    for s in spans:
        s["start_time"] = spans[0]["start_time"]
        s["input_messages"] = os.urandom(7500).hex()
    for i in range(0, len(spans), 200):
        assert server.ingest(spans[i:i + 200]).status_code == 200
    server.restart()  # a clean stop flushes
    data = [k for k in keys(s3, bucket) if k.endswith(".parquet")]
    assert len(data) == 1
    head = s3.head_object(Bucket=bucket, Key=data[0])
    assert head["ContentLength"] > 10 * 1024 * 1024
    assert "-" in head["ETag"], f"multipart uploads have a -N ETag, got {head['ETag']}"
    assert server.scalar("SELECT count(*) FROM spans") == 1400


def test_storage_outage_loses_nothing_and_drains_by_itself(lumen, moto, bucket):
    s3 = moto.client()
    proxy = TcpProxy(moto.port).restore()
    server = lumen(args=s3_args(proxy.endpoint, bucket) + ["--flush-age", "200ms"], env=S3_ENV)
    clients = [Client(server, 50 + i, batch=25) for i in range(2)]
    for c in clients:
        c.start()
    time.sleep(1.0)
    proxy.cut()
    cut_at = len(set().union(*(c.acked_ids for c in clients)))
    wait_for(lambda: (server.metric("lumen_flush_failures_total") or 0) >= 2, timeout=60, what="failed flushes")
    time.sleep(1.0)
    during = len(set().union(*(c.acked_ids for c in clients)))
    assert during > cut_at, "ingest keeps answering 200 while storage is down"
    assert server.metric("lumen_hot_rows") > 0
    proxy.restore()
    for c in clients:
        c.stop.set()
    for c in clients:
        c.join(timeout=120)
    acked = set().union(*(c.acked_ids for c in clients))
    server.wait_flushed(timeout=120)

    # Every acknowledged span is in Parquet in the bucket exactly once (orphans of failed flushes are gone).
    wait_for(lambda: _ids_in_bucket(s3, bucket) is not None, what="listing")
    ids = wait_for(lambda: (lambda got: got if len(got) == len(acked) else None)(_ids_in_bucket(s3, bucket)),
                   timeout=60, what="orphan clean-up")
    assert sorted(ids) == sorted(acked)
    assert server.scalar("SELECT count(*) FROM spans") == len(acked)
    proxy.cut()


def _ids_in_bucket(s3, bucket):
    ids = []
    for k in keys(s3, bucket):
        if k.endswith(".parquet"):
            body = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
            ids += pq.read_table(io.BytesIO(body), columns=["span_id"]).column(0).to_pylist()
    return ids
