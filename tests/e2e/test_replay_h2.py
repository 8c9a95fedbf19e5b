"""End-to-end: cleartext HTTP/2 (h2c, prior knowledge) LLM traffic captured off loopback, decoded by
`lumen-sensor replay`.

A fake provider speaks h2c (tests/e2e/fake_h2_provider.py: the routes and deterministic tokens of the HTTP/1.1
fake, served over HTTP/2 frames); tcpdump records the traffic; the sensor replays the capture and must produce
one span per request stream with what the client itself got (model, tokens, finish reasons, streaming,
time to first token), `http_version` "2", and never the credentials the client sent.

The traffic, one TCP connection per group:
* curl --http2-prior-knowledge, one request per connection: a unary chat completion, a streamed one, and a
  streamed one with `Content-Encoding: gzip`. (curl 7.88.1 cannot reuse a prior-knowledge connection for a
  second request, `--next` or `-Z` alike: "Error in the HTTP2 framing layer", curl/curl#10634, fixed in 8.0.0.
  So curl gives one stream per connection here.)
* the official openai SDK on an HTTP/2-only httpx client (`httpx2.Client(http1=False, http2=True)`: h2c prior
  knowledge): three requests from three threads at once, multiplexed as streams 1, 3, 5 of ONE connection, the
  two streamed responses open at the same time with their DATA frames interleaved (checked in the pcap itself,
  independently of the decoder);
* the official anthropic SDK the same way, two requests one after the other on one connection (streams 1
  and 3), the stream's events each split over two DATA frames mid-line (the fake's `x-fake-split` knob).
"""

import json
import subprocess
import threading
import time
import traceback

import pytest

from fake_h2_provider import FakeH2Provider
from lumen_harness import wait_for
from replay_harness import (
    OPENAI_ON_LOOPBACK, SENSOR_BIN, Capture, _anthropic_expect, _collect_chat_stream, _openai_chat_expect,
    capture_unavailable_reason, mismatches, parse_time_ns, pcap_h2_connections, run_replay, sse_data,
)

_reason = capture_unavailable_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")

OPENAI_KEY = "sk-h2-SECRET-123"
ANTHROPIC_KEY = "sk-ant-h2-SECRET-456"
SECRETS = [f"Bearer {OPENAI_KEY}", OPENAI_KEY, ANTHROPIC_KEY]


# --- the calls ---------------------------------------------------------------------------------------
#
# Each call takes the fake's base URL and returns the expectation: the span fields as the client reported
# them (the bytes curl printed, or the SDK's response objects). Every call uses its own request model, which
# is how its span is found: the multiplexed calls overlap in time.


def curl_h2(*args, timeout=60) -> bytes:
    out = subprocess.run(["curl", "-sS", "--fail-with-body", "-N", "--http2-prior-knowledge", *args],
                         capture_output=True, timeout=timeout)
    assert out.returncode == 0, f"curl {args} failed ({out.returncode}): {out.stderr.decode()} {out.stdout[:500]!r}"
    return out.stdout


def _curl_chat(url, body, *extra) -> bytes:
    return curl_h2(*extra, "-X", "POST", f"{url}/v1/chat/completions", "-H", "Content-Type: application/json",
                   "-H", f"Authorization: Bearer {OPENAI_KEY}", "-d", json.dumps(body))


def _expect_from_chunks(model, raw: bytes) -> dict:
    """The truth of a streamed chat completion, from the SSE bytes curl printed: tokens from the usage chunk
    (the one with `choices: []`), the model and id from the chunks, the finish reasons of every choice."""
    data = sse_data(raw)
    assert data[-1] == "[DONE]", data[-3:]
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant", chunks[0]
    usage_chunks = [c for c in chunks if c["choices"] == [] and c.get("usage")]
    assert len(usage_chunks) == 1, "no usage chunk in the stream"
    usage = usage_chunks[0]["usage"]
    finishes = {}
    for c in chunks:
        for choice in c["choices"]:
            if choice.get("finish_reason"):
                finishes[choice["index"]] = choice["finish_reason"]
    return {"provider": OPENAI_ON_LOOPBACK, "operation": "chat", "request_model": model,
            "response_model": chunks[0]["model"], "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"], "streaming": True, "http_status": 200,
            "http_method": "POST", "url_path": "/v1/chat/completions",
            "finish_reasons": [finishes[i] for i in sorted(finishes)], "response_id": chunks[0]["id"]}


