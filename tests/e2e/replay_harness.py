"""Helpers for the capture-and-replay end-to-end tests: a loopback packet capture (tcpdump), the scripted
LLM calls made with the real official SDKs and curl against the fake provider (each call records what its
client reported), running `lumen-sensor replay`, and matching decoded spans to calls."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from lumen_harness import ROOT, wait_for

SENSOR_BIN = Path(os.environ.get(
    "LUMEN_SENSOR_BIN", Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "lumen-sensor"))


# --- capture -----------------------------------------------------------------------------------------



# The fake provider listens on 127.0.0.1, so an OpenAI-shaped call cannot be attributed to OpenAI by
# host name: the decoder names it by its wire format. (Anthropic, Bedrock, Gemini and Ollama paths are
# specific enough to name their provider.)
OPENAI_ON_LOOPBACK = "openai_compatible"

def capture_unavailable_reason() -> str | None:
    """Why tcpdump cannot capture on loopback here (None when it can). Missing tcpdump as root is not a
    reason to skip: tests/run.sh installs it, so that is a failure."""
    if os.geteuid() != 0:
        return "packet capture needs root (tcpdump -i lo); CI runs as root"
    return None


class Capture:
    """`tcpdump -i lo` of one TCP port into a pcap file; started when it really captures, stopped with
    SIGINT so the file is complete."""

    def __init__(self, port: int, path, iface="lo"):
        self.port = port
        self.path = Path(path)
        self.iface = iface
        self.proc = None
        self.stderr_lines: list[str] = []
        self.stats: dict[str, int] = {}

    def start(self, timeout=20):
        exe = shutil.which("tcpdump") or "/usr/sbin/tcpdump"
        assert Path(exe).exists(), "tcpdump is not installed (tests/run.sh installs it with apt-get)"
        cmd = [exe, "-i", self.iface, "-n", "-s", "0", "-B", "8192", "-U", "--immediate-mode",
               "-w", str(self.path), f"tcp port {self.port}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_stderr, daemon=True).start()

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"tcpdump exited with {self.proc.returncode}: {self.stderr()}")
            return any("listening on" in line for line in self.stderr_lines)

        wait_for(listening, timeout=timeout, what="tcpdump to start capturing")
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    def stop(self):
        if not self.proc:
            return
        # Let the last packets (the FIN/ACKs of closing connections) reach the file before stopping.
        last = -1
        for _ in range(40):
            size = self.path.stat().st_size if self.path.exists() else 0
            if size == last:
                break
            last = size
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.05)  # the stderr reader gets the summary lines
        for line in self.stderr_lines:
            m = re.match(r"(\d+) packets? (captured|received by filter|dropped by kernel)", line)
            if m:
                self.stats[m.group(2)] = int(m.group(1))
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|HEAD|DELETE|PATCH|OPTIONS) (\S+) HTTP/1\.[01]\r\n")


def tcp_segments(path):
    """Every TCP segment of a pcap file, in capture order, as (timestamp ns, source port, destination port,
    sequence number, TCP flags, payload) (Ethernet or Linux cooked link types, IPv4/IPv6). Read straight from
    the file, independently of the decoder under test."""
    data = Path(path).read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise AssertionError(f"{path} is not a classic pcap file (magic {magic.hex()})")
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ts = sec * 1_000_000_000 + (frac if nanos else frac * 1000)
        if linktype == 1:  # Ethernet
            l3, ethertype = 14, struct.unpack(">H", pkt[12:14])[0]
        elif linktype == 113:  # Linux cooked v1
            l3, ethertype = 16, struct.unpack(">H", pkt[14:16])[0]
        elif linktype == 276:  # Linux cooked v2
            l3, ethertype = 20, struct.unpack(">H", pkt[0:2])[0]
        elif linktype == 0:  # BSD loopback
            l3, ethertype = 4, 0x0800 if pkt[0] == 2 else 0x86DD
        else:
            raise AssertionError(f"unexpected pcap link type {linktype}")
        if ethertype == 0x0800:
            ihl = (pkt[l3] & 0x0F) * 4
            if pkt[l3 + 9] != 6:
                continue
            l4 = l3 + ihl
        elif ethertype == 0x86DD:
            if pkt[l3 + 6] != 6:
                continue
            l4 = l3 + 40
        else:
            continue
        sport, dport, seq = struct.unpack(">HHI", pkt[l4:l4 + 8])
        flags = pkt[l4 + 13]
        yield ts, sport, dport, seq, flags, pkt[l4 + ((pkt[l4 + 12] >> 4) * 4):]


def pcap_requests(path) -> list[tuple[int, str, str]]:
    """(timestamp ns, method, target) of every TCP segment that starts with an HTTP/1.x request line, read
    straight from the pcap. Used to check that the capture itself is complete, independently of the decoder
    under test."""
    out = []
    for ts, _sport, _dport, _seq, _flags, payload in tcp_segments(path):
        m = REQUEST_LINE.match(payload)
        if m:
            out.append((ts, m.group(1).decode(), m.group(2).decode()))
    return out


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_FRAME_TYPES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS", 5: "PUSH_PROMISE",
                  6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}


def pcap_h2_connections(path, server_port: int) -> dict[int, list[dict]]:
    """The HTTP/2 frames of every TCP connection to `server_port`, read straight from the pcap (each
    direction reassembled by sequence number, retransmits dropped): {client port: [frame, ...]} in time
    order, a frame being {"ts", "dir" ("c2s" or "s2c"), "type", "flags", "stream", "length"} with ts the
    capture time of the segment holding the frame's first byte. The client direction must start with the
    prior-knowledge preface. Used to check the shape of an h2c capture independently of the decoder."""
    flows: dict[tuple[int, str], dict] = {}
    for ts, sport, dport, seq, flags, payload in tcp_segments(path):
        if server_port not in (sport, dport):
            continue
        client, direction = (sport, "c2s") if dport == server_port else (dport, "s2c")
        flow = flows.setdefault((client, direction), {"next": None, "bytes": bytearray(), "times": []})
        if flags & 0x02:  # SYN: the first data byte is seq + 1
            flow["next"] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload or flow["next"] is None:
            continue
        skip = (flow["next"] - seq) & 0xFFFFFFFF
        if skip >= len(payload) or skip > 1 << 30:  # a retransmit of bytes already seen, or a gap
            assert skip < 1 << 30, f"bytes missing from the capture of connection {client} {direction}"
            continue
        flow["times"].append((len(flow["bytes"]), ts))
        flow["bytes"] += payload[skip:]
        flow["next"] = (seq + len(payload)) & 0xFFFFFFFF
    conns: dict[int, list[dict]] = {}
    for (client, direction), flow in flows.items():
        buf, pos = bytes(flow["bytes"]), 0
        if direction == "c2s":
            assert buf.startswith(H2_PREFACE), f"connection from port {client} does not start with the h2 preface"
            pos = len(H2_PREFACE)
        times = flow["times"]
        frames = conns.setdefault(client, [])
        while pos + 9 <= len(buf):
            length = int.from_bytes(buf[pos:pos + 3], "big")
            ts = next(t for off, t in reversed(times) if off <= pos)
            frames.append({"ts": ts, "dir": direction, "type": H2_FRAME_TYPES.get(buf[pos + 3], buf[pos + 3]),
                           "flags": buf[pos + 4], "stream": int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7FFFFFFF,
                           "length": length})
            pos += 9 + length
    for frames in conns.values():
        frames.sort(key=lambda f: f["ts"])
    return conns


# --- replay ------------------------------------------------------------------------------------------


def run_replay(pcap, *args, timeout=300) -> list[dict]:
    """`lumen-sensor replay FILE [args]`; the NDJSON spans it printed (any other args: its stdout lines)."""
    assert SENSOR_BIN.exists(), f"{SENSOR_BIN} is missing: run cargo build --workspace first (or set LUMEN_SENSOR_BIN)"
    out = subprocess.run([str(SENSOR_BIN), "replay", str(pcap), *args], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"lumen-sensor replay exited with {out.returncode}:\n{out.stderr[-5000:]}"
    spans = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            spans.append(json.loads(line))
    return spans


def parse_time_ns(value) -> int | None:
    """A span timestamp as Unix ns: integer ns (or its decimal string) or RFC 3339."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    s = str(value).strip()
    if re.fullmatch(r"\d+", s):
        return int(s)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", s)
    assert m, f"unparseable timestamp {value!r}"
    base = datetime.fromisoformat(m.group(1).replace(" ", "T") + (m.group(3) or "Z").replace("Z", "+00:00"))
    frac = (m.group(2) or "").ljust(9, "0")[:9]
    return int(base.timestamp()) * 1_000_000_000 + int(frac)


