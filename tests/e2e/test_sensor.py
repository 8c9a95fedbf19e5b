"""End-to-end: the real eBPF sensor (`lumen-sensor run`) captures the LLM calls of unmodified processes and
ships them to a real `lumen serve`.

Clients that know nothing of Lumen — the official openai, anthropic and boto3 SDKs, curl, and Node.js fetch,
each in a process of its own started after the sensor — call a fake provider over HTTPS (self-signed
certificate, trusted through the standard variables) and an Ollama-shaped server over plain http://. Every
call must come back from `SELECT ... FROM spans` once, with what the client itself reported (model, tokens,
status, streaming), ttft for streams, and the pid and name of the process that made it."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_provider import FakeProvider
from lumen_harness import LumenServer, free_port, wait_for
from replay_harness import CALL_NAMES, SENSOR_BIN, mismatches, parse_time_ns, spans_of
from sensor_harness import Sensor, make_certificate, sensor_unavailable_reason, stored_spans, trust_env

_reason = sensor_unavailable_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")

HERE = Path(__file__).parent
PYTHON = sys.executable
# Calls made over HTTPS (all of the scripted ones; healthz is a plain HTTP span).
TLS_CALLS = CALL_NAMES
# Calls made to the plaintext Ollama-shaped server: Ollama's own API with curl, and its OpenAI-compatible
# API with the openai SDK.
PLAIN_CALLS = ["curl_ollama_chat", "curl_ollama_generate_expect_100", "openai_chat_stream", "openai_chat_unary"]


def run_clients(url: str, out: Path, env: dict, names=()) -> list[dict]:
    proc = subprocess.run([PYTHON, str(HERE / "sensor_clients.py"), url, str(out), *names],
                          env=dict(os.environ, **env), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return pickle.loads(out.read_bytes())


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    work = tmp_path_factory.mktemp("sensor")
    cert, key = make_certificate(work)
    env = trust_env(cert)
    server = LumenServer(work / "data", args=["--flush-age", "1s"], log_dir=work).start()
    excluded_curl = work / "curl-excluded"
    shutil.copy(shutil.which("curl"), excluded_curl)
    sensor = Sensor(work, server.url, args=["--exclude-process", "curl-excluded"])
    try:
        with FakeProvider(tls=(str(cert), str(key))) as tls_fake, FakeProvider() as plain_fake:
            sensor.start()
            tls_calls = run_clients(tls_fake.url, work / "tls.pickle", env)
            plain_calls = run_clients(plain_fake.url, work / "plain.pickle", env, PLAIN_CALLS)

            # Node.js: a new executable with OpenSSL inside. Start it, wait until the sensor has probed it
            # (the exec tracepoint tells the sensor), then let it call.
            files_before = sensor.metric("lumen_sensor_attached_files")
            node = subprocess.Popen(["node", str(HERE / "node_fetch_client.mjs"), tls_fake.url],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=dict(os.environ, **env), text=True)
            wait_for(lambda: sensor.metric("lumen_sensor_attached_files") > files_before, timeout=60,
                     what="the sensor to probe the node executable")
            node_out, node_err = node.communicate("go\n", timeout=120)
            assert node.returncode == 0, node_err
            node_result = json.loads(node_out)

            # A process excluded by name: its call must not be captured.
            t0 = time.time_ns()
            out = subprocess.run([str(excluded_curl), "-sS", "--http1.1", f"{tls_fake.url}/v1/chat/completions",
                                  "-H", "content-type: application/json",
                                  "-d", '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"excluded"}]}'],
                                 env=dict(os.environ, **env), capture_output=True, timeout=60)
            assert out.returncode == 0, out.stderr
            excluded_window = (t0, time.time_ns())

            expected = len(tls_calls) + len(plain_calls) + 2
            ports = (tls_fake.port, plain_fake.port)
            where = f"server_port IN ({ports[0]}, {ports[1]})"
            try:
                wait_for(lambda: len(stored_spans(server, where)) >= expected, timeout=60, interval=0.5,
                         what=f"{expected} captured spans in lumen")
            except AssertionError as e:
                got = [(s["process_name"], s["url_path"], s["request_model"]) for s in stored_spans(server, where)]
                raise AssertionError(f"{e}\ngot {len(got)}: {got}\nsensor log:\n{sensor.log()[-4000:]}") from None
            spans = stored_spans(server, where)
            metrics = sensor.metrics()
        yield {"tls": {c["name"]: c for c in tls_calls}, "plain": {c["name"]: c for c in plain_calls},
               "node": node_result, "spans": spans, "tls_port": ports[0], "plain_port": ports[1],
               "metrics": metrics, "excluded_window": excluded_window, "sensor": sensor, "server": server}
    finally:
        sensor.stop()
        server.kill()


def _one(live, call, port):
    assert call["error"] is None, f"the client call itself failed:\n{call['error']}"
    candidates = [s for s in live["spans"] if s["server_port"] == port]
    found = spans_of(call, candidates)
    assert len(found) == 1, (
        f"{call['name']}: expected one span in the call's window, got {len(found)}: "
        + json.dumps([(s['start_time'], s['url_path'], s['pid'], s['process_name']) for s in found]))
    return found[0]


def _check(span, call, tls: bool):
    problems = mismatches(span, call)
    assert not problems, f"{call['name']}:\n  " + "\n  ".join(problems) + f"\nspan: {json.dumps(span)[:2000]}"
    assert span["source"] == "ebpf"
    assert span["pid"] == call["pid"], (span["pid"], call["pid"])
    assert span["process_name"] == call["process"], (span["process_name"], call["process"])
    assert span["tls_library"] == ("openssl" if tls else "plaintext")
    assert span["server_address"] == "127.0.0.1"
    assert span["http_version"] == "1.1"
    expect = call["expect"]
    duration = span["duration_ms"]
    assert duration is not None and 0 < duration < (call["t1"] - call["t0"]) / 1e6 + 50
    if expect.get("streaming") and expect.get("http_status") == 200 and "error_type" not in expect:
        assert span["ttft_ms"] is not None and 0 < span["ttft_ms"] <= duration, (span["ttft_ms"], duration)
    if not expect.get("streaming"):
        assert span["ttft_ms"] is None or span["ttft_ms"] <= duration


@pytest.mark.parametrize("name", TLS_CALLS)
def test_https_call_is_captured_as_the_client_reported(live, name):
    call = live["tls"][name]
    _check(_one(live, call, live["tls_port"]), call, tls=True)


@pytest.mark.parametrize("name", PLAIN_CALLS)
def test_plaintext_ollama_call_is_captured(live, name):
    call = live["plain"][name]
    _check(_one(live, call, live["plain_port"]), call, tls=False)


@pytest.mark.parametrize("index", [0, 1])
def test_node_fetch_is_captured(live, index):
    node = live["node"]
    c = node["calls"][index]
    call = {"name": c["name"], "t0": int(c["t0"]) - 2_000_000, "t1": int(c["t1"]) + 2_000_000,
            "expect": c["expect"], "error": None, "pid": node["pid"], "process": "node"}
    span = _one(live, call, live["tls_port"])
    _check(span, call, tls=True)
    assert span["exe"] and span["exe"].endswith("/node"), span["exe"]


def test_each_call_is_one_span_and_the_server_side_is_not_captured(live):
    """The fake provider runs on this node too: its side of each call (it is the server) is not a second span."""
    expected = len(live["tls"]) + len(live["plain"]) + 2
    assert len(live["spans"]) == expected, [(s["url_path"], s["pid"], s["process_name"]) for s in live["spans"]]
    assert os.getpid() not in {s["pid"] for s in live["spans"]}, "the fake provider's (server) side was captured"


def test_excluded_process_is_not_captured(live):
    lo, hi = live["excluded_window"]
    inside = [s for s in live["spans"] if lo <= parse_time_ns(s["start_time"]) <= hi]
    assert inside == [], inside
    assert not [s for s in live["spans"] if s["process_name"] == "curl-excluded"]


def test_content_is_captured_and_credentials_are_not(live):
    span = _one(live, live["tls"]["openai_chat_unary"], live["tls_port"])
    assert "alpha" in (span["input_messages"] or ""), span["input_messages"]
    assert span["output_messages"]
    blob = json.dumps(live["spans"])
    for secret in ("sk-fake-key", "sk-ant-fake-key", "sk-node-fake", "fake-secret"):
        assert secret not in blob, f"{secret} leaked into a span"


def test_metrics_count_what_was_captured(live):
    m = live["metrics"]
    assert m["lumen_sensor_llm_spans_total"] >= len(live["tls"]) + len(live["plain"]) + 1
    assert m["lumen_sensor_exported_spans_total"] >= len(live["spans"])
    assert m["lumen_sensor_attached_files"] >= 2  # the system libssl and the node executable
    assert m["lumen_sensor_attached_links"] >= 25 + 2 * 10
    assert m["lumen_sensor_dropped_spans_total"] == 0
    assert m["lumen_sensor_ring_drops_total"] == 0
    assert m["lumen_sensor_server_side_skipped_total"] >= 1


def test_spool_keeps_spans_while_the_server_is_down_and_metadata_mode(tmp_path):
    """The server is unreachable when the calls happen: spans wait in the on-disk spool and arrive once it
    starts. In `metadata` mode no prompt or completion leaves the node."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with FakeProvider() as fake, Sensor(tmp_path, endpoint, args=["--capture", "metadata"]) as sensor:
        calls = run_clients(fake.url, tmp_path / "calls.pickle", {}, ["openai_chat_unary", "curl_ollama_chat"])
        wait_for(lambda: sensor.metric("lumen_sensor_spooled_spans_total") >= 2, timeout=60,
                 what="spans in the spool")
        assert sensor.metric("lumen_sensor_dropped_spans_total") == 0
        assert list((tmp_path / "spool").glob("*.ndjson.gz")), "nothing on disk in the spool"
        server = LumenServer(tmp_path / "data", port=port, args=["--flush-age", "1s"], log_dir=tmp_path).start()
        try:
            where = f"server_port = {fake.port}"
            wait_for(lambda: len(stored_spans(server, where)) >= 2, timeout=90, interval=0.5,
                     what="spooled spans to reach the server")
            spans = stored_spans(server, where)
            assert len(spans) == 2, spans
            for call in calls:
                span = _one({"spans": spans}, call, fake.port)
                assert not mismatches(span, call), mismatches(span, call)
                assert span["input_messages"] is None and span["output_messages"] is None, span
            wait_for(lambda: not list((tmp_path / "spool").glob("*.ndjson.gz")), timeout=30,
                     what="the spool to empty")
        finally:
            server.kill()


