"""The explore API on a generated dataset whose answers are computed here independently, with latency
percentiles checked against DuckDB on the very same Parquet files."""

import json
from collections import Counter, defaultdict

import duckdb
import pytest
import requests

from lumen_harness import make_spans

WINDOW = {"from": "2026-11-28T00:00:00Z", "to": "2026-11-29T00:00:00Z"}
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A server with 3000 generated spans (half flushed to Parquet, half hot) plus an older model."""
    from lumen_harness import LumenServer

    tmp = tmp_path_factory.mktemp("explore")
    server = LumenServer(tmp / "data", args=["--flush-age", "1h"], log_dir=tmp).start()
    spans = make_spans(3000, seed=40, content=True)
    for s in spans[:200]:
        s["server_address"] = "api.openai.com" if s["provider"] == "openai" else None
        s["server_port"] = 443 if s["provider"] == "openai" else None
    # A model first seen the day before: in the inventory, but not `new` in today's window.
    old = make_spans(5, seed=41, start="2026-11-27T10:00:00", prefix="old")
    for s in old:
        s["request_model"] = s["response_model"] = "gpt-4o-mini"
        s["provider"] = "openai"
    spans_today_old_model = [dict(s, span_id=f"late{i}", start_time=s["start_time"] + 86400 * 10**9) for i, s in enumerate(old)]
    assert server.ingest(spans[:1500] + old).status_code == 200
    server.restart()  # flushes: the first half is now Parquet
    assert server.ingest(spans[1500:] + spans_today_old_model).status_code == 200
    today = spans + spans_today_old_model
    yield server, today, old
    server.kill()


def get(server, path, **params):
    r = requests.get(server.url + path, params={**WINDOW, **params}, timeout=120)
    assert r.status_code == 200, (path, params, r.text)
    return r.json()


def test_models_inventory_flags_new_models(dataset):
    server, today, _ = dataset
    answer = get(server, "/v1/models")
    by_key = {(m["provider"], m["request_model"], m["response_model"]): m for m in answer["models"]}
    expected = Counter((s["provider"], s["request_model"], s["response_model"]) for s in today)
    assert {k: v["calls"] for k, v in by_key.items()} == dict(expected)
    assert by_key[("openai", "gpt-4o-mini", "gpt-4o-mini")]["new"] is False, "seen the day before"
    assert by_key[("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5")]["new"] is True
    services = sorted({s["service_name"] for s in today if s["request_model"] == "claude-sonnet-4-5"})
    assert by_key[("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5")]["services"] == services
    # A filter narrows the inventory.
    only = get(server, "/v1/models", provider="anthropic")["models"]
    assert [m["request_model"] for m in only] == ["claude-sonnet-4-5"]


def test_latency_percentiles_equal_duckdb(dataset):
    server, today, _ = dataset
    # Percentiles over the same rows DuckDB reads: flush everything first.
    server.restart()
    answer = get(server, "/v1/explore/latency", by="model", q="0.5,0.9,0.99")
    glob = str(server.data_dir / "spans" / "**" / "*.parquet")
    duck = duckdb.connect().execute(
        f"""SELECT request_model, quantile_cont(duration_ms, 0.5), quantile_cont(duration_ms, 0.9),
                   quantile_cont(duration_ms, 0.99), quantile_cont(ttft_ms, 0.9), count(*)
            FROM read_parquet('{glob}') WHERE start_time >= TIMESTAMPTZ '2026-11-28 00:00:00+00'
            GROUP BY 1"""
    ).fetchall()
    assert len(duck) == len(answer["groups"]) == 5
    ours = {g["group"]: g for g in answer["groups"]}
    for model, p50, p90, p99, t90, calls in duck:
        g = ours[model]
        assert g["calls"] == calls
        for got, want in [(g["duration_ms"]["p50"], p50), (g["duration_ms"]["p90"], p90),
                          (g["duration_ms"]["p99"], p99), (g["ttft_ms"]["p90"], t90)]:
            assert want is not None and abs(got - want) <= 1e-12 * abs(want), (model, got, want)
    # As a time series: the points add up to the group.
    series = get(server, "/v1/explore/latency", by="provider", q="0.9", step="30m")
    for g in series["groups"]:
        assert sum(p["calls"] for p in g["series"]) == g["calls"]
        assert all(set(p["duration_ms"]) == {"p90"} for p in g["series"])


def test_tokens_totals_and_histograms(dataset):
    server, today, _ = dataset
    answer = get(server, "/v1/explore/tokens", by="provider")
    assert answer["bucket_boundaries"] == TOKEN_BUCKETS
    for g in answer["groups"]:
        mine = [s for s in today if s["provider"] == g["group"]]
        assert g["calls"] == len(mine)
        assert g["totals"]["input_tokens"] == sum(s["input_tokens"] for s in mine)
        assert g["totals"]["output_tokens"] == sum(s["output_tokens"] or 0 for s in mine)
        assert g["totals"]["reasoning_tokens"] is None, "unknown stays null"
        hist = g["histograms"]["input_tokens"]
        expected = [0] * (len(TOKEN_BUCKETS) + 1)
        for s in mine:
            expected[next((i for i, b in enumerate(TOKEN_BUCKETS) if s["input_tokens"] <= b), len(TOKEN_BUCKETS))] += 1
        assert hist == expected
        assert sum(g["histograms"]["output_tokens"]) == sum(1 for s in mine if s["output_tokens"] is not None)


def test_errors_rate_types_and_examples(dataset):
    server, today, _ = dataset
    answer = get(server, "/v1/explore/errors", by="model")
    errors = {s["span_id"]: s for s in today if s.get("error_type") or s["http_status"] >= 400}
    assert errors
    for g in answer["groups"]:
        mine = [s for s in today if s["request_model"] == g["group"]]
        bad = [s for s in mine if s["span_id"] in errors]
        assert (g["calls"], g["errors"]) == (len(mine), len(bad))
        assert g["error_rate"] == pytest.approx(len(bad) / len(mine)) if bad else g["error_rate"] in (0, 0.0)
        for top in g["top_errors"]:
            assert top["error_type"] == "rate_limit_error"
            assert top["count"] == len(bad)
            assert top["example_span_ids"] and all(i in errors for i in top["example_span_ids"])
    only_errors = get(server, "/v1/explore/errors", by="provider", status="error")
    assert sum(g["calls"] for g in only_errors["groups"]) == len(errors)


def test_sla_breaches_and_what_they_share(dataset):
    server, today, _ = dataset
    answer = get(server, "/v1/explore/sla", threshold_ms="1000")
    over = [s for s in today if s["duration_ms"] > 1000]
    assert (answer["calls"], answer["over"]) == (len(today), len(over))
    assert answer["share"] == pytest.approx(len(over) / len(today))
    for name, rows in answer["breakdown"].items():
        assert sum(r["over"] for r in rows) == len(over), name
        assert sum(r["share_of_breaches"] for r in rows) == pytest.approx(1.0), name
    by_service = {r["value"]: r["over"] for r in answer["breakdown"]["service"]}
    assert by_service == dict(Counter(s["service_name"] for s in over))
    by_prompt = {r["value"] for r in answer["breakdown"]["prompt_size"]}
    assert by_prompt <= {"<1k", "1k-4k", "4k-16k", "16k-64k", ">=64k", "unknown"}
    assert [s["duration_ms"] for s in answer["slowest"]] == sorted((s["duration_ms"] for s in over), reverse=True)[:10]
    r = requests.get(server.url + "/v1/explore/sla", params=WINDOW, timeout=30)
    assert r.status_code == 400 and "threshold_ms is required" in r.json()["error"]


def test_service_map_edges(dataset):
    server, today, _ = dataset
    answer = get(server, "/v1/services")
    edges = {(e["source"], e["target"]): e for e in answer["edges"]}
    expected = defaultdict(int)
    for s in today:
        target = s.get("server_address") or s["provider"]
        if s.get("server_port"):
            target += f":{s['server_port']}"
        expected[(s["service_name"], target)] += 1
    assert {k: v["calls"] for k, v in edges.items()} == dict(expected)
    assert ("svc-0", "api.openai.com:443") in edges
    kinds = {n["id"]: n["kind"] for n in answer["nodes"]}
    assert kinds["svc-0"] == "workload" and kinds["anthropic"] == "provider"
    assert all(e["p90_ms"] > 0 for e in answer["edges"])


def test_trace_and_span_views(dataset):
    server, today, _ = dataset
    trace_id = today[10]["trace_id"]
    trace = get(server, f"/v1/traces/{trace_id}")
    mine = sorted((s for s in today if s["trace_id"] == trace_id), key=lambda s: (s["start_time"], s["span_id"]))
    assert [s["span_id"] for s in trace["spans"]] == [s["span_id"] for s in mine]
    one = get(server, f"/v1/spans/{today[10]['span_id']}")
    assert json.loads(one["input_messages"]) == today[10]["input_messages"]
    assert requests.get(server.url + "/v1/spans/nope", timeout=10).status_code == 404
    assert requests.get(server.url + "/v1/traces/nope", timeout=10).status_code == 404
    assert requests.get(server.url + "/v1/spans/bad'id", timeout=10).status_code == 400


@pytest.mark.parametrize("sort,key", [("newest", "start_time"), ("slowest", "duration_ms")])
def test_span_list_pages_through_everything_once(dataset, sort, key):
    server, today, _ = dataset
    seen, cursor = [], None
    while True:
        params = {"sort": sort, "limit": 700, "service": "svc-3"}
        if cursor:
            params["cursor"] = cursor
        page = get(server, "/v1/spans", **params)
        seen += page["spans"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    mine = [s for s in today if s["service_name"] == "svc-3"]
    assert sorted(s["span_id"] for s in seen) == sorted(s["span_id"] for s in mine)
    assert len(seen) == len({s["span_id"] for s in seen})
    if sort == "slowest":
        values = [s["duration_ms"] for s in seen]
        assert values == sorted(values, reverse=True)
    assert all("input_messages" not in s for s in seen), "lists stay light; content is in the span view"
    errors = get(server, "/v1/spans", errors="true", limit=1000)["spans"]
    assert {s["span_id"] for s in errors} == {s["span_id"] for s in today if s.get("error_type")}


def test_parameters_are_typed(dataset):
    server, _, _ = dataset
    for path, params, needle in [
        ("/v1/explore/latency", {"by": "request_model; DROP TABLE spans"}, "unknown dimension"),
        ("/v1/explore/latency", {"q": "0.9) FROM spans --"}, "not a quantile"),
        ("/v1/explore/tokens", {"where": "1=1"}, "unknown parameter"),
        ("/v1/models", {"from": "last tuesday"}, "from:"),
        ("/v1/spans", {"cursor": "00"}, "cursor"),
        ("/v1/spans", {"limit": "100000"}, "limit"),
        ("/v1/spans", {"cursor": "a\u00e9b0"}, "cursor"),
        ("/v1/explore/latency", {"step": "1h", "from": "1700-01-01T00:00:00Z"}, "at most 10000"),
        ("/v1/explore/latency", {"step": "1s", "from": "2026-01-01T00:00:00Z"}, "at most 10000"),
    ]:
        r = requests.get(server.url + path, params=params, timeout=30)
        assert r.status_code == 400, (path, params, r.text)
        assert needle in r.json()["error"], (path, r.json())
    # A quote in a filter value is data, not SQL.
    assert get(server, "/v1/models", model="x' OR '1'='1")["models"] == []


def test_openapi_matches_the_routes(dataset):
    server, today, _ = dataset
    spec = requests.get(server.url + "/v1/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.")
    rule = requests.post(server.url + "/v1/alerts", timeout=30, json={
        "name": "openapi check", "query": {"kind": "metric", "metric": "calls"},
        "condition": {"op": ">", "threshold": 1e12}, "window": "5m", "enabled": False}).json()
    # Every documented operation is served; deletions go last so the other operations find their object.
    operations = sorted(((path, method) for path, item in spec["paths"].items() for method in item),
                        key=lambda pm: pm[1] == "delete")
    for path, method in operations:
        concrete = path.replace("{span_id}", today[0]["span_id"]).replace("{trace_id}", today[0]["trace_id"])
        concrete = concrete.replace("/v1/dashboards/{id}", "/v1/dashboards/default")
        concrete = concrete.replace("/v1/alerts/{id}", "/v1/alerts/" + rule["id"])
        params = dict(WINDOW, threshold_ms="1000", q="SELECT 1") if method == "get" else {}
        r = requests.request(method, server.url + concrete, params=params if "{" not in path else {},
                             json={"sql": "SELECT 1"} if concrete == "/v1/sql" else None, timeout=60)
        assert r.status_code not in (404, 405), (method, path, r.status_code)