class Any_:
    """Expected value that matches anything (the client did not report it)."""

    def __repr__(self):
        return "<any>"


ANY = Any_()


class OneOf:
    def __init__(self, *values):
        self.values = values

    def __repr__(self):
        return "one of " + ", ".join(repr(v) for v in self.values)


def _same(field, got, want) -> bool:
    if isinstance(want, Any_):
        return True
    if isinstance(want, OneOf):
        return any(_same(field, got, w) for w in want.values)
    if field == "finish_reasons" and not want:
        return not got  # none reported: NULL or []
    if field == "url_path" and isinstance(got, str) and isinstance(want, str):
        return unquote(got.split("?", 1)[0]) == unquote(want.split("?", 1)[0])
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and abs(got - want) < 1e-6
    return got == want


COMPARED = ["provider", "operation", "request_model", "response_model", "input_tokens", "output_tokens",
            "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens", "streaming", "http_status",
            "http_method", "url_path", "finish_reasons", "response_id", "error_type"]


def mismatches(span: dict, call: dict) -> list[str]:
    """Fields where the decoded span differs from what the client reported (fields a call did not record
    are not compared)."""
    out = []
    for field in COMPARED:
        if field in call["expect"] and not _same(field, span.get(field), call["expect"][field]):
            out.append(f"{field}: span has {span.get(field)!r}, the client reported {call['expect'][field]!r}")
    return out


