"""End-to-end: the real `lumen` binary on its embedded default (local directory storage)."""

import calendar
import gzip
import io
import json
import subprocess

import duckdb
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import requests
import zstandard

from lumen_harness import LUMEN_BIN, make_spans, ndjson

# The answers a user asks for, as SQL over the `spans` table.
QUESTIONS = {
    "count": "SELECT count(*) FROM spans",
    "by_model": "SELECT request_model, count(*) AS calls, sum(input_tokens) AS input, sum(output_tokens) AS output "
    "FROM spans GROUP BY request_model ORDER BY request_model",
    "p90": "SELECT request_model, quantile_cont(duration_ms, 0.9) AS p90, quantile_cont(duration_ms, 0.99) AS p99 "
    "FROM spans GROUP BY request_model ORDER BY request_model",
    "errors": "SELECT provider, count(*) FROM spans WHERE error_type IS NOT NULL GROUP BY provider ORDER BY provider",
    "window": "SELECT count(*) FROM spans WHERE start_time >= '2026-11-28T09:00:00Z' AND start_time < '2026-11-28T10:00:00Z'",
    "distinct_ids": "SELECT count(DISTINCT span_id) FROM spans",
    "ttft": "SELECT count(ttft_ms), count(*) FILTER (WHERE streaming) FROM spans",
}


def answers(server):
    return {name: server.rows(sql) for name, sql in QUESTIONS.items()}


def test_ingest_is_queryable_at_once_then_from_parquet_and_after_restarts(lumen):
    server = lumen(args=["--flush-age", "1h"])
    spans = make_spans(3000, seed=1)
    r = server.ingest(spans)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3000, "duplicates": 0}
    # Visible as soon as the request returned, from the hot buffer.
    assert server.scalar("SELECT count(*) FROM spans") == 3000
    assert server.metric("lumen_hot_rows") == 3000
    hot = answers(server)
    assert hot["distinct_ids"] == [[3000]]
    assert hot["ttft"] == [[1000, 1000]]

    # A clean stop flushes; the restarted server answers from Parquet only.
    server.restart()
    assert server.metric("lumen_hot_rows") == 0
    assert server.metric("lumen_storage_rows") == 3000
    assert answers(server) == hot
    files = sorted(p.relative_to(server.data_dir).as_posix() for p in (server.data_dir / "spans").rglob("*.parquet"))
    assert files and all(f.startswith("spans/date=2026-11-28/hour=") for f in files), files
    assert {f.split("/")[2] for f in files} == {"hour=08", "hour=09", "hour=10"}

    # More spans flushed by age while the server runs; then kill -9 and restart.
    server.stop()
    server.args = ["--flush-age", "300ms"]
    server.start()
    more = make_spans(500, seed=2)
    assert server.ingest(more).status_code == 200
    server.wait_flushed()
    before = answers(server)
    assert before["count"] == [[3500]]
    server.kill()
    server.start()
    assert answers(server) == before
    # The WAL was emptied of flushed segments: nothing is replayed twice.
    assert server.metric("lumen_hot_rows") == 0