def test_a_thousand_calls_give_a_thousand_spans(tmp_path):
    """A process started after the sensor makes 1,000 calls over HTTPS on keep-alive connections (the
    openai SDK's pool): 1,000 spans, each with the model and tokens of its answer."""
    cert, key = make_certificate(tmp_path)
    server = LumenServer(tmp_path / "data", args=["--flush-age", "1s"], log_dir=tmp_path).start()
    script = (
        "import os, sys, openai\n"
        "client = openai.OpenAI(base_url=sys.argv[1] + '/v1', api_key='sk-fake-key', max_retries=0)\n"
        "tokens = 0\n"
        "for i in range(1000):\n"
        "    r = client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': f'call {i}'}])\n"
        "    tokens += r.usage.completion_tokens\n"
        "print(os.getpid(), tokens)\n")
    try:
        with FakeProvider(tls=(str(cert), str(key))) as fake, Sensor(tmp_path, server.url) as sensor:
            out = subprocess.run([PYTHON, "-c", script, fake.url], env=dict(os.environ, **trust_env(cert)),
                                 capture_output=True, text=True, timeout=900)
            assert out.returncode == 0, out.stderr[-3000:]
            pid, tokens = map(int, out.stdout.split())
            query = (f"SELECT count(*), count(DISTINCT span_id), sum(output_tokens), min(pid), max(pid), "
                     f"count(response_model) FROM spans WHERE server_port = {fake.port}")
            wait_for(lambda: server.rows(query)[0][0] >= 1000, timeout=120, interval=0.5, what="1,000 spans")
            time.sleep(1.5)  # nothing more may arrive
            n, distinct, total_tokens, min_pid, max_pid, with_model = server.rows(query)[0]
            assert (n, distinct, with_model) == (1000, 1000, 1000), server.rows(query)
            assert total_tokens == tokens
            assert min_pid == max_pid == pid
            flags = server.rows(f"SELECT DISTINCT array_to_string(capture_flags, ',') FROM spans "
                                f"WHERE server_port = {fake.port}")
            assert flags == [["redacted"]], flags  # the default mode's flag, and nothing lost
            assert sensor.metric("lumen_sensor_dropped_spans_total") == 0
    finally:
        server.kill()