def spans_of(call: dict, spans: list[dict], slack_ns=5_000_000) -> list[dict]:
    """The spans whose start_time falls within the wall-clock window of a call."""
    lo, hi = call["t0"] - slack_ns, call["t1"] + slack_ns
    return [s for s in spans if (t := parse_time_ns(s.get("start_time"))) is not None and lo <= t <= hi]


# --- the scripted calls ------------------------------------------------------------------------------
#
# Each call function takes the fake provider's base URL and returns the expectation: the span fields as
# the client (SDK response object, exception, or the bytes curl printed) reported them. Prompts are
# distinct per call so that calls can be told apart.

BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


_CLIENTS: dict = {}


def _cached(kind, url, make):
    """One client per kind and server, reused across calls as an application would: its pooled keep-alive
    connection carries several exchanges, which the decoder must split."""
    key = (kind, url)
    if key not in _CLIENTS:
        _CLIENTS[key] = make()
    return _CLIENTS[key]


def openai_client(url):
    import openai

    return _cached("openai", url, lambda: openai.OpenAI(base_url=url + "/v1", api_key="sk-fake-key", max_retries=0))


def anthropic_client(url):
    import anthropic

    return _cached("anthropic", url, lambda: anthropic.Anthropic(base_url=url, api_key="sk-ant-fake-key",
                                                                 max_retries=0))


def bedrock_client(url):
    import boto3
    from botocore.config import Config

    return _cached("bedrock", url, lambda: boto3.client(
        "bedrock-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDFAKE",
        aws_secret_access_key="fake-secret", config=Config(retries={"total_max_attempts": 1, "mode": "standard"})))


def close_clients():
    for client in _CLIENTS.values():
        try:
            client.close()
        except Exception:  # noqa: BLE001 - best effort
            pass
    _CLIENTS.clear()


def _openai_chat_expect(model, resp_model, usage, finishes, rid, streaming, path="/v1/chat/completions",
                        operation="chat"):
    e = {"provider": OPENAI_ON_LOOPBACK, "operation": operation, "request_model": model, "response_model": resp_model,
         "input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens, "streaming": streaming,
         "http_status": 200, "http_method": "POST", "url_path": path, "finish_reasons": finishes,
         "response_id": rid}
    details = getattr(usage, "completion_tokens_details", None)
    if details is not None and details.reasoning_tokens:
        e["reasoning_tokens"] = details.reasoning_tokens
    return e


def openai_chat_unary(url):
    r = openai_client(url).chat.completions.create(
        model="gpt-4o", messages=[{"role": "system", "content": "You are terse."},
                                  {"role": "user", "content": "Name one colour of the alpha sunrise."}])
    return _openai_chat_expect("gpt-4o", r.model, r.usage, [c.finish_reason for c in r.choices], r.id, False)


def _collect_chat_stream(stream):
    model = rid = usage = None
    finishes = {}
    for chunk in stream:
        model, rid = chunk.model, chunk.id
        for c in chunk.choices:
            if c.finish_reason:
                finishes[c.index] = c.finish_reason
        if chunk.usage is not None:
            usage = chunk.usage
    return model, rid, usage, [finishes[i] for i in sorted(finishes)]


