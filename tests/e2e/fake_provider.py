"""A fake LLM provider on loopback that speaks the real wire formats over plain HTTP/1.1.

The official SDKs (openai, anthropic, boto3) and curl talk to it as they would to the real services, so a
packet capture of that traffic is what the sensor sees in production, minus TLS. Every answer is deterministic
given the request, so a test can compare what an SDK reported with what the sensor decoded:

* input tokens  = number of whitespace-separated words of all the prompt text in the request + 7
  (Anthropic splits that total into input_tokens / cache_read_input_tokens / cache_creation_input_tokens:
  cache_read = total // 3 when the request has a `system` prompt, cache_creation = total // 5 when the body
  mentions `cache_control`; the normalised input is always the total);
* output tokens = number of words generated (a text reply is `REPLY_PREFIX` + the first five prompt words + "."),
  cut to the request's max tokens (then the finish reason is the provider's "length"); a tool call costs
  5 + the number of words of its JSON arguments; reasoning models (`o1`, `o3`, `o4-mini`, `gpt-5*`) add
  `REASONING_TOKENS` reasoning tokens to the output, Gemini 2.5 models report `THOUGHTS_TOKENS` thought tokens.

Special models (anywhere in the model name / Bedrock model id):
* `rate-limited`  -> 429 with the provider's error body (OpenAI rate_limit_exceeded, Anthropic rate_limit_error,
  Bedrock x-amzn-ErrorType ThrottlingException, Gemini RESOURCE_EXHAUSTED, Ollama {"error": ...});
* `server-error`  -> 500 with the provider's error body;
* `stream-error`  -> a stream that starts normally (HTTP 200) and fails half-way with the provider's in-stream
  error (Anthropic `event: error` overloaded_error, OpenAI `data: {"error": ...}`, Bedrock eventstream
  `modelStreamErrorException`, Gemini `data: {"error": ...}`, Ollama `{"error": ...}` line).

Knobs a client can turn per request (header, or the same name as a query parameter without `x-fake-`):
* `x-fake-gzip: 1`   the response is `Content-Encoding: gzip`; streams are compressed incrementally, one
  Z_SYNC_FLUSH per event, so every event is still decodable on its own;
* `x-fake-split: 1`  every stream event is written as two HTTP chunks, cut at an odd place (mid-line,
  mid-eventstream-prelude), to exercise re-framing;
* `x-fake-delay-ms: N` the pause between stream events (default 20 ms).

Run it in the foreground for debugging:  python tests/e2e/fake_provider.py --port 8089 [--verbose]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import math
import random
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

REPLY_PREFIX = ["This", "is", "a", "fake", "answer", "about"]
INPUT_OVERHEAD = 7
REASONING_TOKENS = 5
THOUGHTS_TOKENS = 6
DEFAULT_DELAY = 0.02

# Request model -> the dated snapshot a real service reports back.
RESPONSE_MODELS = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-3.5-turbo-instruct": "gpt-3.5-turbo-instruct",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}


# --- deterministic content ---------------------------------------------------------------------------


def count_words(text: str) -> int:
    return len(text.split())


def input_tokens_for(text: str) -> int:
    return count_words(text) + INPUT_OVERHEAD


def reply_words(prompt: str) -> list[str]:
    return REPLY_PREFIX + prompt.split()[:5] + ["."]


def limit_words(words: list[str], limit) -> tuple[list[str], bool]:
    """Cut to `limit` words; returns (words, truncated)."""
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(words):
        return words[:limit], True
    return words, False


def response_model(model: str) -> str:
    return RESPONSE_MODELS.get(model, model)


def is_reasoning_model(model: str) -> bool:
    return model.startswith(("o1", "o3", "o4", "gpt-5"))


def tool_arguments(prompt: str) -> str:
    return json.dumps({"query": " ".join(prompt.split()[:3]), "limit": 3})


def tool_output_tokens(arguments: str) -> int:
    return 5 + count_words(arguments)


def rand_id(n=24) -> str:
    return uuid.uuid4().hex[:n]


def padding() -> str:
    """Random padding, like OpenAI's `obfuscation` and Bedrock's `p` fields."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(random.choice(alphabet) for _ in range(random.randrange(4, 24)))


def word_pieces(words: list[str]) -> list[str]:
    """The deltas of a streamed text: the first word bare, the others with a leading space."""
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def split3(s: str) -> list[str]:
    """A string in three non-empty-ish fragments (how tool-call arguments stream)."""
    a, b = len(s) // 3, 2 * len(s) // 3
    return [p for p in (s[:a], s[a:b], s[b:]) if p]