def test_duckdb_reads_the_parquet_directory_and_agrees(lumen):
    server = lumen(args=["--flush-age", "200ms"])
    assert server.ingest(make_spans(4000, seed=3)).status_code == 200
    server.wait_flushed()
    glob = str(server.data_dir / "spans" / "**" / "*.parquet")
    con = duckdb.connect()
    count = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()[0]
    assert count == server.scalar("SELECT count(*) FROM spans") == 4000
    duck = con.execute(
        f"SELECT request_model, quantile_cont(duration_ms, 0.9), quantile_cont(duration_ms, 0.99) "
        f"FROM read_parquet('{glob}', hive_partitioning = true) "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    ours = server.rows(QUESTIONS["p90"])
    assert len(duck) == len(ours) == 5
    for (dm, d90, d99), (lm, l90, l99) in zip(duck, ours):
        assert dm == lm
        # DuckDB's quantile_cont, to the last bits of double rounding (DataFusion's own percentile_cont
        # quantises its interpolation weight and can be off by 1e-6 of the gap between neighbours).
        for ours_q, duck_q in ((l90, d90), (l99, d99)):
            assert abs(ours_q - duck_q) <= 1e-12 * abs(duck_q), (dm, ours_q, duck_q)
    # The hive partition columns are there for DuckDB, and the files are sorted by time.
    hours = con.execute(f"SELECT DISTINCT hour FROM read_parquet('{glob}', hive_partitioning = true) ORDER BY 1").fetchall()
    assert [h[0] for h in hours] == ["08", "09", "10"]
    one = next((server.data_dir / "spans").rglob("*.parquet"))
    meta = pq.ParquetFile(one).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    times = pq.read_table(one, columns=["start_time"]).column(0).cast(pa.int64()).to_pylist()
    assert times == sorted(times)


def test_json_array_gzip_zstd_and_result_formats(lumen):
    server = lumen()
    spans = make_spans(30, seed=4)
    r = server.ingest(None, body=json.dumps(spans[:10]).encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 10, r.text
    r = server.ingest(None, body=gzip.compress(ndjson(spans[10:20])), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["accepted"] == 10, r.text
    body = zstandard.ZstdCompressor().compress(ndjson(spans[20:]))
    r = server.ingest(None, body=body, headers={"Content-Encoding": "zstd"})
    assert r.status_code == 200 and r.json()["accepted"] == 10, r.text

    q = "SELECT span_id, input_tokens, start_time FROM spans ORDER BY span_id"
    js = server.sql(q).json()
    assert [c["name"] for c in js["columns"]] == ["span_id", "input_tokens", "start_time"]
    assert js["columns"][1]["type"] == "Int64"
    assert js["row_count"] == 30 and len(js["rows"]) == 30 and js["elapsed_ms"] >= 0
    expected = sorted((s["span_id"], s["input_tokens"]) for s in spans)
    assert [(r[0], r[1]) for r in js["rows"]] == expected

    nd = server.sql(q, fmt="ndjson")
    assert nd.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line)["span_id"] for line in nd.text.splitlines()] == [e[0] for e in expected]

    csv = requests.get(server.url + "/v1/sql", params={"q": q}, headers={"Accept": "text/csv"}, timeout=30)
    assert csv.status_code == 200 and csv.text.splitlines()[0] == "span_id,input_tokens,start_time"
    assert len(csv.text.splitlines()) == 31

    arrow = server.sql(q, fmt="arrow")
    table = pa.ipc.open_stream(io.BytesIO(arrow.content)).read_all()
    assert table.num_rows == 30 and table.column("input_tokens").to_pylist() == [e[1] for e in expected]

    parquet = server.sql(q, fmt="parquet")
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("span_id").to_pylist() == [e[0] for e in expected]

    # Unknown fields are kept in attributes, not dropped.
    extra = dict(make_spans(1, seed=5, prefix="x")[0], team="search", retries=2)
    assert server.ingest([extra]).status_code == 200
    assert server.rows(f"SELECT attributes['team'], attributes['retries'] FROM spans WHERE span_id = '{extra['span_id']}'") == [["search", "2"]]
    # DESCRIBE and SHOW work; the table has the span contract's columns.
    described = server.rows("DESCRIBE spans")
    assert [r[0] for r in described][:4] == ["trace_id", "span_id", "parent_span_id", "start_time"]


def test_retried_requests_are_not_stored_twice(lumen):
    server = lumen()
    spans = make_spans(100, seed=6)
    assert server.ingest(spans).json() == {"accepted": 100, "duplicates": 0}
    assert server.ingest(spans[50:] + make_spans(10, seed=7)).json() == {"accepted": 10, "duplicates": 50}
    assert server.scalar("SELECT count(*) FROM spans") == 110
    # After a restart (which flushes), retries of spans already in Parquet are still recognised.
    server.restart()
    assert server.ingest(spans[:10]).json() == {"accepted": 0, "duplicates": 10}
    assert server.scalar("SELECT count(*) FROM spans") == 110


def test_bad_input_is_refused_with_a_clear_message_and_loses_nothing(lumen):
    server = lumen(args=["--max-body", "64KiB"])
    good = make_spans(20, seed=8)
    assert server.ingest(good).status_code == 200

    def refused(status, needle, **kw):
        r = server.ingest(kw.pop("spans", None), **kw)
        assert r.status_code == status, (r.status_code, r.text)
        assert needle in r.json()["error"], r.json()
        return r

    lines = [json.dumps(s) for s in make_spans(3, seed=9)]
    bad = json.loads(lines[2])
    bad["input_tokens"] = "abc"
    lines[2] = json.dumps(bad)
    r = refused(400, 'line 3: input_tokens: expected integer, found "abc"', body="\n".join(lines).encode())
    assert r.json()["errors"][0] == {"line": 3, "field": "input_tokens", "message": 'expected integer, found "abc"'}

    missing = {"span_id": "m1", "request_model": "x"}
    refused(400, "line 1: start_time: required field is missing", spans=[missing])
    refused(400, "line 2: invalid JSON", body=b'{"start_time": 1}\n{"start_time": \n')
    refused(400, "http_status: must be an HTTP status", spans=[dict(good[0], span_id="h1", http_status=42)])
    refused(400, "end_time is before start_time", spans=[dict(good[0], span_id="e1", end_time=1)])
    refused(400, "between 1970 and 2200", spans=[dict(good[0], span_id="t1", start_time="1800-01-01T00:00:00Z")])
    refused(400, "the body holds no spans", body=b"\n\n")
    refused(400, "body is not valid gzip", body=b"not gzip", headers={"Content-Encoding": "gzip"})
    big = ndjson(make_spans(400, seed=10, content=True))
    assert len(big) > 64 * 1024
    refused(413, "over the limit", body=big)
    refused(413, "decompressed body is over the limit", body=gzip.compress(big), headers={"Content-Encoding": "gzip"})
    refused(415, "unsupported Content-Type", spans=good, headers={"Content-Type": "text/xml"})
    refused(415, "unsupported Content-Encoding", spans=good, headers={"Content-Encoding": "br"})

    # A bad line anywhere rejects the whole request: nothing from it is stored.
    mixed = make_spans(5, seed=11)
    mixed[4]["duration_ms"] = "slow"
    refused(400, "line 5: duration_ms", spans=mixed)
    assert server.scalar("SELECT count(*) FROM spans WHERE span_id LIKE 's000b%'") == 0

    for sql, needle in [
        ("DROP TABLE spans", "only read statements"),
        ("INSERT INTO spans (span_id) VALUES ('x')", "only read statements"),
        ("COPY (SELECT 1) TO '/tmp/lumen-copy.csv'", "only read statements"),
        ("CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'", "only read statements"),
        ("SELECT * FROM '/etc/passwd'", "table"),
        ("SELECT 1; SELECT 2", "only one statement"),
        ("SELECT nope FROM spans", "nope"),
    ]:
        r = server.sql(sql)
        assert r.status_code == 400, (sql, r.text)
        assert needle in r.json()["error"], (sql, r.json())
    r = requests.post(server.url + "/v1/sql", data="SELECT 1", timeout=10)
    assert r.status_code == 400 and "body must be JSON" in r.json()["error"]
    assert server.sql("SELECT 1", fmt="xml").status_code == 400

    # Still serving, and every accepted span is still there.
    assert server.scalar("SELECT count(*) FROM spans") == 20
    assert server.metric('lumen_ingest_requests_total{outcome="bad_request"}') >= 6


def test_overload_answers_503_with_retry_after(lumen):
    server = lumen(args=["--max-buffer", "1KiB", "--flush-age", "1h"])
    assert server.ingest(make_spans(50, seed=12)).status_code == 200
    r = server.ingest(make_spans(50, seed=13))
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "5"
    assert "over its bound" in r.json()["error"]
    assert server.scalar("SELECT count(*) FROM spans") == 50


def test_tokens_and_exposure(lumen, tmp_path):
    server = lumen(args=["--ingest-token", "in-secret", "--query-token", "q-secret"])
    spans = make_spans(5, seed=14)
    r = server.ingest(spans)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert server.ingest(spans, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert server.ingest(spans, headers={"Authorization": "Bearer in-secret"}).status_code == 200
    assert server.sql("SELECT 1").status_code == 401
    assert server.sql("SELECT count(*) FROM spans", headers={"Authorization": "Bearer in-secret"}).status_code == 401
    r = server.sql("SELECT count(*) FROM spans", headers={"Authorization": "Bearer q-secret"})
    assert r.json()["rows"] == [[5]]
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(server.url + "/metrics", timeout=5).status_code == 200

    # No tokens on a non-loopback address: refused unless explicitly allowed.
    out = subprocess.run(
        [str(LUMEN_BIN), "serve", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path / "open")],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0 and "refusing to listen on 0.0.0.0:0" in out.stderr, out.stderr


def test_metrics_cover_the_data_path(lumen):
    server = lumen(args=["--flush-age", "200ms"])
    assert server.ingest(make_spans(10, seed=15)).status_code == 200
    server.wait_flushed()
    server.sql("SELECT count(*) FROM spans")
    text = requests.get(server.url + "/metrics", timeout=5).text
    for name in [
        "lumen_spans_accepted_total 10",
        "lumen_spans_rejected_total",
        "lumen_wal_bytes",
        "lumen_flushes_total",
        "lumen_flush_seconds_total",
        "lumen_storage_files",
        "lumen_storage_bytes",
        'lumen_queries_total{outcome="ok"}',
        "lumen_query_duration_seconds_bucket",
    ]:
        assert name in text, name
    assert server.metric("lumen_storage_rows") == 10


def test_config_file_env_and_help(lumen, tmp_path):
    config = tmp_path / "lumen.toml"
    config.write_text('flush_age = "150ms"\nmax_body = "1MiB"\n')
    server = lumen(env={"LUMEN_CONFIG": str(config)})
    assert server.ingest(make_spans(5, seed=16)).status_code == 200
    server.wait_flushed(timeout=20)

    bad = tmp_path / "bad.toml"
    bad.write_text("flush_agee = 1\n")
    out = subprocess.run([str(LUMEN_BIN), "serve", "--config", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "flush_agee" in out.stderr, out.stderr

    help_text = subprocess.run([str(LUMEN_BIN), "serve", "--help"], capture_output=True, text=True, timeout=60).stdout
    for flag in ["--listen", "--data-dir", "--storage", "--s3-endpoint", "--s3-allow-http", "--ingest-token",
                 "--query-token", "--allow-unauthenticated", "--max-body", "--flush-size", "--flush-age",
                 "--max-buffer", "--max-wal", "--config", "LUMEN_STORAGE"]:
        assert flag in help_text, flag


def test_lumen_sql_prints_tables_csv_and_json(lumen):
    server = lumen()
    assert server.ingest(make_spans(25, seed=17)).status_code == 200
    q = "SELECT provider, count(*) AS calls FROM spans GROUP BY provider ORDER BY provider"
    run = lambda *extra: subprocess.run(  # noqa: E731
        [str(LUMEN_BIN), "sql", q, "--server", server.url, *extra], capture_output=True, text=True, timeout=60
    )
    table = run()
    assert table.returncode == 0, table.stderr
    assert "| provider" in table.stdout and "| anthropic" in table.stdout and "(4 rows)" in table.stdout
    csv = run("--format", "csv")
    assert csv.stdout.splitlines()[:2] == ["provider,calls", "anthropic,5"]
    js = json.loads(run("--format", "json").stdout)
    assert js["rows"][0] == ["anthropic", 5]
    bad = subprocess.run([str(LUMEN_BIN), "sql", "DROP TABLE spans", "--server", server.url], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "only read statements" in bad.stderr


def test_time_predicates_prune_files_through_the_manifest(lumen):
    server = lumen(args=["--flush-age", "200ms"])
    assert server.ingest(make_spans(600, seed=18)).status_code == 200
    server.wait_flushed()
    plan = "\n".join(r[1] for r in server.rows(
        "EXPLAIN SELECT count(*) FROM spans WHERE start_time >= '2026-11-28T10:00:00Z'"))
    all_plan = "\n".join(r[1] for r in server.rows("EXPLAIN SELECT count(*) FROM spans WHERE pid > 0"))
    hours_in = lambda p: {h for h in ("hour=08", "hour=09", "hour=10") if h in p}  # noqa: E731
    assert hours_in(all_plan) == {"hour=08", "hour=09", "hour=10"}
    assert hours_in(plan) == {"hour=10"}, plan
    ten = calendar.timegm((2026, 11, 28, 10, 0, 0)) * 10**9
    expected = sum(1 for s in make_spans(600, seed=18) if s["start_time"] >= ten)
    assert 0 < expected < 600
    assert server.scalar("SELECT count(*) FROM spans WHERE start_time >= '2026-11-28T10:00:00Z'") == expected
