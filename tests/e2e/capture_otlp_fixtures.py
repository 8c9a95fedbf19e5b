"""Captures real OTLP/HTTP trace export bodies, as the OpenTelemetry Python SDK and two GenAI instrumentations
send them, for the Rust unit tests of the OTLP mapper (ingest/tests/fixtures/otlp/).

    .venv/bin/python tests/e2e/capture_otlp_fixtures.py [OUT_DIR] [--legacy-openllmetry-python PYTHON]

What it does: starts a loopback HTTP server that records every POST body (gunzipped when the request says
`Content-Encoding: gzip`), starts the real fake provider (tests/e2e/fake_provider.py, plain HTTP), and runs one
child process per variant — instrumentations must not mix in one interpreter:

* openai_v2         opentelemetry-instrumentation-openai-v2 on the latest GenAI conventions
                    (OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental,
                    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_and_event): one unary and one
                    streaming chat completion with the openai SDK;
* openai_v2_capture_true  the same instrumentation without the opt-in and with
                    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true (the documented legacy switch);
* openllmetry       Traceloop's opentelemetry-instrumentation-openai, same two calls plus one with tools;
* openllmetry_legacy  only with --legacy-openllmetry-python: the same child run by another interpreter, one
                    whose environment has an older OpenLLMetry (e.g. 0.40.14, the gen_ai.prompt.{i}.* /
                    llm.request.type era) next to openai==3.57.0;
* plain             a non-GenAI server span and an internal child span with an exception, with the resource
                    attributes service.name, host.name, k8s.namespace.name, k8s.pod.name, process.pid; exported
                    once gzip-compressed and once uncompressed (the decompressed bodies must be identical).

Every variant exports through OTLPSpanExporter (protobuf over HTTP); the GenAI variants also export logs through
OTLPLogExporter so that we can see where each instrumentation puts message content (span attributes, span events,
or log records). Writes <variant>.pb (one ExportTraceServiceRequest) and <variant>.logs.pb when there were
logs, and prints a summary of span names, attribute keys, events and log event names, which README.md quotes.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_OUT = ROOT / "ingest" / "tests" / "fixtures" / "otlp"
sys.path.insert(0, str(HERE))

from otlp_harness import decoded_value  # noqa: E402

PROMPT = "Tell me about the weather in Lisbon today please"
SYSTEM = "You are a terse assistant."


# --- the capturing collector ------------------------------------------------------------------------------


class Collector:
    """Records (path, headers, decompressed body) of every POST; answers 200 with an empty protobuf body."""

    def __init__(self):
        self.posts: list[tuple[str, dict, bytes, bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw  # case-insensitive
                with outer.lock:
                    outer.posts.append((self.path, dict(self.headers), raw, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self, prefix: str) -> list[tuple[str, dict, bytes, bytes]]:
        with self.lock:
            return [p for p in self.posts if p[0].startswith(prefix)]

    def stop(self):
        self.server.shutdown()


# --- child processes: one per instrumentation -------------------------------------------------------------


def _providers(otlp: str, service: str, gzip_on: bool = False, logs: bool = True):
    from opentelemetry import trace
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create() runs the detectors named in OTEL_EXPERIMENTAL_RESOURCE_DETECTORS (process, host).
    resource = Resource.create({"service.name": service, "deployment.environment.name": "fixture"})
    compression = Compression.Gzip if gzip_on else Compression.NoCompression
    tp = TracerProvider(resource=resource)
    # One big batch: everything leaves in the single export of force_flush().
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp + "/v1/traces", compression=compression),
                                             schedule_delay_millis=600_000, max_export_batch_size=512))
    trace.set_tracer_provider(tp)
    lp = None
    if logs:
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=otlp + "/v1/logs"),
                                                            schedule_delay_millis=600_000))
        set_logger_provider(lp)
    return tp, lp


def _chat_calls(fake_url: str, tools: bool = False) -> list[dict]:
    import openai

    client = openai.OpenAI(base_url=fake_url + "/v1", api_key="sk-fixture-not-a-key", max_retries=0)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    out = []
    r = client.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0.2, top_p=0.9,
                                       max_tokens=64)
    out.append({"stream": False, "id": r.id, "model": r.model, "input": r.usage.prompt_tokens,
                "output": r.usage.completion_tokens, "text": r.choices[0].message.content})
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    text, usage, rid, model = "", None, None, None
    for chunk in stream:
        rid, model = chunk.id, chunk.model
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
    out.append({"stream": True, "id": rid, "model": model, "input": usage.prompt_tokens,
                "output": usage.completion_tokens, "text": text})
    if tools:
        tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}}
        r = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[tool])
        out.append({"stream": False, "id": r.id, "model": r.model, "input": r.usage.prompt_tokens,
                    "output": r.usage.completion_tokens, "tools": True})
    return out


def child_openai_v2(fake_url: str, otlp: str):
    tp, lp = _providers(otlp, "fixture-openai-v2")
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    calls = _chat_calls(fake_url)
    tp.force_flush()
    lp.force_flush()
    print(json.dumps(calls))


def child_openllmetry(fake_url: str, otlp: str):
    tp, lp = _providers(otlp, "fixture-openllmetry")
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    calls = _chat_calls(fake_url, tools=True)
    tp.force_flush()
    lp.force_flush()
    print(json.dumps(calls))


def child_plain(otlp: str, gzip_on: bool):
    """A non-GenAI HTTP server span with a failing internal child (exception event). Spans are made once,
    then exported by two exporters so that the gzip and plain bodies carry the very same spans."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    resource = Resource.create({"service.name": "checkout", "host.name": "node-7", "k8s.namespace.name": "shop",
                                "k8s.pod.name": "checkout-7d9f8b-x2k4q", "process.pid": 4242,
                                "container.id": "0123456789abcdef0123456789abcdef"})
    memory = InMemorySpanExporter()
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(memory))
    tracer = tp.get_tracer("fixture.plain", "1.0.0")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER, attributes={
            "http.request.method": "GET", "url.path": "/cart", "http.response.status_code": 500,
            "server.address": "shop.example", "server.port": 8080, "http.route": "/cart"}) as server:
        try:
            with tracer.start_as_current_span("load cart", kind=SpanKind.INTERNAL,
                                              attributes={"db.system.name": "postgresql", "db.operation.name": "SELECT"}):
                raise ValueError("cart 42 not found")
        except ValueError:
            pass  # recorded on the child as an exception event with status ERROR
        server.set_status(Status(StatusCode.ERROR, "internal error"))
    spans = memory.get_finished_spans()
    for compression in (Compression.Gzip, Compression.NoCompression):
        exporter = OTLPSpanExporter(endpoint=f"{otlp}/{compression.value}/v1/traces", compression=compression)
        assert exporter.export(spans).name == "SUCCESS"
        exporter.shutdown()


