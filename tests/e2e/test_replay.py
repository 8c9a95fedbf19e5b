"""End-to-end: real SDK traffic captured off the loopback interface, decoded by `lumen-sensor replay`.

The official SDKs (openai, anthropic, boto3), curl and requests talk plain HTTP/1.1 to a fake provider that
speaks the real wire formats (tests/e2e/fake_provider.py); tcpdump records the traffic; the sensor replays the
capture and must produce, for every call, exactly one span carrying what the SDK itself reported (model,
tokens, finish reasons, status, streaming), and push the same spans to a real `lumen serve`."""

import json

import pytest

from fake_provider import FakeProvider
from lumen_harness import wait_for
from replay_harness import (
    CALL_NAMES, CALLS, Capture, capture_unavailable_reason, mismatches, parse_time_ns, pcap_requests,
    run_calls, run_replay, spans_of,
)

_reason = capture_unavailable_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")

LLM_CALLS = [name for name in CALL_NAMES if name != "healthz"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Every call of the scenario, made once, under one capture."""
    work = tmp_path_factory.mktemp("replay")
    pcap = work / "llm.pcap"
    with FakeProvider() as fake:
        with Capture(fake.port, pcap) as capture:
            calls = run_calls(fake.url)
        port = fake.port
    return {"pcap": pcap, "calls": {c["name"]: c for c in calls}, "order": calls, "port": port,
            "capture": capture}


@pytest.fixture(scope="module")
def replayed(recorded):
    return run_replay(recorded["pcap"])


def _call(recorded, name):
    call = recorded["calls"][name]
    assert call["error"] is None, f"the client call itself failed (fake provider or SDK problem):\n{call['error']}"
    return call


def _only_span(recorded, replayed, name):
    call = _call(recorded, name)
    found = spans_of(call, replayed)
    assert len(found) == 1, (
        f"{name}: expected exactly one span starting within the call's window, got {len(found)}:\n"
        + "\n".join(json.dumps(s)[:600] for s in found)
        + f"\n(all spans: {[(s.get('start_time'), s.get('url_path'), s.get('request_model')) for s in replayed]})")
    return call, found[0]


def test_capture_holds_every_exchange(recorded):
    """Independent of the decoder: the pcap really holds one HTTP request per call, and nothing was dropped."""
    stats = recorded["capture"].stats
    assert stats.get("dropped by kernel", 0) == 0, recorded["capture"].stderr()
    requests = pcap_requests(recorded["pcap"])
    assert len(requests) == len(CALLS), (requests, [c["name"] for c in recorded["order"]])
    for call, (ts, _method, _target) in zip(recorded["order"], requests):
        assert call["t0"] - 5_000_000 <= ts <= call["t1"] + 5_000_000, (call["name"], ts, call["t0"], call["t1"])


@pytest.mark.parametrize("name", LLM_CALLS)
def test_call_is_decoded_as_the_sdk_reported(recorded, replayed, name):
    call, span = _only_span(recorded, replayed, name)
    problems = mismatches(span, call)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems) + f"\nspan: {json.dumps(span)[:3000]}"

    # Transport facts of every span of this capture.
    assert span.get("source") == "pcap", span.get("source")
    assert span.get("http_version") == "1.1", span.get("http_version")
    assert span.get("server_port") == recorded["port"], span.get("server_port")
    assert span.get("server_address") in ("127.0.0.1", "localhost"), span.get("server_address")
    duration = span.get("duration_ms")
    assert duration is not None and 0 < duration < (call["t1"] - call["t0"]) / 1e6 + 50, duration
    end = parse_time_ns(span.get("end_time"))
    if end is not None:
        assert end >= parse_time_ns(span["start_time"])
    ttft = span.get("ttft_ms")
    if call["expect"].get("streaming") and call["expect"].get("http_status") == 200 and "error_type" not in call["expect"]:
        assert ttft is not None and 0 < ttft <= duration, (ttft, duration)
    elif not call["expect"].get("streaming"):
        assert ttft is None or ttft <= duration, ttft


@pytest.mark.parametrize("name", LLM_CALLS)
def test_captured_messages_are_otel_genai_json(recorded, replayed, name):
    """When the replay captures content, it is OTel GenAI JSON that holds this call's own prompt."""
    call, span = _only_span(recorded, replayed, name)
    raw_in, raw_out = span.get("input_messages"), span.get("output_messages")
    if raw_in is None and raw_out is None:
        pytest.skip("no message content captured for this span")
    for raw in (raw_in, raw_out):
        if raw is None:
            continue
        messages = json.loads(raw) if isinstance(raw, str) else raw
        assert isinstance(messages, list) and messages, raw
        for m in messages:
            assert isinstance(m.get("role"), str) and isinstance(m.get("parts"), list), m
    if raw_in is not None and call["marker"]:
        assert call["marker"] in (raw_in if isinstance(raw_in, str) else json.dumps(raw_in)), raw_in


def test_healthz_is_a_plain_http_span(recorded, replayed):
    call, span = _only_span(recorded, replayed, "healthz")
    assert not mismatches(span, call), mismatches(span, call)
    for field in ("provider", "operation", "request_model", "response_model", "input_tokens", "output_tokens",
                  "input_messages", "output_messages"):
        assert span.get(field) is None, (field, span.get(field))
    assert span.get("source") == "pcap"


def test_one_span_per_exchange_and_nothing_else(recorded, replayed):
    """No span for the interim `100 Continue`, no duplicates from keep-alive connections, no stray spans."""
    assert len(replayed) == len(CALLS), [(s.get("url_path"), s.get("http_status")) for s in replayed]
    starts = sorted(parse_time_ns(s["start_time"]) for s in replayed)
    for call, start in zip(recorded["order"], starts):
        assert call["t0"] - 5_000_000 <= start <= call["t1"] + 5_000_000, call["name"]


def test_replay_pushes_the_same_spans_to_lumen_serve(recorded, replayed, lumen):
    server = lumen(args=["--ingest-token", "ingest-secret", "--query-token", "query-secret"])
    run_replay(recorded["pcap"], "--endpoint", server.url, "--token", "ingest-secret")
    auth = {"Authorization": "Bearer query-secret"}
    query = ("SELECT provider, request_model, response_model, input_tokens, output_tokens, streaming, http_status, "
             "url_path, source FROM spans ORDER BY start_time")

    def rows():
        r = server.sql(query, headers=auth)
        assert r.status_code == 200, r.text
        return r.json()["rows"]

    got = wait_for(lambda: (lambda rs: rs if len(rs) >= len(CALLS) else None)(rows()), timeout=30,
                   what="the replayed spans in lumen")
    assert len(got) == len(CALLS), got
    fields = ["provider", "request_model", "response_model", "input_tokens", "output_tokens", "streaming",
              "http_status", "url_path", "source"]
    printed = sorted(replayed, key=lambda s: parse_time_ns(s["start_time"]))
    for row, span, call in zip(got, printed, recorded["order"]):
        stored = dict(zip(fields, row))
        assert stored == {f: span.get(f) for f in fields}, (call["name"], stored)
        for f in ("input_tokens", "output_tokens"):
            if call["expect"] and f in call["expect"]:
                assert stored[f] == call["expect"][f], (call["name"], f, stored[f], call["expect"][f])
    assert {r[-1] for r in got} == {"pcap"}

