"""An application instrumented with OpenTelemetry, in a process of its own: the openai SDK calls a (fake)
provider, a GenAI instrumentation makes the spans, the SDK's OTLPSpanExporter (protobuf over HTTP) sends them.

    python otel_clients.py INSTRUMENTATION BASE_URL TRACES_ENDPOINT N [--gzip] [--traceparent-every K]
                           [--token TOKEN] [--service NAME] [--hold-exports-ms MS]

INSTRUMENTATION is `openai_v2` (opentelemetry-instrumentation-openai-v2, latest GenAI conventions, content as
span attributes) or `openllmetry` (Traceloop's opentelemetry-instrumentation-openai). Calls alternate unary and
streaming (stream_options.include_usage, so both report usage), each with a prompt of a different length so
that every call has its own token counts. With --traceparent-every K, every K-th call runs inside a parent span
whose W3C `traceparent` is sent as a request header (what an HTTP client instrumentation would do), so the
call's trace id is on the wire. With --hold-exports-ms, spans are exported only at the end, MS milliseconds
after the last call (so that whoever else reported the calls is there first).

The resource comes from the SDK's own detectors (OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=process,host, set here
unless the caller set it): process.pid, process.executable.*, host.name, as a real deployment has them.
TLS trust for an https:// BASE_URL comes from SSL_CERT_FILE. Prints one JSON object:
{"pid", "calls": [{"id", "model", "input", "output", "stream", "trace_id", "traceparent", "t0", "t1"}],
 "exports": [export results]}."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("instrumentation", choices=["openai_v2", "openllmetry"])
    ap.add_argument("base_url")
    ap.add_argument("endpoint")
    ap.add_argument("n", type=int)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--traceparent-every", type=int, default=0)
    ap.add_argument("--token")
    ap.add_argument("--service", default="otel-client")
    ap.add_argument("--hold-exports-ms", type=int, default=0)
    args = ap.parse_args()

    os.environ.setdefault("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "process,host")
    if args.instrumentation == "openai_v2":
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
        os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    else:
        os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")

    from opentelemetry import propagate, trace
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exports = []

    class RecordingExporter(OTLPSpanExporter):
        def export(self, spans):
            result = super().export(spans)
            exports.append({"spans": len(spans), "result": result.name})
            return result

    exporter = RecordingExporter(endpoint=args.endpoint,
                                 compression=Compression.Gzip if args.gzip else Compression.NoCompression,
                                 headers={"Authorization": f"Bearer {args.token}"} if args.token else None)
    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    delay = 3_600_000 if args.hold_exports_ms else 200
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay, max_queue_size=8192,
                                                   max_export_batch_size=512))
    trace.set_tracer_provider(provider)

    if args.instrumentation == "openai_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()

    import openai

    client = openai.OpenAI(base_url=args.base_url + "/v1", api_key="sk-otel-client-fake", max_retries=0)
    tracer = trace.get_tracer("lumen.tests.otel_clients")
    calls = []
    for i in range(args.n):
        prompt = " ".join(WORDS[: 1 + i % len(WORDS)]) + f" question {i}" + " more" * (i // len(WORDS))
        stream = i % 2 == 1
        with_context = args.traceparent_every and i % args.traceparent_every == 0
        headers = {}
        parent = tracer.start_span(f"request {i}") if with_context else None
        ctx = trace.set_span_in_context(parent) if parent else None
        if parent:
            propagate.inject(headers, context=ctx)
        token = None
        if ctx is not None:
            from opentelemetry import context as context_api

            token = context_api.attach(ctx)
        t0 = time.time_ns()
        try:
            messages = [{"role": "user", "content": prompt}]
            if stream:
                usage, rid, model = None, None, None
                for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                                            stream_options={"include_usage": True},
                                                            extra_headers=headers or None):
                    rid, model = chunk.id, chunk.model
                    usage = chunk.usage or usage
            else:
                r = client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                                   extra_headers=headers or None)
                usage, rid, model = r.usage, r.id, r.model
        finally:
            t1 = time.time_ns()
            if token is not None:
                context_api.detach(token)
            if parent:
                parent.end()
        calls.append({"id": rid, "model": model, "input": usage.prompt_tokens, "output": usage.completion_tokens,
                      "stream": stream, "prompt": prompt, "t0": t0, "t1": t1,
                      "trace_id": format(parent.get_span_context().trace_id, "032x") if parent else None,
                      "traceparent": headers.get("traceparent")})
    if args.hold_exports_ms:
        time.sleep(args.hold_exports_ms / 1000)
    provider.force_flush()
    provider.shutdown()
    print(json.dumps({"pid": os.getpid(), "calls": calls, "exports": exports}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