def openai_chat_stream(url):
    stream = openai_client(url).chat.completions.create(
        model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Stream a short verse about the bravo river please."}])
    model, rid, usage, finishes = _collect_chat_stream(stream)
    return _openai_chat_expect("gpt-4o-mini", model, usage, finishes, rid, True)


def openai_chat_tools(url):
    r = openai_client(url).chat.completions.create(
        model="gpt-4o", tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather in charlie town today?"}])
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    return _openai_chat_expect("gpt-4o", r.model, r.usage, [c.finish_reason for c in r.choices], r.id, False)


def openai_chat_tools_stream(url):
    stream = openai_client(url).chat.completions.create(
        model="gpt-4o", tools=[WEATHER_TOOL], stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Stream the weather in delta city as a tool call."}])
    model, rid, usage, finishes = _collect_chat_stream(stream)
    return _openai_chat_expect("gpt-4o", model, usage, finishes, rid, True)


def openai_chat_length_n2(url):
    r = openai_client(url).chat.completions.create(
        model="gpt-4o-mini", n=2, max_tokens=3,
        messages=[{"role": "user", "content": "Give two long answers about echo canyon acoustics."}])
    return _openai_chat_expect("gpt-4o-mini", r.model, r.usage, [c.finish_reason for c in r.choices], r.id, False)


def openai_chat_reasoning(url):
    r = openai_client(url).chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": "Think hard about the foxtrot puzzle."}])
    return _openai_chat_expect("o4-mini", r.model, r.usage, [c.finish_reason for c in r.choices], r.id, False)


def _responses_finish(resp):
    """The Responses API has no finish reason on the wire; the conventional derivation (reference §1.2)."""
    if resp.status == "completed":
        return ["tool_call"] if any(o.type == "function_call" for o in resp.output) else ["stop"]
    if resp.status == "incomplete":
        reason = resp.incomplete_details.reason if resp.incomplete_details else None
        return ["length" if reason == "max_output_tokens" else reason]
    return ["error"]


def _responses_expect(model, resp, streaming):
    e = {"provider": OPENAI_ON_LOOPBACK, "operation": "chat", "request_model": model, "response_model": resp.model,
         "input_tokens": resp.usage.input_tokens, "output_tokens": resp.usage.output_tokens,
         "streaming": streaming, "http_status": 200, "http_method": "POST", "url_path": "/v1/responses",
         "finish_reasons": _responses_finish(resp), "response_id": resp.id}
    if resp.usage.output_tokens_details.reasoning_tokens:
        e["reasoning_tokens"] = resp.usage.output_tokens_details.reasoning_tokens
    return e


def openai_responses_unary(url):
    r = openai_client(url).responses.create(model="gpt-4.1", instructions="Answer in one line.",
                                            input="Summarise the golf tournament rules.")
    assert r.output_text
    return _responses_expect("gpt-4.1", r, False)


def openai_responses_stream(url):
    final = None
    for ev in openai_client(url).responses.create(model="gpt-4.1-mini", stream=True,
                                                  input=[{"role": "user", "content": [
                                                      {"type": "input_text", "text": "Stream facts about hotel lobbies."}]}]):
        if ev.type in ("response.completed", "response.incomplete", "response.failed"):
            final = ev.response
    return _responses_expect("gpt-4.1-mini", final, True)


def openai_embeddings(url):
    r = openai_client(url).embeddings.create(model="text-embedding-3-small",
                                             input=["india ink is black", "juliet balcony scene"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 8  # the SDK decoded base64 float32
    return {"provider": OPENAI_ON_LOOPBACK, "operation": "embeddings", "request_model": "text-embedding-3-small",
            "response_model": r.model, "input_tokens": r.usage.prompt_tokens, "output_tokens": None,
            "streaming": False, "http_status": 200, "http_method": "POST", "url_path": "/v1/embeddings",
            "finish_reasons": []}


def openai_completions_legacy(url):
    r = openai_client(url).completions.create(model="gpt-3.5-turbo-instruct", max_tokens=50,
                                              prompt="Complete the kilo sentence: the quick")
    return _openai_chat_expect("gpt-3.5-turbo-instruct", r.model, r.usage, [c.finish_reason for c in r.choices],
                               r.id, False, path="/v1/completions", operation="text_completion")


def openai_completions_legacy_stream(url):
    stream = openai_client(url).completions.create(model="gpt-3.5-turbo-instruct", max_tokens=50, stream=True,
                                                   stream_options={"include_usage": True},
                                                   prompt="Continue the lima story: once upon")
    model, rid, usage, finishes = _collect_chat_stream(stream)
    return _openai_chat_expect("gpt-3.5-turbo-instruct", model, usage, finishes, rid, True,
                               path="/v1/completions", operation="text_completion")


def _anthropic_expect(model, resp_model, usage, stop_reason, rid, streaming, path="/v1/messages",
                      provider="anthropic"):
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_creation = usage.get("cache_creation_input_tokens") or 0
    e = {"provider": provider, "operation": "chat", "request_model": model, "response_model": resp_model,
         "input_tokens": usage["input_tokens"] + cache_read + cache_creation, "output_tokens": usage["output_tokens"],
         "streaming": streaming, "http_status": 200, "http_method": "POST", "url_path": path,
         "finish_reasons": [stop_reason], "response_id": rid}
    if provider == "anthropic":
        e["cache_read_tokens"] = cache_read
        e["cache_creation_tokens"] = cache_creation
    return e


def anthropic_unary(url):
    r = anthropic_client(url).messages.create(
        model="claude-sonnet-4-6", max_tokens=256,
        system=[{"type": "text", "text": "You are a mike-themed assistant.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Tell me about the mike microphone."}])
    assert r.usage.cache_read_input_tokens and r.usage.cache_creation_input_tokens
    return _anthropic_expect("claude-sonnet-4-6", r.model, r.usage.model_dump(), r.stop_reason, r.id, False)


def anthropic_stream(url):
    """Raw stream events; every event is written as two HTTP chunks (x-fake-split) to exercise re-framing."""
    stream = anthropic_client(url).messages.create(
        model="claude-haiku-4-5", max_tokens=512, stream=True, system="Be brief about november.",
        messages=[{"role": "user", "content": "Stream a note on the november weather."}],
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


def anthropic_stream_tools(url):
    client = anthropic_client(url)
    with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=512,
            tools=[{"name": "get_weather", "description": "weather",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            messages=[{"role": "user", "content": "Use the tool for the oscar city weather."}]) as stream:
        msg = stream.get_final_message()
    assert msg.content[-1].type == "tool_use" and msg.content[-1].input["query"]
    return _anthropic_expect("claude-sonnet-4-6", msg.model, msg.usage.model_dump(), msg.stop_reason, msg.id, True)


def anthropic_stream_error(url):
    """A stream that fails half-way with `event: error` (overloaded) after HTTP 200."""
    import anthropic

    model = rid = None
    usage = {}
    try:
        for ev in anthropic_client(url).messages.create(
                model="claude-stream-error", max_tokens=100, stream=True,
                messages=[{"role": "user", "content": "Stream about papa bear until it breaks."}]):
            if ev.type == "message_start":
                model, rid, usage = ev.message.model, ev.message.id, ev.message.usage.model_dump()
    except anthropic.APIStatusError as e:
        error_type = e.body["error"]["type"]
    else:
        raise AssertionError("the in-stream error was not raised by the SDK")
    return {"provider": "anthropic", "operation": "chat", "request_model": "claude-stream-error",
            "response_model": model, "response_id": rid, "streaming": True, "http_status": 200,
            "error_type": error_type, "http_method": "POST", "url_path": "/v1/messages",
            "input_tokens": usage["input_tokens"] + usage["cache_read_input_tokens"]
            + usage["cache_creation_input_tokens"]}


def _bedrock_expect(model_id, op, usage_in, usage_out, stop, streaming, response_model=None):
    return {"provider": "aws.bedrock", "operation": "chat", "request_model": model_id,
            # Converse has no model in its response: the decoder may repeat the model id or leave it NULL.
            "response_model": response_model if response_model else OneOf(model_id, None),
            "input_tokens": usage_in, "output_tokens": usage_out, "streaming": streaming, "http_status": 200,
            "http_method": "POST", "url_path": f"/model/{model_id}/{op}", "finish_reasons": [stop]}


def bedrock_converse(url):
    r = bedrock_client(url).converse(
        modelId=BEDROCK_MODEL, system=[{"text": "You are a quebec guide."}],
        messages=[{"role": "user", "content": [{"text": "Describe quebec old town briefly."}]}],
        inferenceConfig={"maxTokens": 200, "temperature": 0.2})
    return _bedrock_expect(BEDROCK_MODEL, "converse", r["usage"]["inputTokens"], r["usage"]["outputTokens"],
                           r["stopReason"], False)


def bedrock_converse_stream(url):
    r = bedrock_client(url).converse_stream(
        modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "Stream about romeo poems."}]}])
    usage, stop, text = None, None, ""
    for ev in r["stream"]:
        if "contentBlockDelta" in ev:
            text += ev["contentBlockDelta"]["delta"].get("text", "")
        if "messageStop" in ev:
            stop = ev["messageStop"]["stopReason"]
        if "metadata" in ev:
            usage = ev["metadata"]["usage"]
    assert text
    return _bedrock_expect(BEDROCK_MODEL, "converse-stream", usage["inputTokens"], usage["outputTokens"], stop, True)


def bedrock_invoke(url):
    r = bedrock_client(url).invoke_model(
        modelId=BEDROCK_MODEL, contentType="application/json", accept="application/json",
        body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300,
                         "messages": [{"role": "user", "content": "Invoke a sierra mountain fact."}]}))
    body = json.loads(r["body"].read())
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) == body["usage"]["input_tokens"]
    e = _bedrock_expect(BEDROCK_MODEL, "invoke", int(headers["x-amzn-bedrock-input-token-count"]),
                        int(headers["x-amzn-bedrock-output-token-count"]), body["stop_reason"], False,
                        response_model=body["model"])
    e["response_id"] = body["id"]
    return e