def test_metadata_mode_stores_no_prompt_text(tmp_path):
    """In `metadata` mode the prompt never reaches the server: it is nowhere in the stored Parquet files."""
    prompt = "confidential-quarterly-numbers-7f3a9c"
    server = LumenServer(tmp_path / "data", args=["--flush-age", "1s"], log_dir=tmp_path).start()
    try:
        with FakeProvider() as fake, Sensor(tmp_path, server.url, args=["--capture", "metadata"]):
            for path, body in (("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [
                                   {"role": "system", "content": f"system {prompt}"},
                                   {"role": "user", "content": f"user {prompt}"}]}),
                               ("/api/chat", {"model": "llama3.2:3b", "stream": True, "messages": [
                                   {"role": "user", "content": prompt}]})):
                out = subprocess.run(["curl", "-sS", "--http1.1", fake.url + path, "-H",
                                      "content-type: application/json", "-d", json.dumps(body)],
                                     capture_output=True, timeout=60)
                assert out.returncode == 0, out.stderr
            where = f"server_port = {fake.port}"
            wait_for(lambda: len(stored_spans(server, where)) >= 2, timeout=60, interval=0.5, what="the spans")
            server.wait_flushed()
        import pyarrow.parquet as pq

        files = list((tmp_path / "data" / "spans").rglob("*.parquet"))
        assert files, "nothing was flushed to Parquet"
        rows = 0
        for f in files:
            table = pq.read_table(f)
            rows += table.num_rows
            text = json.dumps({name: table.column(name).to_pylist() for name in table.column_names
                               if not str(table.schema.field(name).type).startswith("timestamp")}, default=str)
            assert prompt not in text, f"the prompt is in {f}"
        assert rows >= 2
        spans = stored_spans(server, where)
        assert {s["request_model"] for s in spans} == {"gpt-4o-mini", "llama3.2:3b"}
        assert all(s["input_tokens"] for s in spans), spans
    finally:
        server.kill()


