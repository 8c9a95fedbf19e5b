"""Hostile statements and requests against a real server: each is refused or bounded, the server stays
healthy, nothing accepted is lost and nothing on disk changes."""

import glob
import os
import socket
import threading
import time

import pytest
import requests

from lumen_harness import make_spans

LIMITS = ["--query-timeout", "3s", "--query-max-rows", "1000", "--body-timeout", "2s", "--query-concurrency", "2"]

# (statement, what the answer must say). Every one of these must be refused (4xx) and leave no trace.
REFUSED = [
    ("DROP TABLE spans", "only read statements"),
    ("DELETE FROM spans", "only read statements"),
    ("UPDATE spans SET input_tokens = 0", "only read statements"),
    ("INSERT INTO spans (span_id) VALUES ('x')", "only read statements"),
    ("TRUNCATE TABLE spans", "only read statements"),
    ("CREATE TABLE stolen AS SELECT * FROM spans", "only read statements"),
    ("CREATE VIEW v AS SELECT 1", "only read statements"),
    ("CREATE EXTERNAL TABLE pw (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'", "only read statements"),
    ("COPY (SELECT * FROM spans) TO '/tmp/lumen-attack-copy.parquet'", "only read statements"),
    ("COPY spans TO '/tmp/lumen-attack-copy2.csv' STORED AS CSV", "only read statements"),
    ("SET datafusion.execution.target_partitions = 1", "only read statements"),
    ("RESET datafusion.execution.batch_size", "only read statements"),
    ("PREPARE p AS SELECT 1", "only read statements"),
    ("SELECT * FROM '/etc/passwd'", "not found"),
    ("SELECT * FROM 'file:///etc/shadow'", "not found"),
    ("SELECT * FROM read_parquet('/etc/passwd')", "read_parquet"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM 's3://other-bucket/secret.parquet'", "not found"),
    ("SELECT 1; DROP TABLE spans", "only one statement"),
    ("SELECT 1; SELECT 2", "only one statement"),
    ("EXPLAIN COPY (SELECT 1) TO '/tmp/lumen-attack-copy3.csv'", "only read statements"),
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "RecursionLimitExceeded"),
    ("SELECT * FROM " + "(SELECT * FROM " * 400 + "spans" + ") t" * 400, "RecursionLimitExceeded"),
]

# Statements that would run forever or return everything: bounded by the deadline or the row cap.
BOUNDED_BY_TIME = [
    "SELECT count(*) FROM spans a, spans b, spans c, spans d",
    "SELECT count(*) FROM generate_series(1, 100000000000)",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "EXPLAIN ANALYZE SELECT count(*) FROM spans a, spans b, spans c, spans d",
]


def snapshot(data_dir):
    out = {}
    for root, _, files in os.walk(data_dir):
        for f in files:
            p = os.path.join(root, f)
            out[p] = os.path.getsize(p)
    return out


@pytest.fixture
def target(lumen):
    server = lumen(args=LIMITS + ["--flush-age", "200ms"])
    assert server.ingest(make_spans(500, seed=60)).status_code == 200
    server.wait_flushed()
    time.sleep(0.5)  # let the WAL segment clean-up after the flush settle
    return server