def bedrock_invoke_stream(url):
    r = bedrock_client(url).invoke_model_with_response_stream(
        modelId=BEDROCK_MODEL, contentType="application/json",
        body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300,
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "Stream a tango step."}]}]}))
    model = rid = stop = metrics = None
    for ev in r["body"]:
        chunk = json.loads(ev["chunk"]["bytes"])
        if chunk["type"] == "message_start":
            model, rid = chunk["message"]["model"], chunk["message"]["id"]
        elif chunk["type"] == "message_delta":
            stop = chunk["delta"]["stop_reason"]
        if "amazon-bedrock-invocationMetrics" in chunk:
            metrics = chunk["amazon-bedrock-invocationMetrics"]
    e = _bedrock_expect(BEDROCK_MODEL, "invoke-with-response-stream", metrics["inputTokenCount"],
                        metrics["outputTokenCount"], stop, True, response_model=model)
    e["response_id"] = rid
    return e


def _error_expect(provider, model, path, error_type, streaming=False):
    return {"provider": provider, "operation": "chat", "request_model": model, "response_model": None,
            "input_tokens": None, "output_tokens": None, "streaming": streaming, "http_status": 429,
            "http_method": "POST", "url_path": path, "finish_reasons": [], "error_type": error_type}


def openai_rate_limited(url):
    import openai

    try:
        openai_client(url).chat.completions.create(
            model="gpt-4o-rate-limited", messages=[{"role": "user", "content": "uniform request that is throttled"}])
    except openai.RateLimitError as e:
        assert e.status_code == 429
        return _error_expect(OPENAI_ON_LOOPBACK, "gpt-4o-rate-limited", "/v1/chat/completions", e.code)
    raise AssertionError("no RateLimitError")