def h2_curl_chat_unary(url):
    body = {"model": "gpt-4o", "messages": [{"role": "system", "content": "You are terse."},
                                            {"role": "user", "content": "Name one colour of the h2 amber sunrise."}]}
    r = json.loads(_curl_chat(url, body))
    u = r["usage"]
    return {"provider": OPENAI_ON_LOOPBACK, "operation": "chat", "request_model": "gpt-4o",
            "response_model": r["model"], "input_tokens": u["prompt_tokens"], "output_tokens": u["completion_tokens"],
            "streaming": False, "http_status": 200, "http_method": "POST", "url_path": "/v1/chat/completions",
            "finish_reasons": [c["finish_reason"] for c in r["choices"]], "response_id": r["id"]}


def h2_curl_chat_stream(url):
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Stream a short verse about the h2 bronze river please."}]}
    return _expect_from_chunks("gpt-4o-mini", _curl_chat(url, body))


def h2_curl_chat_stream_gzip(url):
    body = {"model": "gpt-4o-2024-11-20", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Compress a stream about the h2 copper signal."}]}
    return _expect_from_chunks("gpt-4o-2024-11-20", _curl_chat(url, body, "--compressed", "-H", "x-fake-gzip: 1"))


def h2_sdk_chat_stream_length(client):
    stream = client.chat.completions.create(
        model="gpt-4.1", stream=True, stream_options={"include_usage": True}, max_tokens=4,
        messages=[{"role": "user", "content": "Stream a long story about the h2 delta harbour."}])
    model, rid, usage, finishes = _collect_chat_stream(stream)
    assert finishes == ["length"], finishes
    return _openai_chat_expect("gpt-4.1", model, usage, finishes, rid, True)


def h2_sdk_chat_stream_reasoning(client):
    stream = client.chat.completions.create(
        model="o4-mini", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Think and stream about the h2 echo puzzle slowly."}])
    model, rid, usage, finishes = _collect_chat_stream(stream)
    e = _openai_chat_expect("o4-mini", model, usage, finishes, rid, True)
    assert e.get("reasoning_tokens"), usage
    return e


def h2_sdk_chat_unary_n2(client):
    r = client.chat.completions.create(
        model="gpt-4.1-mini", n=2, messages=[{"role": "user", "content": "Give two answers about h2 foxtrot."}])
    return _openai_chat_expect("gpt-4.1-mini", r.model, r.usage, [c.finish_reason for c in r.choices], r.id, False)


def h2_sdk_anthropic_stream_split(client):
    stream = client.messages.create(
        model="claude-haiku-4-5", max_tokens=512, stream=True,
        messages=[{"role": "user", "content": "Stream a note on the h2 golf weather."}],
        extra_headers={"x-fake-split": "1"})
    model = rid = stop = None
    usage = {}
    for ev in stream:
        if ev.type == "message_start":
            model, rid = ev.message.model, ev.message.id
            usage = ev.message.usage.model_dump()
        elif ev.type == "message_delta":
            stop = ev.delta.stop_reason
            usage.update({k: v for k, v in ev.usage.model_dump().items() if v is not None})
    return _anthropic_expect("claude-haiku-4-5", model, usage, stop, rid, True)


def h2_sdk_anthropic_unary(client):
    r = client.messages.create(model="claude-sonnet-4-6", max_tokens=256,
                               messages=[{"role": "user", "content": "Tell me about the h2 hotel lobby."}])
    return _anthropic_expect("claude-sonnet-4-6", r.model, r.usage.model_dump(), r.stop_reason, r.id, False)


# connection group -> calls; "parallel" groups start all their calls at once on one client.
GROUPS = [
    ("curl_unary", "serial", [h2_curl_chat_unary]),
    ("curl_stream", "serial", [h2_curl_chat_stream]),
    ("curl_stream_gzip", "serial", [h2_curl_chat_stream_gzip]),
    ("openai_multiplexed", "parallel", [h2_sdk_chat_stream_length, h2_sdk_chat_stream_reasoning,
                                        h2_sdk_chat_unary_n2]),
    ("anthropic_sequential", "serial", [h2_sdk_anthropic_stream_split, h2_sdk_anthropic_unary]),
]
CALL_NAMES = [fn.__name__ for _, _, calls in GROUPS for fn in calls]
STREAMING = {"h2_curl_chat_stream", "h2_curl_chat_stream_gzip", "h2_sdk_chat_stream_length",
             "h2_sdk_chat_stream_reasoning", "h2_sdk_anthropic_stream_split"}
# A word of each call's prompt, to find it in captured input messages.
MARKERS = {"h2_curl_chat_unary": "amber", "h2_curl_chat_stream": "bronze", "h2_curl_chat_stream_gzip": "copper",
           "h2_sdk_chat_stream_length": "delta", "h2_sdk_chat_unary_n2": "foxtrot",
           "h2_sdk_chat_stream_reasoning": "echo", "h2_sdk_anthropic_stream_split": "golf",
           "h2_sdk_anthropic_unary": "hotel"}


def _h2_client(kind, url):
    """An official SDK on an HTTP/2-only httpx client: h2c with prior knowledge, one pooled connection that
    concurrent requests share as streams."""
    import anthropic
    import httpx2
    import openai

    http = httpx2.Client(http1=False, http2=True, timeout=60)
    if kind == "openai":
        return openai.OpenAI(base_url=url + "/v1", api_key=OPENAI_KEY, max_retries=0, http_client=http)
    return anthropic.Anthropic(base_url=url, api_key=ANTHROPIC_KEY, max_retries=0, http_client=http)


def _run_one(fn, arg, group):
    t0 = time.time_ns()
    try:
        expect, error = fn(arg), None
    except Exception:  # noqa: BLE001 - reported by the test of this call
        expect, error = None, traceback.format_exc()
    return {"name": fn.__name__, "group": group, "t0": t0, "t1": time.time_ns(), "expect": expect, "error": error,
            "marker": MARKERS.get(fn.__name__)}


def run_h2_calls(fake, gap=0.05) -> list[dict]:
    """Every group of calls in order, each on its own connection. Each record: name, group, t0/t1 (wall
    clock ns around the call), expect (what the client reported) or error (the traceback)."""
    records = []
    for group, mode, calls in GROUPS:
        if group.startswith("curl"):
            arg, client = fake.url, None
        else:
            client = _h2_client("anthropic" if group.startswith("anthropic") else "openai", fake.url)
            arg = client
        if mode == "parallel":
            out = [None] * len(calls)

            def work(i, fn):
                out[i] = _run_one(fn, arg, group)

            threads = [threading.Thread(target=work, args=(i, fn)) for i, fn in enumerate(calls)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            records += out
        else:
            for fn in calls:
                records.append(_run_one(fn, arg, group))
        # The openai SDK stops reading at `data: [DONE]`; closing the client right then could cut the
        # connection before the server's END_STREAM, which an application keeping its client would get.
        wait_for(fake.idle, timeout=30, what="the fake to finish every response stream")
        if client is not None:
            client.close()
        time.sleep(gap)  # groups never overlap
    return records


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Every call, made once, under one capture."""
    work = tmp_path_factory.mktemp("replay_h2")
    pcap = work / "h2c.pcap"
    with FakeH2Provider() as fake:
        with Capture(fake.port, pcap) as capture:
            calls = run_h2_calls(fake)
        port = fake.port
        streams = list(fake.streams)
        requests = list(fake.requests)
        accepted = fake.connections_accepted
    return {"pcap": pcap, "calls": {c["name"]: c for c in calls}, "order": calls, "port": port,
            "capture": capture, "streams": streams, "requests": requests, "accepted": accepted}


@pytest.fixture(scope="module")
def replay_output(recorded):
    """stdout and stderr of `lumen-sensor replay` on the capture."""
    out = subprocess.run([str(SENSOR_BIN), "replay", str(recorded["pcap"])], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, f"lumen-sensor replay exited with {out.returncode}:\n{out.stderr[-5000:]}"
    return out.stdout, out.stderr


@pytest.fixture(scope="module")
def replayed(recorded):
    return run_replay(recorded["pcap"])


def _call(recorded, name):
    call = recorded["calls"][name]
    assert call["error"] is None, f"the client call itself failed (fake provider or client problem):\n{call['error']}"
    return call


def _span_of(recorded, replayed, name):
    """The one span of a call, found by its request model (calls on one connection overlap in time)."""
    call = _call(recorded, name)
    model = call["expect"]["request_model"]
    found = [s for s in replayed if s.get("request_model") == model]
    assert len(found) == 1, (
        f"{name}: expected exactly one span with request_model {model!r}, got {len(found)}:\n"
        + "\n".join(json.dumps(s)[:800] for s in found)
        + f"\n(all spans: {[(s.get('start_time'), s.get('url_path'), s.get('request_model')) for s in replayed]})")
    return call, found[0]


# --- the capture itself ------------------------------------------------------------------------------


def test_capture_holds_the_expected_h2c_connections(recorded):
    """Independent of the decoder: the pcap holds one h2c connection per group, every request as a client
    HEADERS frame on its own stream, and the multiplexed group really shares one connection with streams
    that are open at the same time and whose response DATA frames interleave."""
    for call in recorded["order"]:
        _call(recorded, call["name"])
    stats = recorded["capture"].stats
    assert stats.get("dropped by kernel", 0) == 0, recorded["capture"].stderr()
    conns = pcap_h2_connections(recorded["pcap"], recorded["port"])
    assert len(conns) == len(GROUPS) == recorded["accepted"], (sorted(conns), recorded["accepted"])

    # Connections in the order they were opened, matched to the groups (which never overlap).
    ordered = sorted(conns.items(), key=lambda kv: kv[1][0]["ts"])
    for (group, _mode, calls), (client_port, frames) in zip(GROUPS, ordered):
        requests = [f for f in frames if f["dir"] == "c2s" and f["type"] == "HEADERS"]
        assert [f["stream"] for f in requests] == [1 + 2 * i for i in range(len(calls))], (group, requests)
        ends = {f["stream"]: f["ts"] for f in frames if f["dir"] == "s2c" and f["flags"] & 0x1
                and f["type"] in ("DATA", "HEADERS")}
        assert sorted(ends) == [f["stream"] for f in requests], (group, ends)
        first_call = recorded["calls"][calls[0].__name__]
        assert first_call["t0"] - 5_000_000 <= requests[0]["ts"] <= first_call["t1"] + 5_000_000, group
        if group == "openai_multiplexed":
            opened = {f["stream"]: f["ts"] for f in requests}
            # The most streams open at once (request HEADERS sent, response END_STREAM not yet).
            most = max(sum(1 for s in opened if opened[s] <= t < ends[s]) for t in opened.values())
            assert most >= 2, f"the streams never overlap: opened {opened}, ended {ends}"
            data = [f["stream"] for f in frames if f["dir"] == "s2c" and f["type"] == "DATA" and f["length"]]
            switches = sum(1 for a, b in zip(data, data[1:]) if a != b)
            assert switches >= 4, f"response DATA frames of the streams do not interleave: {data}"

    # The server saw the same: stream ids per accepted connection.
    per_conn = {}
    for conn, stream_id, _method, _path in recorded["streams"]:
        per_conn.setdefault(conn, []).append(stream_id)
    assert [sorted(v) for _, v in sorted(per_conn.items())] == [
        [1 + 2 * i for i in range(len(calls))] for _, _, calls in GROUPS], per_conn


# --- the decoded spans -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CALL_NAMES)
def test_call_is_decoded_as_the_client_reported(recorded, replayed, name):
    call, span = _span_of(recorded, replayed, name)
    problems = mismatches(span, call)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems) + f"\nspan: {json.dumps(span)[:3000]}"

    assert span.get("http_version") == "2", span.get("http_version")
    assert span.get("source") == "pcap", span.get("source")
    assert span.get("server_port") == recorded["port"], span.get("server_port")
    assert span.get("server_address") in ("127.0.0.1", "localhost"), span.get("server_address")
    assert span.get("streaming") is (name in STREAMING), span.get("streaming")
    start = parse_time_ns(span.get("start_time"))
    assert call["t0"] - 5_000_000 <= start <= call["t1"] + 5_000_000, (start, call["t0"], call["t1"])
    duration = span.get("duration_ms")
    assert duration is not None and 0 < duration < (call["t1"] - call["t0"]) / 1e6 + 50, duration
    end = parse_time_ns(span.get("end_time"))
    if end is not None:
        assert end >= start
    ttft = span.get("ttft_ms")
    if name in STREAMING:
        assert ttft is not None and 0 < ttft <= duration, (ttft, duration)
    else:
        assert ttft is None or ttft <= duration, ttft
    flags = span.get("capture_flags") or []
    assert not {"truncated", "mid_stream_attach", "undecodable"} & set(flags), flags


@pytest.mark.parametrize("name", CALL_NAMES)
def test_captured_messages_hold_the_calls_own_prompt(recorded, replayed, name):
    """Streams of one connection are not mixed up: when the replay captures content, the span's input
    messages are this call's own prompt, as OTel GenAI JSON."""
    call, span = _span_of(recorded, replayed, name)
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
    if raw_in is not None:
        text = raw_in if isinstance(raw_in, str) else json.dumps(raw_in)
        assert call["marker"] in text, raw_in
        others = [c["marker"] for c in recorded["order"] if c["name"] != name]
        assert not [m for m in others if m in text], (name, raw_in)


def test_one_span_per_request_stream_and_nothing_else(recorded, replayed):
    """No span for SETTINGS/PING/WINDOW_UPDATE traffic or the preface, no duplicates."""
    assert len(replayed) == len(CALL_NAMES), [(s.get("url_path"), s.get("request_model")) for s in replayed]
    assert sorted(s.get("request_model") for s in replayed) == sorted(
        recorded["calls"][n]["expect"]["request_model"] for n in CALL_NAMES if recorded["calls"][n]["expect"])


def test_credentials_never_appear_in_the_replay_output(recorded, replay_output):
    """The credentials the clients sent (the fake received them: curl and the openai SDK as `Authorization:
    Bearer sk-h2-...`, the anthropic SDK its key as a bearer token too) appear nowhere in what the replay
    prints, spans or logs."""
    sent = {h[k] for _m, _p, h in recorded["requests"] for k in ("authorization", "x-api-key") if k in h}
    assert f"Bearer {OPENAI_KEY}" in sent and any(ANTHROPIC_KEY in v for v in sent), sent
    stdout, stderr = replay_output
    assert stdout.strip(), "the replay printed nothing"
    for secret in SECRETS + ["SECRET"]:
        assert secret not in stdout, f"{secret!r} is in the replay's stdout"
        assert secret not in stderr, f"{secret!r} is in the replay's stderr"
