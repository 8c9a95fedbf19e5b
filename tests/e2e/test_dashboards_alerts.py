"""The explore additions the web UI draws from (time series, histograms, dimension values, text search),
dashboards and alert rules kept in Lumen's own object store, alert webhooks on firing and resolve, and
`lumen demo` — all against the real `lumen` binary."""

import json
import os
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import requests

from lumen_harness import LUMEN_BIN, S3_ENV, free_port, wait_for
from test_s3 import keys, s3_args

BENCH_BIN = Path(os.environ.get("LUMEN_BENCH_BIN", LUMEN_BIN.parent / "lumen-bench"))


def generated(tmp_path, spans, seed=5, hours=6):
    """The benchmark generator's spans, ending about now."""
    out = tmp_path / f"gen-{seed}.ndjson"
    subprocess.run([str(BENCH_BIN), "gen", "--spans", str(spans), "--seed", str(seed), "--content",
                    "--start", f"-{hours}h", "--hours", str(hours), "--out", str(out)], check=True)
    return out.read_bytes()


def ingest_bytes(server, body):
    r = requests.post(server.url + "/v1/spans", data=body, headers={"Content-Type": "application/x-ndjson"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def get(server, path, **params):
    r = requests.get(server.url + path, params=params, timeout=120)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


@pytest.fixture
def seeded(lumen, tmp_path):
    server = lumen(args=["--capture", "full"])
    ingest_bytes(server, generated(tmp_path, 4000))
    now = datetime.now(timezone.utc)
    window = {"from": iso(now - timedelta(hours=7)), "to": iso(now + timedelta(minutes=5))}
    where = f"start_time >= '{window['from']}' AND start_time < '{window['to']}'"
    return server, window, where


def test_timeseries_totals_and_buckets_agree_with_sql(seeded):
    server, window, where = seeded
    calls, errors, cost = server.rows(
        f"SELECT count(*), count(*) FILTER (WHERE error_type IS NOT NULL OR http_status >= 400), sum(cost_usd) "
        f"FROM spans WHERE {where}")[0]
    assert calls == 4000
    whole = get(server, "/v1/explore/timeseries", step="15m", **window)
    assert whole["step_seconds"] == 900 and whole["split"] is None
    total = whole["total"]
    assert (total["calls"], total["errors"]) == (calls, errors)
    assert abs(total["cost_usd"] - cost) < 1e-6
    assert total["error_rate"] == pytest.approx(errors / calls)
    points = whole["series"][0]["points"]
    # Every bucket of the window is there, empty ones as zero calls.
    assert len(points) == len({p["t"] for p in points}) >= 7 * 4
    assert sum(p["calls"] for p in points) == calls
    assert sum(p["errors"] for p in points) == errors
    busiest = max(points, key=lambda p: p["calls"])
    lo = busiest["t"]
    hi = iso(datetime.fromisoformat(lo.replace("Z", "+00:00")) + timedelta(minutes=15))
    p90 = server.scalar(f"SELECT quantile_cont(duration_ms, 0.9) FROM spans WHERE start_time >= '{lo}' AND start_time < '{hi}'")
    assert busiest["p90_ms"] == pytest.approx(p90)
    assert any(p["calls"] == 0 and p["p90_ms"] is None for p in points)

    by_provider = get(server, "/v1/explore/timeseries", split="provider", top="20", **window)
    expected = dict(server.rows(f"SELECT provider, count(*) FROM spans WHERE {where} GROUP BY 1"))
    assert {s["group"]: s["calls"] for s in by_provider["series"]} == expected
    top2 = get(server, "/v1/explore/timeseries", split="model", top="2", **window)["series"]
    best = server.rows(f"SELECT request_model, count(*) AS n FROM spans WHERE {where} GROUP BY 1 ORDER BY n DESC, 1 LIMIT 2")
    assert [(s["group"], s["calls"]) for s in top2] == [tuple(r) for r in best]


def test_histogram_and_dimensions_agree_with_sql(seeded):
    server, window, where = seeded
    h = get(server, "/v1/explore/histogram", metric="duration_ms", **window)
    bounds, counts = h["boundaries"], h["groups"][0]["counts"]
    assert len(counts) == len(bounds) + 1
    assert sum(counts) == server.scalar(f"SELECT count(duration_ms) FROM spans WHERE {where}")
    under_1s = sum(c for b, c in zip(bounds, counts) if b <= 1000)
    assert under_1s == server.scalar(f"SELECT count(*) FROM spans WHERE {where} AND duration_ms <= 1000")
    per_model = get(server, "/v1/explore/histogram", metric="output_tokens", split="model", top="3", **window)
    for g in per_model["groups"]:
        n = server.scalar(f"SELECT count(output_tokens) FROM spans WHERE {where} AND request_model = '{g['group']}'")
        assert g["calls"] == sum(g["counts"]) == n

    dims = get(server, "/v1/explore/dimensions", **window)["dimensions"]
    assert set(dims) == {"model", "provider", "service", "operation"}
    models = {d["value"]: d["calls"] for d in dims["model"]}
    assert models == dict(server.rows(f"SELECT request_model, count(*) FROM spans WHERE {where} GROUP BY 1"))
    assert [d["calls"] for d in dims["service"]] == sorted((d["calls"] for d in dims["service"]), reverse=True)

    for bad, word in [({"metric": "bytes"}, "metric"), ({"split": "colour"}, "split"), ({"top": "99"}, "top")]:
        r = requests.get(server.url + "/v1/explore/histogram", params=dict(window, **bad), timeout=30)
        assert r.status_code == 400 and word in r.json()["error"], r.text
    r = requests.get(server.url + "/v1/explore/timeseries", params=dict(window, step="1s"), timeout=30)
    assert r.status_code == 400 and "step" in r.json()["error"]
    r = requests.get(server.url + "/v1/explore/timeseries", params={"from": "1678-01-01T00:00:00Z"}, timeout=30)
    assert r.status_code == 400 and "from" in r.json()["error"]
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


def test_span_search_finds_ids_models_and_prompt_text(seeded):
    server, window, where = seeded
    span_id, trace_id, prompt = server.rows(
        f"SELECT span_id, trace_id, input_messages FROM spans WHERE {where} AND input_messages IS NOT NULL "
        f"ORDER BY start_time DESC LIMIT 1")[0]
    words = [w for w in json.loads(prompt)[0]["parts"][0]["content"].split() if len(w) > 6]
    assert words
    word = words[0]
    found = get(server, "/v1/spans", search=word.upper(), limit="1000", **window)["spans"]
    expected = server.scalar(f"SELECT count(*) FROM spans WHERE {where} AND (strpos(lower(input_messages), lower('{word}')) > 0 "
                             f"OR strpos(lower(output_messages), lower('{word}')) > 0 OR strpos(lower(system_instructions), lower('{word}')) > 0)")
    assert len(found) == min(expected, 1000) and span_id in {s["span_id"] for s in found}
    assert [s["span_id"] for s in get(server, "/v1/spans", search=span_id, **window)["spans"]] == [span_id]
    assert {s["trace_id"] for s in get(server, "/v1/spans", search=trace_id, **window)["spans"]} == {trace_id}
    mini = get(server, "/v1/spans", search="GPT-4O-MINI", limit="50", **window)["spans"]
    assert mini and all("gpt-4o-mini" in s["request_model"] for s in mini)
    assert get(server, "/v1/spans", search="no-such-text-anywhere", **window)["spans"] == []
    r = requests.get(server.url + "/v1/spans", params={"search": "x" * 201}, timeout=30)
    assert r.status_code == 400 and "search" in r.json()["error"]
    # Text is a literal, never SQL.
    assert get(server, "/v1/spans", search="' OR '1'='1", **window)["spans"] == []


PANEL = {"title": "Calls by service", "kind": "explore", "endpoint": "timeseries",
         "params": {"split": "service"}, "chart": "line", "field": "calls", "width": 2}
SQL_PANEL = {"title": "Cost", "kind": "sql", "chart": "stat",
             "sql": "SELECT sum(cost_usd) FROM spans WHERE start_time >= $from AND start_time < $to"}


def test_dashboards_live_in_the_store_and_survive_a_restart(lumen):
    server = lumen()
    listed = get(server, "/v1/dashboards")["dashboards"]
    assert [d["id"] for d in listed] == ["default"]
    default = get(server, "/v1/dashboards/default")
    assert len(default["panels"]) >= 5 and default["version"] == 0
    assert any(p["kind"] == "sql" and "provider" in p["sql"] for p in default["panels"])  # quota per provider

    r = requests.post(server.url + "/v1/dashboards", json={"title": "Team A", "panels": [PANEL, SQL_PANEL]}, timeout=30)
    assert r.status_code == 201, r.text
    created = r.json()
    did = created["id"]
    assert [p["id"] for p in created["panels"]] == ["p1", "p2"] and created["version"] == 1
    stored = server.data_dir / "_lumen" / "dashboards" / f"{did}.json"
    assert json.loads(stored.read_text())["title"] == "Team A"

    changed = dict(title="Team A (latency)", description="P90 per model",
                   panels=[dict(PANEL, params={"split": "model"}, field="p90_ms")])
    r = requests.put(server.url + f"/v1/dashboards/{did}", json=changed, timeout=30)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["created_at"] == created["created_at"]

    for body, words in [({"title": ""}, "title"),
                        ({"title": "x", "panels": [dict(PANEL, endpoint="nope")]}, "panels[0]: endpoint"),
                        ({"title": "x", "panels": [dict(SQL_PANEL, sql="DROP TABLE spans")]}, "panels[0]: sql"),
                        ({"title": "x", "panels": [dict(PANEL, params={"colour": "red"})]}, "colour"),
                        ({"title": "x", "panels": [dict(PANEL, chart="pie")]}, "pie"),
                        ({"title": "x", "nonsense": 1}, "nonsense")]:
        r = requests.post(server.url + "/v1/dashboards", json=body, timeout=30)
        assert r.status_code == 400 and words in r.json()["error"], (body, r.text)
    assert requests.get(server.url + "/v1/dashboards/d-missing", timeout=30).status_code == 404
    assert requests.get(server.url + "/v1/dashboards/..%2F..%2Fetc", timeout=30).status_code == 404

    server.restart()
    again = get(server, f"/v1/dashboards/{did}")
    assert again["title"] == "Team A (latency)" and again["panels"][0]["field"] == "p90_ms"
    assert {d["id"] for d in get(server, "/v1/dashboards")["dashboards"]} == {"default", did}

    # Editing the default stores it; deleting it brings the built-in one back.
    r = requests.put(server.url + "/v1/dashboards/default", json={"title": "Ours", "panels": [PANEL]}, timeout=30)
    assert r.status_code == 200 and r.json()["version"] == 1
    assert get(server, "/v1/dashboards/default")["title"] == "Ours"
    assert requests.delete(server.url + "/v1/dashboards/default", timeout=30).status_code == 204
    assert get(server, "/v1/dashboards/default")["title"] == default["title"]
    assert requests.delete(server.url + f"/v1/dashboards/{did}", timeout=30).status_code == 204
    assert requests.get(server.url + f"/v1/dashboards/{did}", timeout=30).status_code == 404
    assert not stored.exists()


def test_dashboards_and_alert_rules_go_to_the_bucket(lumen, moto, bucket):
    server = lumen(args=s3_args(moto.endpoint, bucket), env=S3_ENV)
    r = requests.post(server.url + "/v1/dashboards", json={"title": "In S3", "panels": [PANEL]}, timeout=30)
    assert r.status_code == 201, r.text
    rule = requests.post(server.url + "/v1/alerts", json=dict(RULE, enabled=False), timeout=30).json()
    names = keys(moto.client(), bucket, "lumen/_lumen/")
    assert f"lumen/_lumen/dashboards/{r.json()['id']}.json" in names
    assert f"lumen/_lumen/alerts/rules/{rule['id']}.json" in names
    server.restart()
    assert get(server, f"/v1/dashboards/{r.json()['id']}")["title"] == "In S3"
    assert get(server, f"/v1/alerts/{rule['id']}")["name"] == RULE["name"]


class Receiver:
    """A local webhook receiver that records what it is sent."""

    def __init__(self):
        self.got = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.got.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, path):
        return [b for p, b in self.got if p == path]

    def close(self):
        self.server.shutdown()


RULE = {"name": "Too many errors", "query": {"kind": "metric", "metric": "error_rate"},
        "condition": {"op": ">", "threshold": 0.5}, "window": "40s", "every": "1s"}


def error_spans(n, prefix):
    now = time.time_ns()
    return "\n".join(json.dumps({"span_id": f"{prefix}{i:04d}", "start_time": now, "duration_ms": 120.0,
                                 "provider": "openai", "request_model": "gpt-4o", "http_status": 500,
                                 "error_type": "server_error"}) for i in range(n)).encode()


def test_an_alert_fires_to_webhooks_and_resolves(lumen):
    hooks = Receiver()
    try:
        server = lumen()
        rule = dict(RULE, notify=[{"url": hooks.url + "/generic"}, {"url": hooks.url + "/slack", "format": "slack"}])
        r = requests.post(server.url + "/v1/alerts", json=rule, timeout=30)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        assert r.json()["status"]["state"] == "ok"
        wait_for(lambda: get(server, f"/v1/alerts/{rid}")["status"]["last_evaluated"], what="a first evaluation")
        assert hooks.got == []  # no data is not a breach

        ingest_bytes(server, error_spans(10, "err-a-"))
        wait_for(lambda: len(hooks.got) == 2, timeout=30, what="the firing notifications")
        generic, slack = hooks.of("/generic")[0], hooks.of("/slack")[0]
        assert generic["status"] == "firing" and generic["rule"]["id"] == rid and generic["value"] == 1.0
        assert generic["condition"] == {"op": ">", "threshold": 0.5}
        assert "[FIRING] Too many errors" in slack["text"] and slack["blocks"]
        assert get(server, f"/v1/alerts/{rid}")["status"]["state"] == "firing"

        # A restart keeps the state: no second firing notification.
        server.restart()
        assert get(server, f"/v1/alerts/{rid}")["status"]["state"] == "firing"

        # The window moves past the errors: the rule resolves, once.
        wait_for(lambda: len(hooks.got) == 4, timeout=120, what="the resolve notifications")
        assert hooks.of("/generic")[1]["status"] == "resolved"
        assert "[RESOLVED]" in hooks.of("/slack")[1]["text"]
        assert get(server, f"/v1/alerts/{rid}")["status"]["state"] == "ok"
        events = get(server, f"/v1/alerts/{rid}/history")["events"]
        assert [(e["from"], e["to"]) for e in events] == [("firing", "ok"), ("ok", "firing")]
        assert all(n["ok"] and n["status"] == 200 for e in events for n in e["notifications"])
        time.sleep(2)
        assert len(hooks.got) == 4
    finally:
        hooks.close()


def test_alert_rules_pending_sql_failures_and_validation(lumen):
    server = lumen()
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    pending = dict(RULE, name="pending first", every="1h", notify=[{"url": dead}], **{"for": "10m"})
    pid = requests.post(server.url + "/v1/alerts", json=pending, timeout=30).json()["id"]
    ingest_bytes(server, error_spans(4, "err-b-"))
    status = requests.post(server.url + f"/v1/alerts/{pid}/evaluate", timeout=30).json()
    assert status["state"] == "pending" and status["value"] == 1.0
    assert [e["to"] for e in get(server, f"/v1/alerts/{pid}/history")["events"]] == ["pending"]

    fire_now = dict(pending, name="fires, webhook down", **{"for": "0s"})
    fid = requests.post(server.url + "/v1/alerts", json=fire_now, timeout=30).json()["id"]
    assert requests.post(server.url + f"/v1/alerts/{fid}/evaluate", timeout=30).json()["state"] == "firing"
    note = get(server, f"/v1/alerts/{fid}/history")["events"][0]["notifications"][0]
    assert note["ok"] is False and note["url"] == dead and note["error"]
    # Disabling a firing rule resolves it: nothing stays firing that nobody evaluates.
    r = requests.put(server.url + f"/v1/alerts/{fid}", json=dict(fire_now, enabled=False), timeout=30)
    assert r.status_code == 200 and r.json()["status"]["state"] == "ok", r.text
    assert [(e["from"], e["to"]) for e in get(server, f"/v1/alerts/{fid}/history")["events"]] == [
        ("firing", "ok"), ("ok", "firing")]

    sql_rule = dict(RULE, name="sql calls", every="1h",
                    query={"kind": "sql", "sql": "SELECT count(*) FROM spans WHERE start_time >= $from AND start_time < $to"},
                    condition={"op": ">=", "threshold": 4})
    sid = requests.post(server.url + "/v1/alerts", json=sql_rule, timeout=30).json()["id"]
    status = requests.post(server.url + f"/v1/alerts/{sid}/evaluate", timeout=30).json()
    assert (status["state"], status["value"]) == ("firing", 4.0)
    broken = dict(sql_rule, name="broken", query={"kind": "sql", "sql": "SELECT no_such_column FROM spans"})
    bid = requests.post(server.url + "/v1/alerts", json=broken, timeout=30).json()["id"]
    status = requests.post(server.url + f"/v1/alerts/{bid}/evaluate", timeout=30).json()
    assert status["state"] == "error" and "no_such_column" in status["error"]
    text = dict(sql_rule, name="text", query={"kind": "sql", "sql": "SELECT 'many' AS v"})
    tid = requests.post(server.url + "/v1/alerts", json=text, timeout=30).json()["id"]
    status = requests.post(server.url + f"/v1/alerts/{tid}/evaluate", timeout=30).json()
    assert status["state"] == "error" and "not a number" in status["error"]

    templates = get(server, "/v1/alerts/templates")["templates"]
    assert {t["query"]["metric"] for t in templates} == {"sla_breach_rate", "error_rate"}
    for t in templates:
        r = requests.post(server.url + "/v1/alerts", json=t, timeout=30)
        assert r.status_code == 201, r.text

    for body, words in [(dict(RULE, window="soon"), "window"),
                        (dict(RULE, query={"kind": "metric", "metric": "vibes"}), "query.metric"),
                        (dict(RULE, query={"kind": "sql", "sql": "DELETE FROM spans"}), "query.sql"),
                        (dict(RULE, notify=[{"url": "file:///etc/passwd"}]), "notify[0].url"),
                        (dict(RULE, condition={"op": "!=", "threshold": 1}), "op"),
                        (dict(RULE, every="0s"), "every")]:
        r = requests.post(server.url + "/v1/alerts", json=body, timeout=30)
        assert r.status_code == 400 and words in r.json()["error"], (body, r.text)

    edited = dict(pending, name="renamed", enabled=False)
    r = requests.put(server.url + f"/v1/alerts/{pid}", json=edited, timeout=30)
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["enabled"] is False
    assert len(get(server, "/v1/alerts")["rules"]) == 7
    assert requests.delete(server.url + f"/v1/alerts/{pid}", timeout=30).status_code == 204
    assert requests.get(server.url + f"/v1/alerts/{pid}", timeout=30).status_code == 404
    assert not list((server.data_dir / "_lumen" / "alerts" / "history").glob(f"{pid}/*"))


def test_demo_serves_a_populated_lumen_in_one_command(tmp_path):
    port = free_port()
    data = tmp_path / "demo"
    cmd = [str(LUMEN_BIN), "demo", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
           "--spans", "3000", "--hours", "6", "--rate", "20"]
    url = f"http://127.0.0.1:{port}"

    def run():
        log = open(tmp_path / f"demo-{time.monotonic_ns()}.log", "w+")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True), log

    proc, log = run()
    try:
        wait_for(lambda: (log.seek(0) or "open http" in log.read()), timeout=180, what="the demo's address line")
        page = requests.get(url + "/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        first = get(type("S", (), {"url": url}), "/v1/explore/timeseries", **{"from": "-7h", "to": "now"})["total"]["calls"]
        assert first >= 3000
        wait_for(lambda: get(type("S", (), {"url": url}), "/v1/explore/timeseries",
                             **{"from": "-7h", "to": "now"})["total"]["calls"] >= first + 20,
                 timeout=30, what="live spans")
        if os.geteuid() == 0:
            # As root the demo also runs the sensor on a client of a local provider: real captures.
            sql = ("SELECT count(*), count(ttft_ms), sum(output_tokens) FROM spans WHERE source = 'ebpf' "
                   "AND process_name = 'lumen' AND provider = 'openai_compatible' AND server_port IS NOT NULL")

            def captured():
                r = requests.post(url + "/v1/sql", json={"sql": sql}, timeout=30)
                row = r.json()["rows"][0] if r.status_code == 200 else None
                # Half the demo client's calls stream: their TTFT comes from the captured SSE.
                return row if row and row[0] >= 3 and row[1] >= 1 else None
            calls, streamed, output = wait_for(captured, timeout=90, what="the sensor's captures")
            assert calls >= 3 and streamed >= 1 and output > 0
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    # A second start keeps the data and does not seed again.
    proc, log = run()
    try:
        wait_for(lambda: (log.seek(0) or "open http" in log.read()), timeout=120, what="the demo's address line")
        log.seek(0)
        assert "already holds the demo data" in log.read()
        calls = get(type("S", (), {"url": url}), "/v1/explore/timeseries", **{"from": "-7h", "to": "now"})["total"]["calls"]
        assert first < calls < 2 * 3000
    finally:
        proc.terminate()
        proc.wait(timeout=60)