def anthropic_rate_limited(url):
    import anthropic

    try:
        anthropic_client(url).messages.create(model="claude-rate-limited", max_tokens=64,
                                              messages=[{"role": "user", "content": "victor request, throttled"}])
    except anthropic.RateLimitError as e:
        assert e.status_code == 429
        return _error_expect("anthropic", "claude-rate-limited", "/v1/messages", e.body["error"]["type"])
    raise AssertionError("no RateLimitError")


def bedrock_rate_limited(url):
    from botocore.exceptions import ClientError

    model_id = "anthropic.claude-rate-limited-v1:0"
    try:
        bedrock_client(url).converse(modelId=model_id,
                                     messages=[{"role": "user", "content": [{"text": "whiskey request, throttled"}]}])
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        return _error_expect("aws.bedrock", model_id, f"/model/{model_id}/converse", e.response["Error"]["Code"])
    raise AssertionError("no ClientError")


# The pid of the last curl run, so that a live capture can be checked for the process that made the call.
LAST_CURL_PID: list[int] = []


def curl(*args, timeout=60) -> bytes:
    proc = subprocess.Popen(["curl", "-sS", "--fail-with-body", "-N", "--http1.1", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    LAST_CURL_PID.append(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, f"curl {args} failed ({proc.returncode}): {stderr.decode()} {stdout[:500]!r}"
    return stdout


def sse_data(raw: bytes) -> list[str]:
    return [line[5:].strip() for line in raw.decode().splitlines() if line.startswith("data:")]


def _gemini_expect(model, last, path, streaming):
    u = last["usageMetadata"]
    thoughts = u.get("thoughtsTokenCount") or 0
    e = {"provider": "gcp.gemini", "operation": "generate_content", "request_model": model,
         "response_model": last["modelVersion"], "input_tokens": u["promptTokenCount"],
         "output_tokens": u["candidatesTokenCount"] + thoughts, "streaming": streaming, "http_status": 200,
         "http_method": "POST", "url_path": path, "finish_reasons": [last["candidates"][0]["finishReason"]],
         "response_id": last["responseId"]}
    if thoughts:
        e["reasoning_tokens"] = thoughts
    return e


GEMINI_BODY = {"systemInstruction": {"parts": [{"text": "Reply briefly."}]},
               "generationConfig": {"temperature": 0.3, "maxOutputTokens": 400}}


def curl_gemini_stream(url):
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    body = dict(GEMINI_BODY, contents=[{"role": "user", "parts": [{"text": "Stream about the x-ray machine."}]}])
    raw = curl("-X", "POST", f"{url}{path}?alt=sse", "-H", "Content-Type: application/json",
               "-H", "x-goog-api-key: fake-gemini-key", "-d", json.dumps(body))
    events = [json.loads(d) for d in sse_data(raw)]
    return _gemini_expect("gemini-2.5-flash", events[-1], path, True)


def curl_gemini_unary(url):
    path = "/v1beta/models/gemini-2.0-flash:generateContent"
    body = dict(GEMINI_BODY, contents=[{"role": "user", "parts": [{"text": "One fact about the yankee stadium."}]}])
    raw = curl("-X", "POST", f"{url}{path}", "-H", "Content-Type: application/json",
               "-H", "x-goog-api-key: fake-gemini-key", "-d", json.dumps(body))
    return _gemini_expect("gemini-2.0-flash", json.loads(raw), path, False)


def _ollama_expect(model, last, path, operation, streaming):
    return {"provider": "ollama", "operation": operation, "request_model": model, "response_model": last["model"],
            "input_tokens": last["prompt_eval_count"], "output_tokens": last["eval_count"], "streaming": streaming,
            "http_status": 200, "http_method": "POST", "url_path": path, "finish_reasons": [last["done_reason"]]}


def curl_ollama_chat(url):
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "Stream a zulu greeting please."}]}
    raw = curl("-X", "POST", f"{url}/api/chat", "-H", "Content-Type: application/json", "-d", json.dumps(body))
    lines = [json.loads(x) for x in raw.decode().splitlines() if x.strip()]
    assert lines[-1]["done"] is True and len(lines) > 2
    return _ollama_expect("llama3.2:3b", lines[-1], "/api/chat", "chat", True)