def test_redacted_mode_replaces_sensitive_values_before_they_leave_the_node(tmp_path):
    """The default capture mode: prompts and completions arrive with e-mail addresses, card numbers and API
    keys replaced by typed placeholders, the rest of the text intact, and the span flagged `redacted`. The
    planted values are nowhere in the stored Parquet files."""
    planted = {"[EMAIL]": "dana.whitfield@example.org", "[CARD]": "4111 1111 1111 1111",
               "[API_KEY]": "sk-proj-Q2x9vLm4Tz8KpR7sW1nB3cY6dF0gH5jJ"}
    prompt = (f"Please email {planted['[EMAIL]']} about the charge on card {planted['[CARD]']}; "
              f"the integration key is {planted['[API_KEY]']}. Keep the tone friendly.")
    server = LumenServer(tmp_path / "data", args=["--flush-age", "1s"], log_dir=tmp_path).start()
    try:
        with FakeProvider() as fake, Sensor(tmp_path, server.url):  # no --capture: the default
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
            out = subprocess.run(["curl", "-sS", "--http1.1", fake.url + "/v1/chat/completions", "-H",
                                  "content-type: application/json", "-d", json.dumps(body)],
                                 capture_output=True, timeout=60)
            assert out.returncode == 0, out.stderr
            where = f"server_port = {fake.port}"
            wait_for(lambda: stored_spans(server, where), timeout=60, interval=0.5, what="the span")
            server.wait_flushed()
        span = stored_spans(server, where)[0]
        assert "redacted" in (span["capture_flags"] or []), span["capture_flags"]
        text = span["input_messages"]
        for placeholder, value in planted.items():
            assert placeholder in text and value not in text, text
        assert "Keep the tone friendly." in text
        assert span["input_tokens"] and span["request_model"] == "gpt-4o-mini"
        import pyarrow.parquet as pq

        files = list((tmp_path / "data" / "spans").rglob("*.parquet"))
        assert files
        for f in files:
            table = pq.read_table(f)
            dump = json.dumps({n: table.column(n).to_pylist() for n in table.column_names
                               if not str(table.schema.field(n).type).startswith("timestamp")}, default=str)
            for value in planted.values():
                assert value not in dump, f"{value} stored in {f}"
    finally:
        server.kill()