def test_hostile_statements_are_refused_or_bounded(target):
    server = target
    before = snapshot(server.data_dir)
    count = server.scalar("SELECT count(*) FROM spans")
    attacks = 0

    for sql, needle in REFUSED:
        r = server.sql(sql)
        attacks += 1
        assert r.status_code == 400, (sql[:80], r.status_code, r.text[:300])
        assert needle in r.json()["error"], (sql[:80], r.json()["error"][:300])

    for sql in BOUNDED_BY_TIME:
        started = time.monotonic()
        r = server.sql(sql)
        attacks += 1
        elapsed = time.monotonic() - started
        assert r.status_code == 400, (sql, r.text[:300])
        assert "ran longer than" in r.json()["error"], (sql, r.json())
        assert elapsed < 30, f"{sql} was not cancelled in time ({elapsed:.1f}s)"

    # Everything, or a huge generated result: cut at the row cap, and said so.
    for sql in ["SELECT * FROM spans a, spans b", "SELECT * FROM generate_series(1, 50000000)"]:
        r = server.sql(sql)
        attacks += 1
        assert r.status_code == 200, r.text[:300]
        body = r.json()
        assert body["row_count"] == 1000 and body["truncated"] is True, sql
    exact = server.sql("SELECT * FROM generate_series(1, 1000)").json()
    assert exact["row_count"] == 1000 and exact["truncated"] is False

    # An enormous literal: the SQL text itself is over the limit.
    r = server.sql("SELECT length('" + "x" * (2 << 20) + "')")
    attacks += 1
    assert r.status_code == 413, r.text[:200]
    # A huge string built at run time stays inside the memory and time bounds.
    r = server.sql("SELECT length(repeat('x', 100000000))")
    attacks += 1
    assert r.status_code in (200, 400), r.text[:200]

    # Bodies that are not what they claim.
    for body, needle in [(b"\xff\xfe not utf8", "body must be JSON"), (b'{"sql": 42}', "body must be JSON"),
                         (b"[" * 100000, "body must be JSON")]:
        r = requests.post(server.url + "/v1/sql", data=body, headers={"Content-Type": "application/json"}, timeout=30)
        attacks += 1
        assert r.status_code == 400 and needle in r.json()["error"], r.text[:200]

    assert attacks >= 25
    # Healthy, same data, nothing written anywhere.
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert server.scalar("SELECT count(*) FROM spans") == count
    assert snapshot(server.data_dir) == before
    assert not glob.glob("/tmp/lumen-attack*")


def slow_request(port, path, declared, sent, hold):
    """Sends headers promising `declared` body bytes, then only `sent` of them, then waits."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode() + b"x" * sent
    )
    s.settimeout(hold)
    try:
        return s.recv(4096).decode(errors="replace")
    except socket.timeout:
        return ""
    finally:
        s.close()


def test_slowloris_bodies_are_cut_off(target):
    server = target
    for path in ["/v1/sql", "/v1/spans"]:
        started = time.monotonic()
        answer = slow_request(server.port, path, declared=1000, sent=10, hold=20)
        assert answer.startswith("HTTP/1.1 408"), (path, answer[:200])
        assert time.monotonic() - started < 15
    # Many stalled connections at once do not stop others from being served.
    stalled = [threading.Thread(target=slow_request, args=(server.port, "/v1/spans", 1000, 1, 10)) for _ in range(50)]
    for t in stalled:
        t.start()
    assert server.scalar("SELECT count(*) FROM spans") == 500
    assert server.ingest(make_spans(5, seed=61)).status_code == 200
    for t in stalled:
        t.join()


def test_concurrency_limit_answers_429(lumen):
    server = lumen(args=["--query-concurrency", "1", "--query-timeout", "4s"])
    assert server.ingest(make_spans(200, seed=62)).status_code == 200
    slow = threading.Thread(target=server.sql, args=("SELECT count(*) FROM generate_series(1, 100000000000)",))
    slow.start()
    time.sleep(0.5)
    r = server.sql("SELECT 1")
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == "1" and "too many queries" in r.json()["error"]
    slow.join()
    assert server.sql("SELECT 1").status_code == 200
    assert server.metric('lumen_queries_total{outcome="busy"}') == 1


def test_memory_pool_bounds_big_sorts_and_aggregations(lumen):
    server = lumen(args=["--query-memory", "4MiB", "--query-timeout", "60s"])
    for sql in [
        "SELECT count(DISTINCT value) FROM generate_series(1, 3000000)",
        "SELECT value FROM generate_series(1, 3000000) ORDER BY value DESC LIMIT 3 OFFSET 2000000",
        "SELECT value % 1000000 AS k, count(*) FROM generate_series(1, 3000000) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2",
    ]:
        r = server.sql(sql)
        # Either the operator spilled to disk and finished, or the pool refused it: never an unbounded grab.
        if r.status_code == 200:
            assert r.json()["row_count"] >= 1
        else:
            assert r.status_code == 400 and "Resources exhausted" in r.json()["error"], r.text[:300]
    assert server.sql("SELECT 1").status_code == 200