# --- decoding and the summary ------------------------------------------------------------------------------


def summarize_traces(body: bytes) -> dict:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    out = {"resource_keys": set(), "scopes": set(), "spans": []}
    for rs in req.resource_spans:
        out["resource_keys"] |= {kv.key for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            out["scopes"].add(f"{ss.scope.name} {ss.scope.version}".strip())
            for s in ss.spans:
                out["spans"].append({
                    "name": s.name, "kind": Span.SpanKind.Name(s.kind), "status": s.status.code,
                    "attributes": {kv.key: decoded_value(kv.value) for kv in s.attributes},
                    "events": [(e.name, sorted(kv.key for kv in e.attributes)) for e in s.events],
                })
    return out


def summarize_logs(body: bytes) -> list:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    req = ExportLogsServiceRequest()
    req.ParseFromString(body)
    out = []
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append({"event_name": r.event_name, "attributes": sorted(kv.key for kv in r.attributes),
                            "body_keys": sorted(decoded_value(r.body).keys()) if r.body.WhichOneof("value") == "kvlist_value" else r.body.WhichOneof("value")})
    return out


def _header(headers: dict, name: str):
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _versions(python: str) -> dict:
    """Versions of the packages that made the payload, as the interpreter that ran the child sees them."""
    code = ("import json, importlib.metadata as m\n"
            "names = ['openai', 'opentelemetry-sdk', 'opentelemetry-exporter-otlp-proto-http',\n"
            "         'opentelemetry-instrumentation-openai-v2', 'opentelemetry-util-genai',\n"
            "         'opentelemetry-instrumentation-openai', 'opentelemetry-semantic-conventions-ai']\n"
            "out = {}\n"
            "for n in names:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))\n")
    return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


def merged(bodies: list[bytes]) -> bytes:
    # Concatenated protobuf messages parse as one message with the repeated fields appended.
    return b"".join(bodies)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        variant, fake_url, otlp = sys.argv[2:5]
        if variant in ("openai_v2", "openai_v2_capture_true"):
            child_openai_v2(fake_url, otlp)
        elif variant in ("openllmetry", "openllmetry_legacy"):
            child_openllmetry(fake_url, otlp)
        elif variant == "plain":
            child_plain(otlp, gzip_on=True)
        return

    args = sys.argv[1:]
    legacy_python = None
    if "--legacy-openllmetry-python" in args:
        i = args.index("--legacy-openllmetry-python")
        legacy_python = args[i + 1]
        del args[i:i + 2]
    out_dir = Path(args[0]) if args else DEFAULT_OUT
    out_dir.mkdir(parents=True, exist_ok=True)
    from fake_provider import FakeProvider

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_"))}
    base_env["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"] = "process,host"
    variants = {
        "openai_v2": {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                      "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_and_event"},
        "openai_v2_capture_true": {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"},
        "openllmetry": {"TRACELOOP_TRACE_CONTENT": "true"},
        "plain": {},
    }
    if legacy_python:
        variants["openllmetry_legacy"] = {"TRACELOOP_TRACE_CONTENT": "true"}
    collector = Collector()
    summary = {}
    try:
        with FakeProvider() as fake:
            for variant, env in variants.items():
                python = legacy_python if variant == "openllmetry_legacy" else sys.executable
                proc = subprocess.run([python, __file__, "--child", variant, fake.url,
                                       f"{collector.url}/{variant}"], env=dict(base_env, **env),
                                      capture_output=True, text=True, timeout=300)
                if proc.returncode != 0:
                    raise SystemExit(f"{variant} failed:\n{proc.stderr[-4000:]}")
                posts = collector.bodies(f"/{variant}/")
                traces = [p for p in posts if p[0].endswith("/v1/traces")]
                logs = [p for p in posts if p[0].endswith("/v1/logs")]
                info = {"calls": json.loads(proc.stdout) if proc.stdout.strip() else None,
                        "versions": _versions(python),
                        "warnings": [line for line in proc.stderr.splitlines() if line.strip()][-5:],
                        "trace_posts": [(p[0], _header(p[1], "content-type"), _header(p[1], "content-encoding"),
                                         len(p[2]), len(p[3])) for p in traces]}
                if variant == "plain":
                    gz = [p for p in traces if _header(p[1], "content-encoding") == "gzip"]
                    raw = [p for p in traces if _header(p[1], "content-encoding") != "gzip"]
                    assert len(gz) == 1 and len(raw) == 1, info
                    assert gz[0][3] == raw[0][3], "the gzip and the uncompressed export differ after gunzip"
                    assert gz[0][2][:2] == b"\x1f\x8b", "the gzip export is not gzip"
                    body = raw[0][3]
                    (out_dir / "plain.pb.gz").write_bytes(gz[0][2])
                else:
                    body = merged([p[3] for p in traces])
                (out_dir / f"{variant}.pb").write_bytes(body)
                info["traces"] = summarize_traces(body)
                if logs:
                    logs_body = merged([p[3] for p in logs])
                    (out_dir / f"{variant}.logs.pb").write_bytes(logs_body)
                    info["logs"] = summarize_logs(logs_body)
                summary[variant] = info
    finally:
        collector.stop()
    (out_dir / "README.md").write_text(readme(summary))
    print(json.dumps(summary, indent=1, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))


NOTES = {
    "openai_v2": "opentelemetry-instrumentation-openai-v2 with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental "
                 "and OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_and_event: content is in span attributes "
                 "(gen_ai.input.messages / gen_ai.output.messages, JSON strings); the event "
                 "`gen_ai.client.inference.operation.details` is a *log record* (Logs signal, POST /v1/logs, in "
                 "openai_v2.logs.pb), not a span event. No server.address/server.port: the instrumentation only reads "
                 "them from an `httpx.URL`, and openai 3.x's base_url is an `httpx2.URL`. The streaming span has no "
                 "finish_reasons, no gen_ai.request.stream and no time-to-first-chunk.",
    "openai_v2_capture_true": "the same instrumentation without the opt-in and with "
                              "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true: with opentelemetry-util-genai "
                              "1.x the instrumentation is always on the latest conventions (is_experimental_mode() is "
                              "always True) and `true` is not a valid mode (it warns and captures NO content).",
    "openllmetry": "Traceloop OpenLLMetry opentelemetry-instrumentation-openai (current release, TRACELOOP_TRACE_CONTENT=true): "
                   "it now writes current GenAI names (gen_ai.provider.name, gen_ai.input.messages, gen_ai.output.messages, "
                   "gen_ai.tool.definitions) plus its own gen_ai.is_streaming, gen_ai.usage.total_tokens, "
                   "gen_ai.usage.reasoning_tokens and gen_ai.openai.api_base; streams carry one span event "
                   "`gen_ai.content.completion.chunk` (no attributes) per chunk.",
    "openllmetry_legacy": "an older OpenLLMetry (0.40.14, in a separate virtualenv with the same openai==3.57.0 and SDK): "
                          "the legacy flat attributes llm.request.type, gen_ai.system=\"OpenAI\", llm.is_streaming, "
                          "gen_ai.prompt.{i}.role/content, gen_ai.completion.{i}.role/content/finish_reason/tool_calls.{j}.*, "
                          "llm.request.functions.{i}.name/description/parameters, gen_ai.usage.prompt_tokens/"
                          "completion_tokens, gen_ai.usage.cache_read_input_tokens, llm.usage.total_tokens; its streaming "
                          "span has no token counts; stream chunks are span events `llm.content.completion.chunk`.",
    "plain": "opentelemetry-sdk only, no instrumentation: a SERVER span `GET /cart` (HTTP attributes, status ERROR "
             "\"internal error\") and its INTERNAL child `load cart` (DB attributes, status ERROR with an `exception` "
             "event: ValueError \"cart 42 not found\"). Resource: service.name=checkout, host.name=node-7, "
             "k8s.namespace.name=shop, k8s.pod.name=checkout-7d9f8b-x2k4q, process.pid=4242 (overrides the detector), "
             "container.id. Exported twice, gzip and uncompressed: plain.pb.gz is the gzip request body as sent, "
             "plain.pb the uncompressed one (identical to the gunzipped gzip body).",
}


def readme(summary: dict) -> str:
    lines = [
        "# OTLP/HTTP trace fixtures",
        "",
        "Real `ExportTraceServiceRequest` bodies (protobuf, `Content-Type: application/x-protobuf`, uncompressed unless",
        "the name ends in .gz) as the OpenTelemetry Python SDK's `OTLPSpanExporter` POSTed them to /v1/traces.",
        "Made by `tests/e2e/capture_otlp_fixtures.py` (it starts tests/e2e/fake_provider.py over plain HTTP and",
        "runs each instrumentation in a process of its own; regenerate with",
        "`.venv/bin/python tests/e2e/capture_otlp_fixtures.py [--legacy-openllmetry-python /path/to/venv/bin/python]`).",
        "The GenAI variants make, with the openai SDK and model `gpt-4o-mini`, one unary chat completion (temperature",
        "0.2, top_p 0.9, max_tokens 64), one streaming one (stream_options.include_usage) and, for OpenLLMetry, one with",
        "a `get_weather` tool. The fake provider answers 21 input / 12 output tokens (11 for the tool call), response",
        "model `gpt-4o-mini-2024-07-18`. The resource has the SDK's process and host detectors",
        "(OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=process,host).",
        "",
    ]
    for variant, info in summary.items():
        t = info["traces"]
        active = {"plain": ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"),
                  "openllmetry": ("openai", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
                                  "opentelemetry-instrumentation-openai", "opentelemetry-semantic-conventions-ai")}
        active["openllmetry_legacy"] = active["openllmetry"]
        keep = active.get(variant, ("openai", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
                                    "opentelemetry-instrumentation-openai-v2", "opentelemetry-util-genai"))
        versions = ", ".join(f"{k}=={v}" for k, v in info["versions"].items() if k in keep)
        lines += [f"## {variant}.pb", "", NOTES.get(variant, ""), "", f"Packages: {versions}.", "",
                  f"Scope: {', '.join(sorted(t['scopes']))}.", "",
                  f"Resource attribute keys: {', '.join(sorted(t['resource_keys']))}.", ""]
        for s in t["spans"]:
            events = sorted({e[0] + (f" {{{', '.join(e[1])}}}" if e[1] else "") for e in s["events"]})
            status = {0: "UNSET", 1: "OK", 2: "ERROR"}[s["status"]]
            lines.append(f"- span `{s['name']}` ({s['kind'].replace('SPAN_KIND_', '')}, status {status}): "
                         + ", ".join(f"`{k}`" for k in s["attributes"])
                         + (f"; events: {', '.join(events)}" if events else "; no events"))
        if info.get("logs"):
            lines += ["", f"Log records ({variant}.logs.pb, the Logs signal): "
                      + "; ".join(f"`{r['event_name']}` with " + ", ".join(f"`{k}`" for k in r["attributes"])
                                  for r in info["logs"])]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