def test_bytes_beyond_the_capture_limit_are_a_counted_gap(tmp_path):
    """One write larger than the per-call capture limit (16 records of 16 KiB): the span is marked
    truncated, the sensor counts the bytes, and the response is still decoded."""
    server = LumenServer(tmp_path / "data", args=["--flush-age", "1s"], log_dir=tmp_path).start()
    try:
        with FakeProvider() as fake, Sensor(tmp_path, server.url) as sensor:
            # http.client sends a bytes body with one sendall: one 600 kB send() on the socket.
            script = (
                "import http.client, json, sys\n"
                "body = json.dumps({'model': 'gpt-4o-mini', 'messages': [{'role': 'user', 'content': 'word ' * 120000}]})\n"
                f"c = http.client.HTTPConnection('127.0.0.1', {fake.port})\n"
                "c.request('POST', '/v1/chat/completions', body=body.encode(), headers={'content-type': 'application/json'})\n"
                "print(c.getresponse().read().decode())\n")
            out = subprocess.run([PYTHON, "-c", script], capture_output=True, timeout=60)
            assert out.returncode == 0, out.stderr
            usage = json.loads(out.stdout)["usage"]
            where = f"server_port = {fake.port}"
            wait_for(lambda: stored_spans(server, where), timeout=60, interval=0.5, what="the span")
            span = stored_spans(server, where)[0]
            assert "truncated" in (span["capture_flags"] or []), span["capture_flags"]
            assert span["http_status"] == 200
            assert span["output_tokens"] == usage["completion_tokens"], json.dumps(span)[:1500]
            m = sensor.metrics()
            assert m["lumen_sensor_gap_bytes_total"] > 0 and m["lumen_sensor_gaps_total"] >= 1, m
            # The kernel side's counters are folded in once a second.
            wait_for(lambda: sensor.metric("lumen_sensor_cap_bytes_total") > 0, timeout=10,
                     what="the per-call capture limit in the sensor's metrics")
            m = sensor.metrics()
            assert m["lumen_sensor_cap_bytes_total"] == m["lumen_sensor_gap_bytes_total"], m
    finally:
        server.kill()