def text_of(content) -> str:
    """Text of an OpenAI / Anthropic / Ollama content value: a string or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                for key in ("text", "input_text"):
                    if isinstance(part.get(key), str):
                        out.append(part[key])
                if part.get("type") == "tool_result":
                    out.append(text_of(part.get("content")))
                if isinstance(part.get("content"), str) and part.get("type") not in ("tool_result",):
                    out.append(part["content"])
    return " ".join(out)


# --- AWS eventstream ---------------------------------------------------------------------------------


def eventstream_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One application/vnd.amazon.eventstream message (string headers only, as Bedrock sends)."""
    hb = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        hb += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    msg = prelude + struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF) + hb + payload
    return msg + struct.pack(">I", zlib.crc32(msg) & 0xFFFFFFFF)


def es_event(event_type: str, obj: dict) -> bytes:
    return eventstream_message(
        [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")],
        json.dumps(obj, separators=(",", ":")).encode(),
    )


def es_exception(exception_type: str, message: str) -> bytes:
    return eventstream_message(
        [(":exception-type", exception_type), (":content-type", "application/json"), (":message-type", "exception")],
        json.dumps({"message": message}).encode(),
    )


# --- the server --------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, fake):
        self.fake = fake
        self.connections = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, handler)

    def handle_error(self, request, client_address):
        # Clients that drop a connection (an SDK abandoning a failed stream, a pool closing) are normal.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FakeProvider:
    """The fake provider on a loopback port. `with FakeProvider() as fp: fp.url ...`"""

    def __init__(self, host="127.0.0.1", port=0, delay=DEFAULT_DELAY, verbose=False, tls=None):
        """`tls=(certfile, keyfile)` serves HTTPS (HTTP/1.1) with that certificate."""
        self.tls = tls
        self.host = host
        self._port = port
        self.delay = delay
        self.verbose = verbose
        self.requests = []  # (method, raw path, {header: value}) of every request, in arrival order
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self):
        self._server = _Server((self.host, self._port), _Handler, self)
        if self.tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            context.set_alpn_protocols(["http/1.1"])
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if not self._server:
            return
        self._server.shutdown()
        with self._server.conn_lock:
            conns = list(self._server.connections)
        for c in conns:  # idle keep-alive connections would otherwise linger
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(timeout=10)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm/1.0"
    timeout = 60

    # --- plumbing --------------------------------------------------------------------------------

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self):
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            sys.stderr.write("fake-llm: %s\n" % (fmt % args))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _knob(self, name: str) -> str | None:
        value = self.headers.get("x-fake-" + name)
        if value is None:
            values = self.query.get(name)
            value = values[0] if values else None
        return value

    def _prepare(self):
        fake = self.server.fake
        parts = urlsplit(self.path)
        self.url_path = parts.path
        self.query = parse_qs(parts.query)
        fake.requests.append((self.command, self.path, {k: v for k, v in self.headers.items()}))
        if fake.verbose:
            sys.stderr.write("fake-llm: %s %s %s\n" % (self.command, self.path, dict(self.headers.items())))
        self.gzip = self._knob("gzip") in ("1", "true", "yes")
        self.split = self._knob("split") in ("1", "true", "yes")
        delay_ms = self._knob("delay-ms")
        self.delay = float(delay_ms) / 1000 if delay_ms else fake.delay
        self.t_start = time.monotonic()

    def _latency_ms(self) -> int:
        return max(1, int((time.monotonic() - self.t_start) * 1000))

    def send_body(self, status: int, body: bytes, content_type: str, headers=()):
        if self.gzip:
            body = gzip.compress(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.gzip:
            self.send_header("Content-Encoding", "gzip")
        for k, v in headers:
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj, headers=(), content_type="application/json", pretty=False):
        # OpenAI answers indented JSON; the others compact JSON.
        text = json.dumps(obj, indent=2) if pretty else json.dumps(obj, separators=(",", ":"))
        self.send_body(status, text.encode(), content_type, headers)

    def start_stream(self, content_type: str, headers=(), status=200):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        if self.gzip:
            self.send_header("Content-Encoding", "gzip")
        for k, v in headers:
            self.send_header(k, str(v))
        self.end_headers()
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31) if self.gzip else None
        self._events = 0

    def _chunk(self, data: bytes):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def event(self, data: bytes):
        """One stream event: pause, then write it as its own HTTP chunk (two with the split knob)."""
        time.sleep(self.delay)
        self._events += 1
        if self._z:
            data = self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)
        if self.split and len(data) > 2:
            cut = min(len(data) - 1, 7 if len(data) > 7 else 1)
            self._chunk(data[:cut])
            time.sleep(0.002)
            self._chunk(data[cut:])
        else:
            self._chunk(data)

    def end_stream(self):
        if self._z:
            self._chunk(self._z.flush())
        self.wfile.write(b"0\r\n\r\n")

    def sse(self, obj, event: str | None = None, eol: str = "\n"):
        text = ""
        if event:
            text += f"event: {event}{eol}"
        payload = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        text += f"data: {payload}{eol}{eol}"
        self.event(text.encode())

    # --- dispatch --------------------------------------------------------------------------------

    def do_GET(self):
        self._prepare()
        if self.url_path in ("/healthz", "/health"):
            return self.send_body(200, b"ok\n", "text/plain; charset=utf-8")
        if self.url_path == "/api/version":
            return self.send_json(200, {"version": "0.12.0"})
        if self.url_path == "/v1/models":
            return self.send_json(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                                    "owned_by": "fake"} for m in RESPONSE_MODELS]})
        self.send_json(404, {"error": {"message": f"no route for GET {self.url_path}", "type": "invalid_request_error",
                                       "param": None, "code": "unknown_url"}})

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        self._prepare()
        raw = self._read_body()
        self.raw_body = raw
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error",
                                                  "param": None, "code": None}})
        p = self.url_path
        if p.startswith("/model/"):
            return self.bedrock(body)
        if p.startswith(("/v1beta/models/", "/v1/models/")) and ":" in p.rsplit("/", 1)[-1]:
            return self.gemini(body)
        routes = {
            "/v1/chat/completions": self.openai_chat,
            "/v1/responses": self.openai_responses,
            "/v1/embeddings": self.openai_embeddings,
            "/v1/completions": self.openai_completions,
            "/v1/messages": self.anthropic_messages,
            "/api/chat": self.ollama,
            "/api/generate": self.ollama,
        }
        handler = routes.get(p)
        if handler is None:
            return self.send_json(404, {"error": {"message": f"no route for POST {p}", "type": "invalid_request_error",
                                                  "param": None, "code": "unknown_url"}})
        handler(body)

    # --- OpenAI ----------------------------------------------------------------------------------

    def openai_headers(self):
        return [("x-request-id", "req_" + rand_id(32)), ("openai-processing-ms", str(self._latency_ms())),
                ("openai-version", "2020-10-01"), ("openai-organization", "fake-org")]

    def openai_error(self, model) -> bool:
        if "rate-limited" in model:
            self.send_json(429, {"error": {"message": f"Rate limit reached for {model} in organization org-fake on "
                                           "requests per min (RPM): Limit 3, Used 3, Requested 1.",
                                           "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
                           headers=self.openai_headers() + [("retry-after", "1"), ("x-should-retry", "false")], pretty=True)
            return True
        if "server-error" in model:
            self.send_json(500, {"error": {"message": "The server had an error while processing your request.",
                                           "type": "server_error", "param": None, "code": None}},
                           headers=self.openai_headers() + [("x-should-retry", "false")], pretty=True)
            return True
        return False

    def openai_usage(self, prompt_tokens, completion_tokens, reasoning=0):
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    def openai_chat(self, body):
        model = str(body.get("model", ""))
        if self.openai_error(model):
            return
        prompt = " ".join(text_of(m.get("content")) for m in body.get("messages", []) if isinstance(m, dict))
        n = int(body.get("n") or 1)
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        use_tool = bool(tools) and body.get("tool_choice") != "none"
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        reasoning = REASONING_TOKENS if is_reasoning_model(model) else 0
        words, truncated = limit_words(reply_words(prompt), limit)
        if use_tool:
            tool_name = tools[0]["function"]["name"]
            args = tool_arguments(prompt)
            per_choice, finish = tool_output_tokens(args), "tool_calls"
        else:
            per_choice, finish = len(words), ("length" if truncated else "stop")
        prompt_tokens = input_tokens_for(prompt)
        usage = self.openai_usage(prompt_tokens, per_choice * n + reasoning, reasoning)
        rid, created, rmodel = "chatcmpl-" + rand_id(29), int(time.time()), response_model(model)

        if not body.get("stream"):
            choices = []
            for i in range(n):
                msg = {"role": "assistant", "content": None if use_tool else " ".join(words), "refusal": None,
                       "annotations": []}
                if use_tool:
                    msg["tool_calls"] = [{"id": "call_" + rand_id(24), "type": "function",
                                          "function": {"name": tool_name, "arguments": args}}]
                choices.append({"index": i, "message": msg, "logprobs": None, "finish_reason": finish})
            return self.send_json(200, {"id": rid, "object": "chat.completion", "created": created, "model": rmodel,
                                        "choices": choices, "usage": usage, "service_tier": "default",
                                        "system_fingerprint": "fp_fake0001"}, headers=self.openai_headers(), pretty=True)

        opts = body.get("stream_options") or {}
        include_usage = bool(opts.get("include_usage"))
        obfuscate = opts.get("include_obfuscation", True)

        def chunk(choices, usage_value=None):
            c = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": rmodel,
                 "service_tier": "default", "system_fingerprint": "fp_fake0001", "choices": choices}
            if include_usage:
                c["usage"] = usage_value
            if obfuscate:
                c["obfuscation"] = padding()
            return c

        def delta(i, d, fr=None):
            return {"index": i, "delta": d, "logprobs": None, "finish_reason": fr}

        self.start_stream("text/event-stream; charset=utf-8", self.openai_headers())
        for i in range(n):
            self.sse(chunk([delta(i, {"role": "assistant", "content": "", "refusal": None})]))
        if "stream-error" in model:
            self.sse(chunk([delta(0, {"content": words[0]})]))
            self.sse({"error": {"message": "The server had an error while processing your request.",
                                "type": "server_error", "param": None, "code": None}})
            return self.end_stream()
        for i in range(n):
            if use_tool:
                call_id = "call_" + rand_id(24)
                self.sse(chunk([delta(i, {"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                                          "function": {"name": tool_name, "arguments": ""}}]})]))
                for piece in split3(args):
                    self.sse(chunk([delta(i, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})]))
            else:
                for piece in word_pieces(words):
                    self.sse(chunk([delta(i, {"content": piece})]))
        for i in range(n):
            self.sse(chunk([delta(i, {}, finish)]))
        if include_usage:
            self.sse(chunk([], usage))
        self.sse("[DONE]")
        self.end_stream()

    def openai_completions(self, body):
        model = str(body.get("model", ""))
        if self.openai_error(model):
            return
        prompt = body.get("prompt", "")
        prompt = " ".join(prompt) if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else prompt
        if not isinstance(prompt, str):
            prompt = " ".join("t" for _ in prompt)  # token ids: one word each
        words, truncated = limit_words(reply_words(prompt), body.get("max_tokens", 16))
        finish = "length" if truncated else "stop"
        usage = {"prompt_tokens": input_tokens_for(prompt), "completion_tokens": len(words),
                 "total_tokens": input_tokens_for(prompt) + len(words)}
        rid, created, rmodel = "cmpl-" + rand_id(29), int(time.time()), response_model(model)
        if not body.get("stream"):
            return self.send_json(200, {"id": rid, "object": "text_completion", "created": created, "model": rmodel,
                                        "choices": [{"text": " " + " ".join(words), "index": 0, "logprobs": None,
                                                     "finish_reason": finish}], "usage": usage},
                                  headers=self.openai_headers(), pretty=True)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices, usage_value=None):
            c = {"id": rid, "object": "text_completion", "created": created, "model": rmodel, "choices": choices}
            if include_usage:
                c["usage"] = usage_value
            return c

        self.start_stream("text/event-stream; charset=utf-8", self.openai_headers())
        for piece in word_pieces(words):
            self.sse(chunk([{"text": piece if piece.startswith(" ") else " " + piece, "index": 0, "logprobs": None,
                             "finish_reason": None}]))
        self.sse(chunk([{"text": "", "index": 0, "logprobs": None, "finish_reason": finish}]))
        if include_usage:
            self.sse(chunk([], usage))
        self.sse("[DONE]")
        self.end_stream()

    def openai_embeddings(self, body):
        model = str(body.get("model", ""))
        if self.openai_error(model):
            return
        inputs = body.get("input", "")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        texts = [x if isinstance(x, str) else " ".join("t" for _ in x) for x in inputs]
        dims = int(body.get("dimensions") or 8)
        data = []
        for i, text in enumerate(texts):
            seed = zlib.crc32(text.encode())
            vec = [round(math.sin(seed % 1000 + j), 6) for j in range(dims)]
            if body.get("encoding_format") == "base64":
                emb = base64.b64encode(struct.pack("<%df" % dims, *vec)).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = input_tokens_for(" ".join(texts))
        self.send_json(200, {"object": "list", "data": data, "model": response_model(model),
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, headers=self.openai_headers(), pretty=True)

    def openai_responses(self, body):
        model = str(body.get("model", ""))
        if self.openai_error(model):
            return
        inp = body.get("input", "")
        if isinstance(inp, str):
            prompt = inp
        else:
            prompt = " ".join(text_of(item.get("content")) if "content" in item else str(item.get("output", ""))
                              for item in inp if isinstance(item, dict))
        instructions = body.get("instructions")
        full_prompt = ((instructions + " ") if isinstance(instructions, str) else "") + prompt
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        use_tool = bool(tools) and body.get("tool_choice") != "none"
        words, truncated = limit_words(reply_words(prompt), body.get("max_output_tokens"))
        reasoning = REASONING_TOKENS if is_reasoning_model(model) else 0
        rid, created, rmodel = "resp_" + rand_id(40), int(time.time()), response_model(model)
        msg_id = "msg_" + rand_id(40)
        text = " ".join(words)
        if use_tool:
            args = tool_arguments(prompt)
            item = {"type": "function_call", "id": "fc_" + rand_id(40), "call_id": "call_" + rand_id(24),
                    "name": tools[0]["name"], "arguments": args, "status": "completed"}
            out_tokens = tool_output_tokens(args)
        else:
            item = {"type": "message", "id": msg_id, "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}
            out_tokens = len(words)
        output = [item]
        if reasoning:
            output.insert(0, {"type": "reasoning", "id": "rs_" + rand_id(40), "summary": []})
        in_tokens = input_tokens_for(full_prompt)
        usage = {"input_tokens": in_tokens, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": out_tokens + reasoning, "output_tokens_details": {"reasoning_tokens": reasoning},
                 "total_tokens": in_tokens + out_tokens + reasoning}

        def response(status, out, usage_value):
            return {"id": rid, "object": "response", "created_at": created, "status": status, "background": False,
                    "error": None,
                    "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
                    "instructions": instructions, "max_output_tokens": body.get("max_output_tokens"),
                    "model": rmodel, "output": out, "parallel_tool_calls": True, "previous_response_id": None,
                    "reasoning": {"effort": None, "summary": None}, "service_tier": "default", "store": True,
                    "temperature": body.get("temperature", 1.0), "text": {"format": {"type": "text"}, "verbosity": "medium"},
                    "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
                    "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": usage_value, "user": None,
                    "metadata": body.get("metadata") or {}}

        final_status = "incomplete" if truncated and not use_tool else "completed"
        if not body.get("stream"):
            return self.send_json(200, response(final_status, output, usage), headers=self.openai_headers(), pretty=True)

        seq = [0]

        def ev(kind, **fields):
            obj = {"type": kind, "sequence_number": seq[0], **fields}
            seq[0] += 1
            self.sse(obj, event=kind)

        self.start_stream("text/event-stream; charset=utf-8", self.openai_headers())
        ev("response.created", response=response("in_progress", [], None))
        ev("response.in_progress", response=response("in_progress", [], None))
        idx = 0
        if reasoning:
            ev("response.output_item.added", output_index=0, item=dict(output[0]))
            ev("response.output_item.done", output_index=0, item=output[0])
            idx = 1
        if "stream-error" in model:
            ev("error", code="server_error", message="The server had an error while processing your request.",
               param=None)
            return self.end_stream()
        if use_tool:
            ev("response.output_item.added", output_index=idx, item=dict(item, arguments="", status="in_progress"))
            for piece in split3(item["arguments"]):
                ev("response.function_call_arguments.delta", item_id=item["id"], output_index=idx, delta=piece)
            ev("response.function_call_arguments.done", item_id=item["id"], output_index=idx,
               name=item["name"], arguments=item["arguments"])
            ev("response.output_item.done", output_index=idx, item=item)
        else:
            ev("response.output_item.added", output_index=idx,
               item={"type": "message", "id": msg_id, "status": "in_progress", "role": "assistant", "content": []})
            ev("response.content_part.added", item_id=msg_id, output_index=idx, content_index=0,
               part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            for piece in word_pieces(words):
                ev("response.output_text.delta", item_id=msg_id, output_index=idx, content_index=0, delta=piece,
                   logprobs=[])
            ev("response.output_text.done", item_id=msg_id, output_index=idx, content_index=0, text=text, logprobs=[])
            ev("response.content_part.done", item_id=msg_id, output_index=idx, content_index=0,
               part={"type": "output_text", "text": text, "annotations": [], "logprobs": []})
            ev("response.output_item.done", output_index=idx, item=item)
        final = "response.incomplete" if final_status == "incomplete" else "response.completed"
        ev(final, response=response(final_status, output, usage))
        self.end_stream()

    # --- Anthropic -------------------------------------------------------------------------------

    def anthropic_headers(self):
        return [("request-id", "req_" + rand_id(24)), ("anthropic-organization-id", str(uuid.uuid4())),
                ("anthropic-ratelimit-requests-limit", "4000"), ("anthropic-ratelimit-requests-remaining", "3999")]

    def anthropic_error(self, model) -> bool:
        for marker, status, etype, message in (("rate-limited", 429, "rate_limit_error",
                                                "Number of request tokens has exceeded your per-minute rate limit"),
                                               ("server-error", 500, "api_error", "Internal server error")):
            if marker in model:
                self.send_json(status, {"type": "error", "error": {"type": etype, "message": message},
                                        "request_id": "req_" + rand_id(24)},
                               headers=self.anthropic_headers() + [("retry-after", "1"), ("x-should-retry", "false")])
                return True
        return False

    def anthropic_plan(self, body, raw: bytes):
        """(prompt, usage dict without output, words, truncated, tool) for a Messages request body."""
        system = body.get("system")
        system_text = text_of(system)
        prompt = " ".join(text_of(m.get("content")) for m in body.get("messages", []) if isinstance(m, dict))
        total = input_tokens_for((system_text + " " + prompt).strip())
        cache_read = total // 3 if system else 0
        cache_creation = total // 5 if b"cache_control" in raw else 0
        usage = {"input_tokens": total - cache_read - cache_creation, "cache_creation_input_tokens": cache_creation,
                 "cache_read_input_tokens": cache_read}
        words, truncated = limit_words(reply_words(prompt), body.get("max_tokens"))
        tools = [t for t in body.get("tools") or [] if "input_schema" in t]
        tool = None
        if tools and (body.get("tool_choice") or {}).get("type") != "none":
            tool = {"type": "tool_use", "id": "toolu_" + rand_id(24), "name": tools[0]["name"],
                    "input": json.loads(tool_arguments(prompt))}
            words, truncated = ["Let", "me", "check."], False
        return prompt, usage, words, truncated, tool

    def anthropic_events(self, body, raw, model_name, msg_id):
        """The Messages stream as a list of (event name, JSON object); also the final message object."""
        _, usage, words, truncated, tool = self.anthropic_plan(body, raw)
        text = " ".join(words)
        out_tokens = len(words) + (tool_output_tokens(json.dumps(tool["input"])) if tool else 0)
        stop = "tool_use" if tool else ("max_tokens" if truncated else "end_turn")
        content = [{"type": "text", "text": text}] + ([tool] if tool else [])
        final_usage = dict(usage, output_tokens=out_tokens, service_tier="standard")
        message = {"id": msg_id, "type": "message", "role": "assistant", "model": model_name, "content": content,
                   "stop_reason": stop, "stop_sequence": None, "usage": final_usage}
        events = [("message_start", {"type": "message_start", "message": dict(
            message, content=[], stop_reason=None, usage=dict(usage, output_tokens=1, service_tier="standard"))}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("ping", {"type": "ping"})]
        for piece in word_pieces(words):
            events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta", "text": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        if tool:
            events.append(("content_block_start", {"type": "content_block_start", "index": 1, "content_block": dict(
                tool, input={})}))
            for piece in split3(json.dumps(tool["input"])):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": 1,
                                                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": 1}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": dict(usage, output_tokens=out_tokens)}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events, message

    def anthropic_messages(self, body):
        model = str(body.get("model", ""))
        if self.anthropic_error(model):
            return
        msg_id = "msg_01" + rand_id(22)
        events, message = self.anthropic_events(body, self.raw_body, response_model(model), msg_id)
        if not body.get("stream"):
            return self.send_json(200, message, headers=self.anthropic_headers())
        self.start_stream("text/event-stream; charset=utf-8", self.anthropic_headers())
        for i, (name, obj) in enumerate(events):
            if "stream-error" in model and i == 4:
                self.sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                          "request_id": "req_" + rand_id(24)}, event="error")
                return self.end_stream()
            self.sse(obj, event=name)
        self.end_stream()

    # --- AWS Bedrock Runtime ---------------------------------------------------------------------

    def bedrock_headers(self):
        return [("x-amzn-RequestId", str(uuid.uuid4()))]

    def bedrock(self, body):
        rest = self.url_path[len("/model/"):]
        model_enc, _, op = rest.rpartition("/")
        model_id = unquote(model_enc)
        for marker, status, etype, message in (
                ("rate-limited", 429, "ThrottlingException", "Too many requests, please wait before trying again."),
                ("server-error", 500, "InternalServerException", "The system encountered an unexpected error.")):
            if marker in model_id:
                return self.send_json(status, {"message": message}, headers=self.bedrock_headers() + [
                    ("x-amzn-ErrorType", etype + ":http://internal.amazon.com/coral/com.amazon.bedrock/")])
        ops = {"converse": self.bedrock_converse, "converse-stream": self.bedrock_converse,
               "invoke": self.bedrock_invoke, "invoke-with-response-stream": self.bedrock_invoke}
        if op not in ops or not model_enc:
            return self.send_json(404, {"message": f"Unknown operation {self.url_path}"},
                                  headers=self.bedrock_headers() + [("x-amzn-ErrorType", "UnknownOperationException")])
        ops[op](body, model_id, op.endswith("stream"))

    def bedrock_converse(self, body, model_id, stream):
        system_text = " ".join(s.get("text", "") for s in body.get("system") or [] if isinstance(s, dict))
        prompt = " ".join(c.get("text", "") for m in body.get("messages", []) for c in m.get("content", [])
                          if isinstance(c, dict))
        in_tokens = input_tokens_for((system_text + " " + prompt).strip())
        words, truncated = limit_words(reply_words(prompt), (body.get("inferenceConfig") or {}).get("maxTokens"))
        tools = [t["toolSpec"] for t in (body.get("toolConfig") or {}).get("tools", []) if "toolSpec" in t]
        tool = None
        if tools:
            tool = {"toolUseId": "tooluse_" + rand_id(22), "name": tools[0]["name"],
                    "input": json.loads(tool_arguments(prompt))}
            words, truncated = ["Let", "me", "check."], False
        out_tokens = len(words) + (tool_output_tokens(json.dumps(tool["input"])) if tool else 0)
        stop = "tool_use" if tool else ("max_tokens" if truncated else "end_turn")
        usage = {"inputTokens": in_tokens, "outputTokens": out_tokens, "totalTokens": in_tokens + out_tokens}
        if not stream:
            content = [{"text": " ".join(words)}] + ([{"toolUse": tool}] if tool else [])
            return self.send_json(200, {"output": {"message": {"role": "assistant", "content": content}},
                                        "stopReason": stop, "usage": usage,
                                        "metrics": {"latencyMs": self._latency_ms()}},
                                  headers=self.bedrock_headers())
        self.start_stream("application/vnd.amazon.eventstream", self.bedrock_headers())
        self.event(es_event("messageStart", {"role": "assistant", "p": padding()}))
        for i, piece in enumerate(word_pieces(words)):
            if "stream-error" in model_id and i == 2:
                self.event(es_exception("modelStreamErrorException", "The model stream failed: overloaded."))
                return self.end_stream()
            self.event(es_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece},
                                                      "p": padding()}))
        self.event(es_event("contentBlockStop", {"contentBlockIndex": 0, "p": padding()}))
        if tool:
            self.event(es_event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {
                "toolUseId": tool["toolUseId"], "name": tool["name"]}}, "p": padding()}))
            for piece in split3(json.dumps(tool["input"])):
                self.event(es_event("contentBlockDelta", {"contentBlockIndex": 1,
                                                          "delta": {"toolUse": {"input": piece}}, "p": padding()}))
            self.event(es_event("contentBlockStop", {"contentBlockIndex": 1, "p": padding()}))
        self.event(es_event("messageStop", {"stopReason": stop, "p": padding()}))
        self.event(es_event("metadata", {"usage": usage, "metrics": {"latencyMs": self._latency_ms()},
                                         "p": padding()}))
        self.end_stream()

    @staticmethod
    def bedrock_anthropic_model(model_id: str) -> str:
        """anthropic.claude-3-haiku-20240307-v1:0 (or us.anthropic...) -> claude-3-haiku-20240307."""
        name = model_id.rsplit("/", 1)[-1]
        if "anthropic." in name:
            name = name.split("anthropic.", 1)[1]
        if name.rsplit("-", 1)[-1].startswith("v") and ":" in name:
            name = name.rsplit("-", 1)[0]
        return name

    def bedrock_invoke(self, body, model_id, stream):
        if "anthropic_version" not in body or "messages" not in body:
            return self.send_json(400, {"message": "Malformed input request: only Anthropic Messages bodies are "
                                                   "supported by the fake"},
                                  headers=self.bedrock_headers() + [("x-amzn-ErrorType", "ValidationException")])
        msg_id = "msg_bdrk_01" + rand_id(22)
        events, message = self.anthropic_events(body, self.raw_body, self.bedrock_anthropic_model(model_id), msg_id)
        usage = message["usage"]
        in_tokens = usage["input_tokens"]
        out_tokens = usage["output_tokens"]
        if not stream:
            headers = self.bedrock_headers() + [
                ("X-Amzn-Bedrock-Invocation-Latency", self._latency_ms()),
                ("X-Amzn-Bedrock-Input-Token-Count", in_tokens), ("X-Amzn-Bedrock-Output-Token-Count", out_tokens)]
            if usage["cache_read_input_tokens"] or usage["cache_creation_input_tokens"]:
                headers += [("X-Amzn-Bedrock-Cache-Read-Input-Token-Count", usage["cache_read_input_tokens"]),
                            ("X-Amzn-Bedrock-Cache-Write-Input-Token-Count", usage["cache_creation_input_tokens"])]
            return self.send_json(200, message, headers=headers)
        self.start_stream("application/vnd.amazon.eventstream", self.bedrock_headers() + [
            ("X-Amzn-Bedrock-Content-Type", "application/json")])
        first_byte = None
        for i, (name, obj) in enumerate(ev for ev in events if ev[0] != "ping"):
            if "stream-error" in model_id and i == 3:
                self.event(es_exception("modelStreamErrorException", "The model stream failed: overloaded."))
                return self.end_stream()
            if name == "message_stop":
                obj = dict(obj, **{"amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": in_tokens, "outputTokenCount": out_tokens,
                    "invocationLatency": self._latency_ms(), "firstByteLatency": first_byte or 1}})
            chunk = json.dumps(obj, separators=(",", ":")).encode()
            self.event(es_event("chunk", {"bytes": base64.b64encode(chunk).decode(), "p": padding()}))
            first_byte = first_byte or self._latency_ms()
        self.end_stream()

    # --- Gemini ----------------------------------------------------------------------------------

    def gemini(self, body):
        last = self.url_path.rsplit("/", 1)[-1]
        model, _, method = last.partition(":")
        if "rate-limited" in model or "server-error" in model:
            code, status, message = ((429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
                                     if "rate-limited" in model else (500, "INTERNAL", "An internal error has occurred."))
            return self.send_json(code, {"error": {"code": code, "message": message, "status": status}})
        if method not in ("generateContent", "streamGenerateContent"):
            return self.send_json(404, {"error": {"code": 404, "message": f"method {method} not found",
                                                  "status": "NOT_FOUND"}})
        system_text = " ".join(p.get("text", "") for p in (body.get("systemInstruction") or body.get(
            "system_instruction") or {}).get("parts", []))
        prompt = " ".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))
        in_tokens = input_tokens_for((system_text + " " + prompt).strip())
        gen = body.get("generationConfig") or body.get("generation_config") or {}
        words, truncated = limit_words(reply_words(prompt), gen.get("maxOutputTokens", gen.get("max_output_tokens")))
        thoughts = THOUGHTS_TOKENS if "2.5" in model else 0
        finish = "MAX_TOKENS" if truncated else "STOP"
        rid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")[:22]

        def usage(out):
            u = {"promptTokenCount": in_tokens, "candidatesTokenCount": out, "totalTokenCount": in_tokens + out
                 + thoughts, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": in_tokens}]}
            if thoughts:
                u["thoughtsTokenCount"] = thoughts
            return u

        def resp(text, out, fr=None):
            cand = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
            if fr:
                cand["finishReason"] = fr
            return {"candidates": [cand], "usageMetadata": usage(out), "modelVersion": model, "responseId": rid}

        if method == "generateContent":
            return self.send_json(200, resp(" ".join(words), len(words), finish))
        sse = (self.query.get("alt") or [""])[0] == "sse"
        pieces = word_pieces(words)
        if sse:
            self.start_stream("text/event-stream")
            for i, piece in enumerate(pieces):
                if "stream-error" in model and i == 2:
                    self.sse({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
                             eol="\r\n")
                    return self.end_stream()
                self.sse(resp(piece, i + 1, finish if i == len(pieces) - 1 else None), eol="\r\n")
            return self.end_stream()
        # Without alt=sse: one JSON array, streamed element by element.
        self.start_stream("application/json; charset=UTF-8")
        for i, piece in enumerate(pieces):
            prefix = "[" if i == 0 else "\n,\r\n"
            self.event((prefix + json.dumps(resp(piece, i + 1, finish if i == len(pieces) - 1 else None))).encode())
        self.event(b"\n]")
        self.end_stream()

    # --- Ollama ----------------------------------------------------------------------------------

    def ollama(self, body):
        model = str(body.get("model", ""))
        if "rate-limited" in model or "server-error" in model:
            status = 429 if "rate-limited" in model else 500
            return self.send_json(status, {"error": "too many requests" if status == 429 else "internal error"})
        chat = self.url_path == "/api/chat"
        if chat:
            prompt = " ".join(text_of(m.get("content")) for m in body.get("messages", []) if isinstance(m, dict))
        else:
            prompt = ((body.get("system") or "") + " " + (body.get("prompt") or "")).strip()
        in_tokens = input_tokens_for(prompt)
        topic = prompt if chat else (body.get("prompt") or "")
        words, truncated = limit_words(reply_words(topic), (body.get("options") or {}).get("num_predict"))
        tool_calls = None
        if chat and body.get("tools"):
            fn = body["tools"][0].get("function", {})
            tool_calls = [{"function": {"name": fn.get("name", "tool"), "arguments": json.loads(
                tool_arguments(prompt))}}]
            words = []
        out_tokens = len(words) + (tool_output_tokens(json.dumps(tool_calls[0]["function"]["arguments"]))
                                   if tool_calls else 0)
        done_reason = "length" if truncated else "stop"

        def now():
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%06dZ" % (time.time() % 1 * 1e6)

        def piece_obj(text, done=False):
            o = {"model": model, "created_at": now()}
            if chat:
                o["message"] = {"role": "assistant", "content": text}
            else:
                o["response"] = text
            o["done"] = done
            return o

        def final(text):
            o = piece_obj(text, True)
            if chat and tool_calls:
                o["message"]["tool_calls"] = tool_calls
            o.update({"done_reason": done_reason, "total_duration": self._latency_ms() * 1_000_000,
                      "load_duration": 1_000_000, "prompt_eval_count": in_tokens,
                      "prompt_eval_duration": 2_000_000, "eval_count": out_tokens, "eval_duration": 3_000_000})
            if not chat:
                o["context"] = list(range(1, 9))
            return o

        if body.get("stream") is False:
            return self.send_json(200, final(" ".join(words)))
        self.start_stream("application/x-ndjson")
        for i, piece in enumerate(word_pieces(words)):
            if "stream-error" in model and i == 2:
                self.event(json.dumps({"error": "an error was encountered while running the model"}).encode() + b"\n")
                return self.end_stream()
            self.event(json.dumps(piece_obj(piece), separators=(",", ":")).encode() + b"\n")
        self.event(json.dumps(final(""), separators=(",", ":")).encode() + b"\n")
        self.end_stream()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089)
    ap.add_argument("--delay-ms", type=float, default=DEFAULT_DELAY * 1000, help="pause between stream events")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM; needs --tls-key)")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    ap.add_argument("--verbose", "-v", action="store_true", help="log every request with its headers to stderr")
    args = ap.parse_args(argv)
    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)  # even when started in the background (SIGINT ignored)
    signal.signal(signal.SIGTERM, interrupt)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    fake = FakeProvider(args.host, args.port, delay=args.delay_ms / 1000, verbose=args.verbose, tls=tls).start()
    print(f"fake LLM provider on {fake.url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