def curl_ollama_generate_expect_100(url):
    """Non-streaming /api/generate with `Expect: 100-continue`: the server answers `HTTP/1.1 100 Continue`
    before the request body is sent, then the real response (curl does this by itself for large bodies)."""
    body = {"model": "qwen2.5:0.5b", "stream": False, "prompt": "Generate an alpha-numeric tag for amber."}
    raw = curl("-X", "POST", f"{url}/api/generate", "-H", "Content-Type: application/json",
               "-H", "Expect: 100-continue", "--expect100-timeout", "5", "-d", json.dumps(body))
    return _ollama_expect("qwen2.5:0.5b", json.loads(raw), "/api/generate", "text_completion", False)


def curl_openai_gzip_stream(url):
    """A gzip-compressed SSE stream (compressed incrementally, one sync flush per event)."""
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Compress a stream about the bravo zulu signal."}]}
    raw = curl("--compressed", "-X", "POST", f"{url}/v1/chat/completions", "-H", "Content-Type: application/json",
               "-H", "Authorization: Bearer sk-fake-key", "-H", "x-fake-gzip: 1", "-d", json.dumps(body))
    data = sse_data(raw)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    usage = chunks[-1]["usage"]
    finishes = [c["finish_reason"] for ch in chunks for c in ch["choices"] if c.get("finish_reason")]
    return {"provider": OPENAI_ON_LOOPBACK, "operation": "chat", "request_model": "gpt-4o-mini",
            "response_model": chunks[0]["model"], "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"], "streaming": True, "http_status": 200,
            "http_method": "POST", "url_path": "/v1/chat/completions", "finish_reasons": finishes,
            "response_id": chunks[0]["id"]}