def test_a_process_with_its_own_copy_of_libssl_is_found_through_its_maps(tmp_path):
    """A process that loads a libssl file of its own (a container image, a bundled wheel) — here a copy of
    the system's, so another inode — is found in its /proc/<pid>/maps after it starts, and probed."""
    libdir = tmp_path / "lib"
    libdir.mkdir()
    system_libssl = next(p for p in ("/usr/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3")
                         if Path(p).exists())
    shutil.copy(system_libssl, libdir / "libssl.so.3")
    cert, key = make_certificate(tmp_path)
    server = LumenServer(tmp_path / "data", args=["--flush-age", "1s"], log_dir=tmp_path).start()
    try:
        with FakeProvider(tls=(str(cert), str(key))) as fake, Sensor(tmp_path, server.url) as sensor:
            files_before = sensor.metric("lumen_sensor_attached_files")
            env = dict(os.environ, **trust_env(cert), LD_LIBRARY_PATH=str(libdir), LUMEN_TEST_WAIT_FOR_GO="1")
            client = subprocess.Popen([PYTHON, str(HERE / "sensor_clients.py"), fake.url, str(tmp_path / "c.pickle"),
                                       "openai_chat_stream"], env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert client.stdout.readline().strip() == "ready", client.stderr.read()
            maps = Path(f"/proc/{client.pid}/maps").read_text()
            assert str(libdir / "libssl.so.3") in maps, "the client did not load the copy"
            wait_for(lambda: sensor.metric("lumen_sensor_attached_files") > files_before, timeout=30,
                     what="the sensor to probe the process's own libssl")
            _, err = client.communicate("go\n", timeout=120)
            assert client.returncode == 0, err
            call = pickle.loads((tmp_path / "c.pickle").read_bytes())[0]
            wait_for(lambda: stored_spans(server, f"server_port = {fake.port}"), timeout=60, interval=0.5,
                     what="the span")
            span = _one({"spans": stored_spans(server, f"server_port = {fake.port}")}, call, fake.port)
            _check(span, call, tls=True)
            assert f"file=/proc/{client.pid}/root{libdir}/libssl.so.3" in sensor.log(), sensor.log()[-3000:]
    finally:
        server.kill()


def test_ring_buffer_overflow_is_a_counted_gap(tmp_path):
    """With a ring buffer smaller than one 16 KiB record, the records of a large request cannot be shipped:
    the bytes are counted as dropped, the span says `truncated`, and the small response is still decoded."""
    server = LumenServer(tmp_path / "data", args=["--flush-age", "1s"], log_dir=tmp_path).start()
    try:
        with FakeProvider() as fake, Sensor(tmp_path, server.url, args=["--ring-buffer-bytes", "8192"]) as sensor:
            script = (
                "import http.client, json\n"
                "body = json.dumps({'model': 'gpt-4o-mini', 'messages': [{'role': 'user', 'content': 'word ' * 20000}]})\n"
                f"c = http.client.HTTPConnection('127.0.0.1', {fake.port})\n"
                "c.request('POST', '/v1/chat/completions', body=body.encode(), headers={'content-type': 'application/json'})\n"
                "print(c.getresponse().read().decode())\n")
            out = subprocess.run([PYTHON, "-c", script], capture_output=True, timeout=60)
            assert out.returncode == 0, out.stderr
            usage = json.loads(out.stdout)["usage"]
            where = f"server_port = {fake.port}"
            wait_for(lambda: stored_spans(server, where), timeout=60, interval=0.5, what="the span")
            span = stored_spans(server, where)[0]
            assert "truncated" in (span["capture_flags"] or []), span["capture_flags"]
            assert span["output_tokens"] == usage["completion_tokens"], json.dumps(span)[:1500]
            wait_for(lambda: sensor.metric("lumen_sensor_ring_drops_total") > 0, timeout=10,
                     what="ring-buffer drops in the sensor's metrics")
            m = sensor.metrics()
            # The request body is ~100 kB; only its last partial record can fit. (Drops are counted for the
            # whole node, so other processes may add to them.)
            assert m["lumen_sensor_ring_drop_bytes_total"] >= 80_000, m
            assert m["lumen_sensor_gap_bytes_total"] >= 80_000, m
    finally:
        server.kill()


def test_check_reports_prerequisites():
    out = subprocess.run([str(SENSOR_BIN), "check"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    for what in ("privileges", "kernel BTF", "uprobes", "syscall tracepoints"):
        assert f"ok   {what}" in out.stdout, out.stdout
