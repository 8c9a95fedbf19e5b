"""End-to-end: one LLM call, two reports. An application instrumented with OpenTelemetry (the openai SDK over
HTTPS to the fake provider, opentelemetry-instrumentation-openai-v2, OTLP/HTTP export to lumen's /v1/traces)
runs on a node where the eBPF sensor (`lumen-sensor run`) also captures its calls and ships them to the same
`lumen serve`. Each call must count once in `spans`, while `spans_all` keeps both reports, linked:

* pairs are recognised by trace context (every other call carries a W3C `traceparent` header, which the sensor
  records) or by the same process (resource process.pid from the SDK's process detector, and host.name from
  its host detector) with the same model, overlapping times and equal token counts;
* the row that arrived second is flagged `merged`, names the other in attributes['lumen.merged_with'] and has
  the other's fields where it had none (no column the other row has is NULL in it; when the SDK's row is the
  merged one, it has the sensor's server port and TLS library);
* the row left out of `spans` has `duplicate_of` = the span_id of the row that counts;
* token sums over `spans` equal what the client itself was told, before and after a flush to Parquet.

Two orders of arrival: `hot` (the SDK exports every 200 ms, both reports are in memory together) and `flushed`
(the SDK holds its spans until the sensor's rows are already in Parquet)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
import requests

from fake_provider import FakeProvider
from lumen_harness import LumenServer, wait_for
from otlp_harness import rows, run_otel_client
from sensor_harness import Sensor, make_certificate, sensor_unavailable_reason, trust_env

_reason = sensor_unavailable_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")

N = 8
# Columns that belong to each row itself (not copied from the other report when merging).
OWN_COLUMNS = {"trace_id", "span_id", "parent_span_id", "source", "duplicate_of", "capture_flags", "attributes"}


def _verify(server, out, fake_port, what):
    calls = {c["id"]: c for c in out["calls"]}
    ids = ", ".join(f"'{i}'" for i in calls)
    where = f"response_id IN ({ids})"
    all_rows = rows(server, where, table="spans_all", attrs=["lumen.merged_with"])
    dump = json.dumps([{k: r.get(k) for k in ("span_id", "source", "response_id", "duplicate_of", "capture_flags",
                                               "attr:lumen.merged_with", "pid", "trace_id", "input_tokens")}
                       for r in all_rows], indent=0)
    assert len(all_rows) == 2 * N, f"{what}: expected {2 * N} rows in spans_all (sensor + SDK for each of {N} calls), got {len(all_rows)}:\n{dump}"
    counted = rows(server, where, table="spans")
    assert len(counted) == N, f"{what}: expected {N} rows in spans (each call once), got {len(counted)}:\n{dump}"
    counted_ids = {r["response_id"]: r["span_id"] for r in counted}
    assert len(counted_ids) == N, f"{what}: expected one counted row per call, got {len(counted_ids)} distinct calls in spans"

    pairs = defaultdict(list)
    for r in all_rows:
        pairs[r["response_id"]].append(r)
    for rid, pair in pairs.items():
        call = calls[rid]
        label = f"{what}, call {call['prompt']!r} ({'stream' if call['stream'] else 'unary'}, " \
                f"{'traceparent' if call['trace_id'] else 'no trace context'})"
        sources = sorted(r["source"] for r in pair)
        assert sources == ["ebpf", "otlp"], f"{label}: expected one row from the sensor and one from OTLP, got {sources}"
        kept = [r for r in pair if r.get("duplicate_of") is None]
        assert len(kept) == 1, f"{label}: expected exactly one row of the pair with duplicate_of NULL, got {len(kept)}:\n{dump}"
        kept = kept[0]
        dup = next(r for r in pair if r is not kept)
        assert dup["duplicate_of"] == kept["span_id"], \
            f"{label}: expected the left-out row's duplicate_of = the counted row's span_id {kept['span_id']}, got {dup['duplicate_of']!r}"
        assert counted_ids[rid] == kept["span_id"], \
            f"{label}: expected spans to show the row with duplicate_of NULL ({kept['span_id']}), it shows {counted_ids[rid]}"
        merged = [r for r in pair if "merged" in (r["capture_flags"] or [])]
        assert len(merged) == 1, f"{label}: expected exactly one row of the pair flagged 'merged', got {len(merged)}:\n{dump}"
        merged = merged[0]
        first = next(r for r in pair if r is not merged)
        assert merged["attr:lumen.merged_with"] == first["span_id"], \
            f"{label}: expected attributes['lumen.merged_with'] = the other row's span_id {first['span_id']}, got {merged['attr:lumen.merged_with']!r}"
        assert first["attr:lumen.merged_with"] is None, \
            f"{label}: expected only the later row to carry lumen.merged_with, the first has {first['attr:lumen.merged_with']!r}"
        fields = {"pid": out["pid"], "request_model": "gpt-4o-mini", "response_model": call["model"],
                  "input_tokens": call["input"], "output_tokens": call["output"]}
        if merged["source"] == "otlp":
            # What only the sensor knows (the SDK's instrumentation reports no server port with openai 3.x).
            fields.update({"server_port": fake_port, "tls_library": "openssl"})
        wrong = [f"{k}: expected {v!r}, got {merged.get(k)!r}" for k, v in fields.items() if merged.get(k) != v]
        # Every field the first report had, the merged one has too (its own value, or the first's).
        wrong += [f"{k}: NULL in the merged row, but the {first['source']} row has {first[k]!r}"
                  for k in first if k not in OWN_COLUMNS and not k.startswith("attr:")
                  and first[k] is not None and merged.get(k) is None]
        assert not wrong, f"{label}: expected the merged ({merged['source']}) row to hold the fields of both reports:\n  " + \
            "\n  ".join(wrong)
        for r in pair:
            assert r["pid"] == out["pid"], f"{label}: expected pid {out['pid']} on the {r['source']} row, got {r['pid']}"
            assert (r["input_tokens"], r["output_tokens"]) == (call["input"], call["output"]), \
                f"{label}: expected tokens {call['input']}/{call['output']} on the {r['source']} row, got {r['input_tokens']}/{r['output_tokens']}"
            if call["trace_id"]:
                assert r["trace_id"] == call["trace_id"], \
                    f"{label}: expected the {r['source']} row in the propagated trace {call['trace_id']}, got {r['trace_id']}"

    duplicates = server.scalar(f"SELECT count(*) FROM spans_all WHERE {where} AND duplicate_of IS NOT NULL")
    assert duplicates == N, f"{what}: expected {N} rows with duplicate_of set (one per call), got {duplicates}"
    sums = server.rows(f"SELECT count(*), sum(input_tokens), sum(output_tokens) FROM spans WHERE {where}")[0]
    expected = [N, sum(c["input"] for c in out["calls"]), sum(c["output"] for c in out["calls"])]
    assert sums == expected, f"{what}: expected count and token sums over spans {expected} (the client's own), got {sums}"
    llm = server.rows("SELECT count(*), sum(input_tokens) FROM spans WHERE provider IS NOT NULL")[0]
    assert llm == expected[:2], f"{what}: expected nothing else counted as an LLM call in spans, got {llm} (vs {expected[:2]})"

    # The explore API counts each call once too.
    now = datetime.now(timezone.utc)
    window = {"from": (now - timedelta(hours=2)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    r = requests.get(server.url + "/v1/explore/tokens", params={**window, "by": "provider"}, timeout=60)
    assert r.status_code == 200, r.text
    # The sensor names a local OpenAI-shaped server `openai_compatible`, the SDK `openai`: either may count.
    llm_groups = [g for g in r.json()["groups"] if g["group"] is not None]
    got = (sum(g["calls"] for g in llm_groups), sum(g["totals"]["input_tokens"] or 0 for g in llm_groups))
    assert got == (N, expected[1]), \
        f"{what}: expected /v1/explore/tokens to count {N} LLM calls with {expected[1]} input tokens, got {got}: {r.json()}"
    r = requests.get(server.url + "/v1/models", params=window, timeout=60)
    assert r.status_code == 200, r.text
    calls_by_model = sum(m["calls"] for m in r.json()["models"] if m["request_model"] == "gpt-4o-mini")
    assert calls_by_model == N, f"{what}: expected /v1/models to count {N} gpt-4o-mini calls, got {calls_by_model}"


@pytest.mark.parametrize("order", ["hot", "flushed"])
def test_a_call_seen_by_the_sensor_and_the_sdk_counts_once(tmp_path, order):
    cert, key = make_certificate(tmp_path)
    args = ["--flush-age", "300ms"] if order == "flushed" else []
    server = LumenServer(tmp_path / "data", args=args, log_dir=tmp_path).start()
    try:
        with FakeProvider(tls=(str(cert), str(key))) as fake, Sensor(tmp_path, server.url) as sensor:
            port = fake.port
            client_args = ["--traceparent-every", "2", "--service", "dedup-client"]
            if order == "flushed":
                client_args += ["--hold-exports-ms", "4000"]
            out = run_otel_client("openai_v2", fake.url, server.url + "/v1/traces", N, env=trust_env(cert),
                                  args=client_args)
            assert out["exports"] and all(e["result"] == "SUCCESS" for e in out["exports"]), \
                f"expected every OTLP export to succeed: {out['exports']}\n{server.log()}"
            assert len({c["id"] for c in out["calls"]}) == N
            ids = ", ".join(f"'{c['id']}'" for c in out["calls"])
            try:
                wait_for(lambda: server.scalar(f"SELECT count(*) FROM spans_all WHERE response_id IN ({ids})") >= 2 * N,
                         timeout=90, interval=0.5, what=f"{2 * N} rows (sensor and SDK) in spans_all")
            except AssertionError as e:
                got = server.rows("SELECT source, response_id, request_model, pid FROM spans_all "
                                  "WHERE provider IS NOT NULL ORDER BY start_time")
                raise AssertionError(f"{e}\ngot {len(got)}: {got}\nsensor log:\n{sensor.log()[-3000:]}") from None
            time.sleep(1.5)  # nothing more may arrive
            if order == "flushed":
                server.wait_flushed()
            _verify(server, out, port, f"[{order}] while serving")
            merged = server.metric("lumen_calls_merged_total")
            assert merged == N, f"[{order}]: expected lumen_calls_merged_total = {N} (one link per call), got {merged}"
            assert sensor.metric("lumen_sensor_dropped_spans_total") == 0
        server.restart()  # a clean stop flushes: the links hold in Parquet too
        assert server.metric("lumen_hot_rows") == 0
        _verify(server, out, port, f"[{order}] after a flush and restart")
    finally:
        server.kill()