def healthz(url):
    import requests

    r = requests.get(url + "/healthz", timeout=10)
    assert r.status_code == 200
    return {"provider": None, "http_status": 200, "http_method": "GET", "url_path": "/healthz",
            "input_messages": None, "output_messages": None}


CALLS = [
    ("openai_chat_unary", openai_chat_unary),
    ("openai_chat_stream", openai_chat_stream),
    ("openai_chat_tools", openai_chat_tools),
    ("openai_chat_tools_stream", openai_chat_tools_stream),
    ("openai_chat_length_n2", openai_chat_length_n2),
    ("openai_chat_reasoning", openai_chat_reasoning),
    ("openai_responses_unary", openai_responses_unary),
    ("openai_responses_stream", openai_responses_stream),
    ("openai_embeddings", openai_embeddings),
    ("openai_completions_legacy", openai_completions_legacy),
    ("openai_completions_legacy_stream", openai_completions_legacy_stream),
    ("anthropic_unary", anthropic_unary),
    ("anthropic_stream", anthropic_stream),
    ("anthropic_stream_tools", anthropic_stream_tools),
    ("anthropic_stream_error", anthropic_stream_error),
    ("bedrock_converse", bedrock_converse),
    ("bedrock_converse_stream", bedrock_converse_stream),
    ("bedrock_invoke", bedrock_invoke),
    ("bedrock_invoke_stream", bedrock_invoke_stream),
    ("openai_rate_limited", openai_rate_limited),
    ("anthropic_rate_limited", anthropic_rate_limited),
    ("bedrock_rate_limited", bedrock_rate_limited),
    ("curl_gemini_stream", curl_gemini_stream),
    ("curl_gemini_unary", curl_gemini_unary),
    ("curl_ollama_chat", curl_ollama_chat),
    ("curl_ollama_generate_expect_100", curl_ollama_generate_expect_100),
    ("curl_openai_gzip_stream", curl_openai_gzip_stream),
    ("healthz", healthz),
]
CALL_NAMES = [name for name, _ in CALLS]

# A word of each call's prompt, to find it in captured input messages.
MARKERS = {
    "openai_chat_unary": "alpha", "openai_chat_stream": "bravo", "openai_chat_tools": "charlie",
    "openai_chat_tools_stream": "delta", "openai_chat_length_n2": "echo", "openai_chat_reasoning": "foxtrot",
    "openai_responses_unary": "golf", "openai_responses_stream": "hotel", "openai_embeddings": "india",
    "openai_completions_legacy": "kilo", "openai_completions_legacy_stream": "lima", "anthropic_unary": "mike",
    "anthropic_stream": "november", "anthropic_stream_tools": "oscar", "anthropic_stream_error": "papa",
    "bedrock_converse": "quebec", "bedrock_converse_stream": "romeo", "bedrock_invoke": "sierra",
    "bedrock_invoke_stream": "tango", "openai_rate_limited": "uniform", "anthropic_rate_limited": "victor",
    "bedrock_rate_limited": "whiskey", "curl_gemini_stream": "x-ray", "curl_gemini_unary": "yankee",
    "curl_ollama_chat": "zulu", "curl_ollama_generate_expect_100": "amber", "curl_openai_gzip_stream": "signal",
}


def _own_name() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def run_calls(url, calls=CALLS, gap=0.03) -> list[dict]:
    """Make every call in order, one at a time. Each record: name, t0/t1 (wall clock ns around the call),
    expect (what the client reported) or error (the traceback when the call itself failed), pid and process
    (the process that made the call: this one, or the curl it ran)."""
    records = []
    for name, fn in calls:
        LAST_CURL_PID.clear()
        t0 = time.time_ns()
        try:
            expect, error = fn(url), None
        except Exception:  # noqa: BLE001 - reported by the test of this call
            expect, error = None, traceback.format_exc()
        pid, process = (LAST_CURL_PID[-1], "curl") if LAST_CURL_PID else (os.getpid(), _own_name())
        records.append({"name": name, "t0": t0, "t1": time.time_ns(), "expect": expect, "error": error,
                        "marker": MARKERS.get(name), "pid": pid, "process": process})
        time.sleep(gap)  # calls never overlap, even by a retransmit
    close_clients()
    return records
