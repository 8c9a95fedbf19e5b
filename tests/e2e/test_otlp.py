"""End-to-end: OpenTelemetry traces into the real `lumen serve` over OTLP/HTTP (POST /v1/traces).

Senders are real: the OpenTelemetry Python SDK's OTLPSpanExporter (protobuf, plain and gzip), the official GenAI
instrumentation (opentelemetry-instrumentation-openai-v2) and Traceloop's OpenLLMetry calling the fake provider
with the openai SDK, the payloads those produced (ingest/tests/fixtures/otlp/, see its README), and OTLP/JSON
bodies written here. What comes back over SQL must follow the mapping of OTLP spans onto the span contract
(source 'otlp', ids as lowercase hex, GenAI attributes onto their columns, resource onto workload identity,
everything else into `attributes`), bad input must be answered as OTLP says (partial success, 400 with a
google.rpc.Status, 415, 401), and the server's capture policy must hold for /v1/spans and /v1/traces alike —
down to the bytes in the WAL and the Parquet files."""

from __future__ import annotations

import json
import time

import pytest
import requests

from fake_provider import FakeProvider
from otlp_harness import (DETAILS_EVENT, FIXTURES, JSON, KIND_CLIENT, KIND_CONSUMER, KIND_INTERNAL, KIND_PRODUCER,
                          KIND_SERVER, PROTOBUF, STATUS_ERROR, STATUS_OK, by_name, check, export_response,
                          fixture_spans, one, parquet_tables, parsed, post_json, post_protobuf, post_traces, request,
                          rows, rpc_status, run_otel_client, span, span_id, table_text, trace_id, wal_tables)

GPT4O_MINI_IN, GPT4O_MINI_OUT, GPT4O_MINI_CACHED = 1.5e-07, 6e-07, 7.5e-08  # USD per token (the price table)


def text_message(role, content, **extra):
    return dict({"role": role, "parts": [{"type": "text", "content": content}]}, **extra)


def accepted(r, what="the export"):
    assert r.status_code == 200, f"expected 200 for {what}, got {r.status_code}: {r.text[:2000]}"
    resp = export_response(r)
    assert resp["rejected"] == 0, f"expected no rejected spans for {what}, got {resp}"
    return resp


# --- the real SDK exporter -----------------------------------------------------------------------------


def _sdk_spans(tag):
    """A SERVER span and a GenAI CLIENT child made by the real SDK (kept in memory, exported by the test)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"sdk-{tag}", "host.name": "node-a",
                                                        "process.pid": 777}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("lumen.tests.sdk", "2.0.0")
    with tracer.start_as_current_span(f"POST /answer {tag}", kind=SpanKind.SERVER, attributes={
            "http.request.method": "POST", "url.path": "/answer", "http.response.status_code": 200}):
        with tracer.start_as_current_span(f"chat gpt-4o-mini {tag}", kind=SpanKind.CLIENT, attributes={
                "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30}):
            time.sleep(0.02)
    return memory.get_finished_spans()


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_sdk_exporter_spans_become_rows(lumen, compression):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    server = lumen()
    spans = _sdk_spans(compression)
    exporter = OTLPSpanExporter(endpoint=server.url + "/v1/traces", compression=Compression(compression))
    result = exporter.export(spans)
    exporter.shutdown()
    assert result.name == "SUCCESS", f"expected the SDK's {compression} protobuf export to succeed, got {result}:\n{server.log()}"
    assert len(spans) == 2
    for s in spans:
        sid = format(s.context.span_id, "016x")
        row = one(server, f"span_id = '{sid}'", f"the SDK span {s.name!r}")
        check(row, {
            "trace_id": format(s.context.trace_id, "032x"),
            "parent_span_id": format(s.parent.span_id, "016x") if s.parent else None,
            "start_time": s.start_time, "end_time": s.end_time,
            "duration_ms": (s.end_time - s.start_time) / 1e6,
            "source": "otlp", "service_name": f"sdk-{compression}", "host": "node-a", "pid": 777,
            "attr:otel.span_name": s.name, "attr:otel.scope.name": "lumen.tests.sdk",
        }, f"SDK span {s.name!r} exported with compression={compression}")
        if s.name.startswith("chat"):
            check(row, {"span_kind": "client", "attr:otel.span_kind": "client", "provider": "openai",
                        "operation": "chat", "request_model": "gpt-4o-mini",
                        "response_model": "gpt-4o-mini-2024-07-18", "input_tokens": 120, "output_tokens": 30},
                  "the GenAI CLIENT span")
        else:
            check(row, {"span_kind": "server", "attr:otel.span_kind": "server", "provider": None,
                        "http_method": "POST", "url_path": "/answer", "http_status": 200,
                        "input_tokens": None}, "the non-GenAI SERVER span (stored, provider NULL)")


# --- the GenAI mapping -----------------------------------------------------------------------------------

FULL_RESOURCE = {"service.name": "answers", "host.name": "node-12", "k8s.namespace.name": "ml",
                 "k8s.pod.name": "answers-5c7d9-abcde", "container.id": "c0ffee" * 10 + "abcd",
                 "process.pid": 4321, "process.executable.name": "python3.12",
                 "process.executable.path": "/usr/local/bin/python3.12", "deployment.environment.name": "prod",
                 "cloud.region": "eu-west-1"}
INPUT = [{"role": "user", "parts": [{"type": "text", "content": "What is the capital of Portugal?"}]}]
OUTPUT = [{"role": "assistant", "parts": [{"type": "text", "content": "Lisbon."}], "finish_reason": "stop"}]
SYSTEM = [{"type": "text", "content": "Answer in one word."}]
TOOLS = [{"type": "function", "name": "lookup_city", "description": "Looks a city up",
          "parameters": {"type": "object", "properties": {"name": {"type": "string"}}}}]


def _full_genai_span(trace, parent):
    start = time.time_ns() - 120 * 10**9
    return span("chat gpt-4o-mini", trace=trace, parent=parent, kind=KIND_CLIENT, start=start,
                end=start + 1_500_000_000, attrs={
                    "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.response.id": "chatcmpl-full-1", "gen_ai.request.stream": True,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 150,
                    "gen_ai.usage.cache_read.input_tokens": 200, "gen_ai.usage.cache_creation.input_tokens": 50,
                    "gen_ai.usage.reasoning.output_tokens": 30,
                    "gen_ai.request.temperature": 0.7, "gen_ai.request.top_p": 0.95, "gen_ai.request.max_tokens": 512,
                    "gen_ai.response.time_to_first_chunk": 0.25,
                    "server.address": "api.openai.com", "server.port": 443,
                    "http.request.method": "POST", "http.response.status_code": 200,
                    "url.path": "/v1/chat/completions",
                    "gen_ai.input.messages": json.dumps(INPUT), "gen_ai.output.messages": json.dumps(OUTPUT),
                    "gen_ai.system_instructions": json.dumps(SYSTEM), "gen_ai.tool.definitions": json.dumps(TOOLS),
                    "openai.response.service_tier": "default",
                }), start


ENCODINGS = {"json": (JSON, False), "json+gzip": (JSON, True), "protobuf": (PROTOBUF, False),
             "protobuf+gzip": (PROTOBUF, True)}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_current_genai_conventions_map_onto_columns(lumen, encoding):
    server = lumen()
    trace, parent = trace_id(), span_id()
    s, start = _full_genai_span(trace, parent)
    req = request([s], resource=FULL_RESOURCE, scope="opentelemetry.instrumentation.openai_v2", scope_version="2.4b0")
    content_type, gz = ENCODINGS[encoding]
    r = (post_json if content_type == JSON else post_protobuf)(server, req, gzip_body=gz)
    resp = accepted(r, f"an OTLP {encoding} request")
    assert resp["content_type"].startswith(content_type), \
        f"expected the response in the request's encoding {content_type}, got {resp['content_type']}"

    row = one(server, f"span_id = '{s['spanId']}'", "the GenAI span",
              attrs=["resource.deployment.environment.name", "resource.cloud.region", "openai.response.service_tier"])
    check(row, {
        "trace_id": trace, "parent_span_id": parent, "start_time": start, "end_time": start + 1_500_000_000,
        "duration_ms": 1500.0, "ttft_ms": 250.0, "source": "otlp", "span_kind": "client",
        "attr:otel.span_kind": "client", "attr:otel.span_name": "chat gpt-4o-mini",
        "attr:otel.scope.name": "opentelemetry.instrumentation.openai_v2",
        # resource
        "service_name": "answers", "host": "node-12", "k8s_namespace": "ml", "k8s_pod": "answers-5c7d9-abcde",
        "container_id": FULL_RESOURCE["container.id"], "pid": 4321, "process_name": "python3.12",
        "exe": "/usr/local/bin/python3.12", "attr:resource.deployment.environment.name": "prod",
        "attr:resource.cloud.region": "eu-west-1",
        # GenAI
        "provider": "openai", "operation": "chat", "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18", "response_id": "chatcmpl-full-1", "streaming": True,
        "finish_reasons": ["stop"], "input_tokens": 1000, "output_tokens": 150, "cache_read_tokens": 200,
        "cache_creation_tokens": 50, "reasoning_tokens": 30, "temperature": 0.7, "top_p": 0.95, "max_tokens": 512,
        "server_address": "api.openai.com", "server_port": 443, "http_method": "POST", "http_status": 200,
        "url_path": "/v1/chat/completions", "error_type": None, "error_message": None,
        "attr:openai.response.service_tier": "default",
    }, f"the GenAI span sent as {encoding}")
    assert row["cost_usd"] is not None and row["cost_usd"] > 0, \
        f"expected a cost for gpt-4o-mini from the token counts, got {row['cost_usd']!r}"
    for column, value in (("input_messages", INPUT), ("output_messages", OUTPUT),
                          ("system_instructions", SYSTEM), ("tool_definitions", TOOLS)):
        assert parsed(row[column]) == value, f"expected {column} to be the JSON that was sent, {value}, got {row[column]!r}"
    assert "redacted" in (row["capture_flags"] or []), \
        f"expected the default capture mode's flag 'redacted', got {row['capture_flags']!r}"
    assert row["duplicate_of"] is None, f"expected a lone OTLP span to count (duplicate_of NULL), got {row['duplicate_of']!r}"


def test_cost_is_computed_from_tokens_for_a_known_model(lumen):
    server = lumen()
    known = span("chat known", attrs={"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                                      "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1000,
                                      "gen_ai.usage.output_tokens": 100})
    unknown = span("chat unknown", attrs={"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                                          "gen_ai.request.model": "no-such-model-xyz", "gen_ai.usage.input_tokens": 10,
                                          "gen_ai.usage.output_tokens": 10})
    accepted(post_json(server, request([known, unknown])))
    got = by_name(rows(server, "source = 'otlp'"))
    expected = 1000 * GPT4O_MINI_IN + 100 * GPT4O_MINI_OUT
    assert got["chat known"]["cost_usd"] == pytest.approx(expected, rel=1e-9), \
        f"expected cost 1000 x {GPT4O_MINI_IN} + 100 x {GPT4O_MINI_OUT} = {expected} USD, got {got['chat known']['cost_usd']!r}"
    assert got["chat unknown"]["cost_usd"] is None, \
        f"expected NULL cost for an unknown model (never 0), got {got['chat unknown']['cost_usd']!r}"


def test_int64_values_as_json_numbers_are_accepted(lumen):
    """The protobuf JSON mapping writes int64 as strings, but parsers must accept numbers too."""
    server = lumen()
    s = span("chat numbers", attrs={"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"})
    start = int(s["startTimeUnixNano"])
    s["startTimeUnixNano"], s["endTimeUnixNano"] = start, start + 2_000_000
    s["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"intValue": 77}})
    accepted(post_json(server, request([s])), "an OTLP/JSON body with int64 fields as JSON numbers")
    row = one(server, f"span_id = '{s['spanId']}'", "the span with numeric int64 fields")
    check(row, {"start_time": start, "duration_ms": 2.0, "input_tokens": 77}, "int64 fields given as JSON numbers")


NORMALISED = {"openai": "openai", "OpenAI": "openai", "az.ai.openai": "azure.ai.openai", "Azure": "azure.ai.openai",
              "vertex_ai": "gcp.vertex_ai", "gemini": "gcp.gemini", "xai": "x_ai", "Anthropic": "anthropic",
              "AWS": "aws.bedrock", "MistralAI": "mistral_ai"}


def test_deprecated_gen_ai_system_and_usage_names(lumen):
    server = lumen()
    spans = [span(f"chat via {system}", attrs={"gen_ai.system": system, "gen_ai.operation.name": "chat",
                                                "gen_ai.request.model": f"model-{i}",
                                                "gen_ai.usage.prompt_tokens": 100 + i,
                                                "gen_ai.usage.completion_tokens": 10 + i})
             for i, system in enumerate(NORMALISED)]
    accepted(post_json(server, request(spans)))
    got = by_name(rows(server, "source = 'otlp'"))
    for i, (system, provider) in enumerate(NORMALISED.items()):
        row = got.get(f"chat via {system}")
        assert row is not None, f"expected a row for the span with gen_ai.system={system!r}; got {sorted(got)}"
        check(row, {"provider": provider, "request_model": f"model-{i}", "input_tokens": 100 + i,
                    "output_tokens": 10 + i}, f"gen_ai.system={system!r} (expected provider {provider!r}) and "
                                              "gen_ai.usage.prompt_tokens/completion_tokens")


def _messages_match(got_json, expected, column):
    got = parsed(got_json)
    assert isinstance(got, list), f"expected {column} as a JSON list of OTel GenAI messages, got {got_json!r}"
    assert len(got) == len(expected), f"expected {len(expected)} messages in {column}, got {got_json}"
    for g, e in zip(got, expected):
        assert g.get("role") == e["role"] and g.get("parts") == e["parts"], \
            f"expected {column} message {e} (role and parts; other keys allowed), got {g}"


def test_openllmetry_flat_attributes(lumen):
    """OpenLLMetry's legacy attributes (what opentelemetry-instrumentation-openai 0.40.x sends; see
    ingest/tests/fixtures/otlp/openllmetry_legacy.pb)."""
    server = lumen()
    chat = span("openai.chat", attrs={
        "llm.request.type": "chat", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "llm.is_streaming": True,
        "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Weather in Lisbon?",
        "gen_ai.prompt.1.role": "assistant", "gen_ai.prompt.1.content": "Which day?",
        "gen_ai.prompt.2.role": "user", "gen_ai.prompt.2.content": "Today.",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Sunny, 24 C.",
        "gen_ai.completion.0.finish_reason": "stop", "llm.response.finish_reason": "stop",
        "llm.request.functions.0.name": "get_weather", "llm.request.functions.0.description": "Weather for a city",
        "llm.request.functions.0.parameters": json.dumps({"type": "object", "properties": {"city": {"type": "string"}}}),
        "gen_ai.usage.prompt_tokens": 40, "gen_ai.usage.completion_tokens": 8,
        "gen_ai.usage.cache_read_input_tokens": 16, "llm.usage.total_tokens": 48})
    completion = span("openai.completion", attrs={"llm.request.type": "completion", "gen_ai.system": "OpenAI",
                                                  "gen_ai.request.model": "gpt-3.5-turbo-instruct",
                                                  "llm.is_streaming": False})
    embedding = span("openai.embeddings", attrs={"llm.request.type": "embedding", "gen_ai.system": "OpenAI",
                                                 "gen_ai.request.model": "text-embedding-3-small"})
    accepted(post_json(server, request([chat, completion, embedding], scope="opentelemetry.instrumentation.openai.v1")))
    got = by_name(rows(server, "source = 'otlp'"))
    row = got["openai.chat"]
    check(row, {"provider": "openai", "operation": "chat", "streaming": True, "finish_reasons": ["stop"],
                "input_tokens": 40, "output_tokens": 8, "cache_read_tokens": 16},
          "OpenLLMetry chat span (llm.request.type, gen_ai.system=OpenAI, llm.is_streaming, "
          "llm.response.finish_reason, prompt/completion tokens, gen_ai.usage.cache_read_input_tokens)")
    _messages_match(row["input_messages"], [text_message("user", "Weather in Lisbon?"),
                                            text_message("assistant", "Which day?"),
                                            text_message("user", "Today.")], "input_messages")
    _messages_match(row["output_messages"], [text_message("assistant", "Sunny, 24 C.")], "output_messages")
    tools = parsed(row["tool_definitions"])
    assert isinstance(tools, list) and len(tools) == 1, f"expected one tool definition, got {row['tool_definitions']!r}"
    tool = tools[0].get("function", tools[0])
    params = tool.get("parameters")
    check({"name": tool.get("name"), "description": tool.get("description"),
           "parameters": json.loads(params) if isinstance(params, str) else params},
          {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
          "tool_definitions from llm.request.functions.0.*")
    check(got["openai.completion"], {"operation": "text_completion", "streaming": False, "provider": "openai"},
          "llm.request.type=completion")
    check(got["openai.embeddings"], {"operation": "embeddings", "provider": "openai"}, "llm.request.type=embedding")


@pytest.mark.parametrize("shape", ["json-strings", "structured"])
def test_content_in_the_inference_details_event(lumen, shape):
    """Content carried by a span event `gen_ai.client.inference.operation.details` instead of span attributes:
    as JSON strings, or as structured AnyValues (arrays of key-value lists, as the latest conventions allow)."""
    server = lumen()
    content = {"gen_ai.input.messages": INPUT, "gen_ai.output.messages": OUTPUT,
               "gen_ai.system_instructions": SYSTEM, "gen_ai.tool.definitions": TOOLS}
    event_attrs = {k: json.dumps(v) if shape == "json-strings" else v for k, v in content.items()}
    event_attrs["gen_ai.operation.name"] = "chat"
    s = span("chat gpt-4o-mini", attrs={"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                                        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 12},
             events=[{"name": DETAILS_EVENT, "attrs": event_attrs}])
    accepted(post_json(server, request([s])))
    row = one(server, f"span_id = '{s['spanId']}'", "the span with content in its event")
    for column, key in (("input_messages", "gen_ai.input.messages"), ("output_messages", "gen_ai.output.messages"),
                        ("system_instructions", "gen_ai.system_instructions"),
                        ("tool_definitions", "gen_ai.tool.definitions")):
        assert parsed(row[column]) == content[key], \
            f"expected {column} from the {DETAILS_EVENT} event's {key} ({shape}): {content[key]}, got {row[column]!r}"
    check(row, {"provider": "openai", "input_tokens": 12}, "the span's own attributes")


def test_span_kinds(lumen):
    server = lumen()
    kinds = {KIND_INTERNAL: ("client", "internal"), KIND_SERVER: ("server", "server"),
             KIND_CLIENT: ("client", "client"), KIND_PRODUCER: ("client", "producer"),
             KIND_CONSUMER: ("server", "consumer")}
    spans = [span(f"kind {k}", kind=k, attrs={"gen_ai.provider.name": "openai", "gen_ai.request.model": "m"})
             for k in kinds]
    accepted(post_json(server, request(spans)))
    got = by_name(rows(server, "source = 'otlp'"))
    for k, (span_kind, original) in kinds.items():
        check(got[f"kind {k}"], {"span_kind": span_kind, "attr:otel.span_kind": original},
              f"OTLP span kind {k} ({original}): expected span_kind {span_kind!r} and attributes['otel.span_kind'] {original!r}")


def test_error_status_type_and_message(lumen):
    server = lumen()
    genai = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    spans = [
        span("with error.type", attrs=dict(genai, **{"error.type": "rate_limit_exceeded",
                                                    "http.response.status_code": 429}),
             status=STATUS_ERROR, status_message="Rate limit reached for gpt-4o-mini"),
        span("with exception event", attrs=genai, status=STATUS_ERROR,
             events=[{"name": "exception", "attrs": {"exception.type": "openai.APITimeoutError",
                                                     "exception.message": "Request timed out."}}]),
        span("bare error", attrs=genai, status=STATUS_ERROR, status_message="it failed"),
        span("ok", attrs=genai, status=STATUS_OK),
    ]
    accepted(post_json(server, request(spans)))
    got = by_name(rows(server, "source = 'otlp'"))
    check(got["with error.type"], {"error_type": "rate_limit_exceeded", "http_status": 429,
                                   "error_message": "Rate limit reached for gpt-4o-mini"},
          "status ERROR with an error.type attribute and a status message")
    check(got["with exception event"], {"error_type": "openai.APITimeoutError", "error_message": "Request timed out."},
          "status ERROR with an exception event and no status message")
    check(got["bare error"], {"error_type": "_OTHER", "error_message": "it failed"},
          "status ERROR with neither error.type nor an exception event")
    check(got["ok"], {"error_type": None, "error_message": None}, "status OK")


def test_non_genai_spans_and_resource_attributes_from_the_real_sdk_payload(lumen):
    """plain.pb.gz: what the SDK sent, gzip-compressed — an HTTP SERVER span and a failing INTERNAL DB span."""
    server = lumen()
    body = (FIXTURES / "plain.pb.gz").read_bytes()
    r = post_traces(server, body, PROTOBUF, headers={"Content-Encoding": "gzip"})
    accepted(r, "the SDK's gzip export of plain.pb")
    spans = fixture_spans("plain.pb")
    resource = spans[0]["resource"]
    for s in spans:
        row = one(server, f"span_id = '{s['span_id']}'", f"the fixture span {s['name']!r}",
                  attrs=["resource.telemetry.sdk.language", "resource.process.runtime.name", "db.system.name"])
        check(row, {"trace_id": s["trace_id"], "parent_span_id": s["parent_span_id"], "start_time": s["start"],
                    "end_time": s["end"], "source": "otlp", "provider": None, "operation": None,
                    "service_name": "checkout", "host": "node-7", "k8s_namespace": "shop",
                    "k8s_pod": "checkout-7d9f8b-x2k4q", "container_id": resource["container.id"], "pid": 4242,
                    "process_name": resource["process.executable.name"],
                    "exe": resource["process.executable.path"],
                    "attr:resource.telemetry.sdk.language": "python",
                    "attr:resource.process.runtime.name": resource["process.runtime.name"],
                    "attr:otel.scope.name": "fixture.plain", "attr:otel.span_name": s["name"]},
              f"non-GenAI span {s['name']!r} and its resource")
        if s["name"] == "GET /cart":
            check(row, {"span_kind": "server", "attr:otel.span_kind": "server", "http_method": "GET",
                        "url_path": "/cart", "http_status": 500, "server_address": "shop.example",
                        "server_port": 8080, "error_type": "_OTHER", "error_message": "internal error"},
                  "the HTTP SERVER span with status ERROR 'internal error'")
        else:
            check(row, {"span_kind": "client", "attr:otel.span_kind": "internal", "error_type": "ValueError",
                        "error_message": "ValueError: cart 42 not found", "attr:db.system.name": "postgresql"},
                  "the INTERNAL span with an exception event (type from exception.type, message from the status)")


def test_retried_export_is_stored_once(lumen):
    server = lumen()
    req = request([span("chat retry", attrs={"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
                                             "gen_ai.usage.input_tokens": 5})])
    accepted(post_json(server, req))
    accepted(post_protobuf(server, req), "the same spans again (an exporter's retry)")
    n = server.scalar("SELECT count(*) FROM spans_all WHERE source = 'otlp'")
    assert n == 1, f"expected a retried export (same trace and span ids) to be stored once, got {n} rows"


# --- partial success and refusals ------------------------------------------------------------------------


def _mixed_request():
    now = time.time_ns() - 30 * 10**9
    good1 = span("good one", start=now, attrs={"gen_ai.provider.name": "openai", "gen_ai.request.model": "m"})
    good2 = span("good two", start=now)
    no_start = span("bad no start", start=False, end=now)
    zero_start = span("bad zero start", start=now)
    zero_start["startTimeUnixNano"] = "0"
    backwards = span("bad end before start", start=now, end=now - 1_000_000)
    short_trace = span("bad short trace id", trace="0102030405060708", start=now)
    return [good1, good2, no_start, zero_start, backwards, short_trace]


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_invalid_spans_are_rejected_one_by_one(lumen, encoding):
    server = lumen()
    spans = _mixed_request()
    req = request(spans)
    r = post_json(server, req) if encoding == "json" else post_protobuf(server, req)
    assert r.status_code == 200, f"expected 200 with a partial success, got {r.status_code}: {r.text[:1000]}"
    resp = export_response(r)
    assert resp["content_type"].startswith(JSON if encoding == "json" else PROTOBUF), \
        f"expected the response in the request's encoding, got {resp['content_type']}"
    assert resp["rejected"] == 4, f"expected partialSuccess.rejectedSpans = 4 (four invalid spans), got {resp}"
    message = resp["message"]
    for name in ("bad no start", "bad zero start", "bad end before start", "bad short trace id"):
        assert name in message, f"expected partialSuccess.errorMessage to name the rejected span {name!r}: {message!r}"
    assert "start" in message.lower() and "trace" in message.lower(), \
        f"expected the error message to say what is wrong (start time, trace id): {message!r}"
    stored = sorted(r["attr:otel.span_name"] for r in rows(server, "source = 'otlp'", table="spans_all"))
    assert stored == ["good one", "good two"], f"expected only the two valid spans stored, got {stored}"


def test_undecodable_bodies_are_400_with_a_status(lumen):
    server = lumen()
    cases = [
        ("truncated protobuf", b"\x0a\x05abc", PROTOBUF, {}, ("protobuf", "decod", "invalid", "truncat")),
        ("invalid JSON", b'{"resourceSpans": [', JSON, {}, ("json",)),
        ("JSON of the wrong shape", b'{"resourceSpans": "nope"}', JSON, {}, ("resourcespans", "json", "invalid")),
        ("not gzip", b"definitely not gzip", PROTOBUF, {"Content-Encoding": "gzip"}, ("gzip",)),
        ("not gzip (JSON)", b"definitely not gzip", JSON, {"Content-Encoding": "gzip"}, ("gzip",)),
    ]
    for what, body, ctype, headers, words in cases:
        r = post_traces(server, body, ctype, headers=headers)
        assert r.status_code == 400, f"{what}: expected 400, got {r.status_code}: {r.text[:500]}"
        status = rpc_status(r)
        assert status["content_type"].startswith(ctype), \
            f"{what}: expected the google.rpc.Status in the request's encoding {ctype}, got {status['content_type']}"
        assert status["message"] and any(w in status["message"].lower() for w in words), \
            f"{what}: expected the Status message to say what was wrong (one of {words}), got {status['message']!r}"
    for ctype in ("text/plain", "application/x-ndjson", "application/grpc"):
        r = post_traces(server, b'{"resourceSpans": []}', ctype)
        assert r.status_code == 415, f"expected 415 for Content-Type {ctype}, got {r.status_code}: {r.text[:300]}"
    assert server.scalar("SELECT count(*) FROM spans_all") == 0, "expected nothing stored from refused requests"
    # Still serving.
    accepted(post_json(server, request([span("after the refusals")])))


def test_an_empty_export_is_accepted(lumen):
    server = lumen()
    for body, ctype in ((b"{}", JSON), (b'{"resourceSpans": []}', JSON), (b"", PROTOBUF)):
        r = post_traces(server, body, ctype)
        assert r.status_code == 200, f"expected 200 for an empty ExportTraceServiceRequest {body!r} ({ctype}), got {r.status_code}: {r.text[:300]}"


def test_bearer_token_is_required(lumen):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    server = lumen(args=["--ingest-token", "otlp-secret"])
    req = request([span("chat auth", attrs={"gen_ai.provider.name": "openai", "gen_ai.request.model": "m"})])
    r = post_json(server, req)
    assert r.status_code == 401, f"expected 401 without a bearer token, got {r.status_code}"
    r = post_protobuf(server, req, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401, f"expected 401 with a wrong bearer token, got {r.status_code}"
    assert server.scalar("SELECT count(*) FROM spans_all") == 0, "expected nothing stored without the token"
    accepted(post_json(server, req, headers={"Authorization": "Bearer otlp-secret"}), "an export with the token")

    spans = _sdk_spans("auth")
    without = OTLPSpanExporter(endpoint=server.url + "/v1/traces", timeout=5)
    assert without.export(spans).name == "FAILURE", "expected the SDK exporter without the token to fail (401)"
    with_token = OTLPSpanExporter(endpoint=server.url + "/v1/traces", headers={"Authorization": "Bearer otlp-secret"})
    assert with_token.export(spans).name == "SUCCESS", "expected the SDK exporter with the token to succeed"
    assert server.scalar("SELECT count(*) FROM spans_all WHERE source = 'otlp'") == 3


# --- real instrumentations and their captured payloads ---------------------------------------------------


@pytest.mark.parametrize("instrumentation", ["openai_v2", "openllmetry"])
def test_real_instrumentation_calls_are_rows_with_the_providers_model_and_tokens(lumen, instrumentation):
    server = lumen()
    n = 6
    with FakeProvider() as fake:
        out = run_otel_client(instrumentation, fake.url, server.url + "/v1/traces", n, args=["--gzip"])
    assert out["exports"] and all(e["result"] == "SUCCESS" for e in out["exports"]), \
        f"expected every export of the {instrumentation} client to succeed: {out['exports']}\n{server.log()}"
    for call in out["calls"]:
        row = one(server, f"response_id = '{call['id']}'", f"{instrumentation} call {call['prompt']!r}")
        check(row, {"source": "otlp", "span_kind": "client", "provider": "openai", "operation": "chat",
                    "request_model": "gpt-4o-mini", "response_model": call["model"],
                    "input_tokens": call["input"], "output_tokens": call["output"], "pid": out["pid"],
                    "service_name": "otel-client", "duplicate_of": None},
              f"{instrumentation}: the span of the {'streaming' if call['stream'] else 'unary'} call "
              "(model and tokens as the fake provider answered them to the SDK)")
        assert row["streaming"] in (None, call["stream"]), \
            f"expected streaming to be {call['stream']} or unknown, got {row['streaming']!r}"
        assert call["t0"] - 5 * 10**6 <= row["start_time"] <= row["end_time"] <= call["t1"] + 5 * 10**6, \
            f"expected the span inside the call's own time window {call['t0']}..{call['t1']}: {row['start_time']}..{row['end_time']}"
        expected_cost = call["input"] * GPT4O_MINI_IN + call["output"] * GPT4O_MINI_OUT
        assert row["cost_usd"] == pytest.approx(expected_cost, rel=1e-6), \
            f"expected cost {expected_cost} for {call['input']}/{call['output']} gpt-4o-mini tokens, got {row['cost_usd']}"
        assert call["prompt"] in (row["input_messages"] or ""), \
            f"expected the prompt {call['prompt']!r} in input_messages, got {row['input_messages']!r}"
        assert row["output_messages"] and "fake answer" in row["output_messages"], \
            f"expected the fake provider's answer in output_messages, got {row['output_messages']!r}"
    total = server.rows("SELECT count(*), sum(input_tokens), sum(output_tokens) FROM spans WHERE provider = 'openai'")[0]
    assert total == [n, sum(c["input"] for c in out["calls"]), sum(c["output"] for c in out["calls"])], \
        f"expected {n} GenAI rows whose tokens add up to what the client saw, got {total}"


NORMALISE = dict(NORMALISED)
SPAN_COLUMNS = {"gen_ai.operation.name": "operation", "gen_ai.request.model": "request_model",
                "gen_ai.response.model": "response_model", "gen_ai.response.id": "response_id",
                "gen_ai.request.stream": "streaming", "gen_ai.response.finish_reasons": "finish_reasons",
                "gen_ai.usage.input_tokens": "input_tokens", "gen_ai.usage.output_tokens": "output_tokens",
                "gen_ai.usage.cache_read.input_tokens": "cache_read_tokens",
                "gen_ai.usage.cache_creation.input_tokens": "cache_creation_tokens",
                "gen_ai.usage.reasoning.output_tokens": "reasoning_tokens",
                "gen_ai.request.temperature": "temperature", "gen_ai.request.top_p": "top_p",
                "gen_ai.request.max_tokens": "max_tokens", "server.address": "server_address",
                "server.port": "server_port", "http.request.method": "http_method",
                "http.response.status_code": "http_status", "url.path": "url_path",
                "gen_ai.usage.prompt_tokens": "input_tokens", "gen_ai.usage.completion_tokens": "output_tokens",
                "gen_ai.usage.cache_read_input_tokens": "cache_read_tokens", "llm.is_streaming": "streaming"}
RESOURCE_COLUMNS = {"service.name": "service_name", "host.name": "host", "k8s.namespace.name": "k8s_namespace",
                    "k8s.pod.name": "k8s_pod", "container.id": "container_id", "process.pid": "pid",
                    "process.executable.name": "process_name", "process.executable.path": "exe"}
CONTENT_COLUMNS = {"gen_ai.input.messages": "input_messages", "gen_ai.output.messages": "output_messages",
                   "gen_ai.system_instructions": "system_instructions", "gen_ai.tool.definitions": "tool_definitions"}
OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}


def expected_row(s) -> dict:
    """The row the contract's mapping gives for one decoded fixture span (scalar columns)."""
    a = s["attrs"]
    out = {"trace_id": s["trace_id"], "span_id": s["span_id"], "parent_span_id": s["parent_span_id"],
           "start_time": s["start"], "end_time": s["end"], "source": "otlp",
           "span_kind": "server" if s["kind"] in (KIND_SERVER, KIND_CONSUMER) else "client",
           "attr:otel.span_name": s["name"], "attr:otel.scope.name": s["scope"]}
    out.update({col: s["resource"][key] for key, col in RESOURCE_COLUMNS.items() if key in s["resource"]})
    out.update({col: a[key] for key, col in SPAN_COLUMNS.items() if key in a})
    if "gen_ai.provider.name" in a:
        out["provider"] = a["gen_ai.provider.name"]
    elif "gen_ai.system" in a:
        out["provider"] = NORMALISE.get(a["gen_ai.system"], a["gen_ai.system"])
    if "llm.request.type" in a and "gen_ai.operation.name" not in a:
        out["operation"] = OPERATIONS[a["llm.request.type"]]
    return out


@pytest.mark.parametrize("fixture", ["openai_v2.pb", "openllmetry.pb", "openllmetry_legacy.pb"])
def test_captured_instrumentation_payloads(lumen, fixture):
    """The bytes the real instrumentations sent (see the fixtures' README), replayed into lumen (in `full`
    capture mode, so that content is compared as sent)."""
    server = lumen(args=["--capture", "full"])
    accepted(post_traces(server, (FIXTURES / fixture).read_bytes(), PROTOBUF), f"the captured {fixture}")
    spans = fixture_spans(fixture)
    assert spans
    for s in spans:
        row = one(server, f"span_id = '{s['span_id']}'", f"{fixture} span {s['name']!r}")
        check(row, expected_row(s), f"{fixture}: span {s['name']!r} mapped as the contract says")
        a = s["attrs"]
        for key, column in CONTENT_COLUMNS.items():
            if key in a:
                assert parsed(row[column]) == json.loads(a[key]), \
                    f"{fixture}: expected {column} = the span's {key} {a[key]!r}, got {row[column]!r}"
        prompts = sorted({int(k.split(".")[2]) for k in a if k.startswith("gen_ai.prompt.")})
        if prompts:
            got = parsed(row["input_messages"]) or []
            assert len(got) == len(prompts), f"{fixture}: expected {len(prompts)} input messages from gen_ai.prompt.*, got {row['input_messages']!r}"
            for i, message in zip(prompts, got):
                assert message.get("role") == a[f"gen_ai.prompt.{i}.role"] and \
                    {"type": "text", "content": a[f"gen_ai.prompt.{i}.content"]} in message.get("parts", []), \
                    f"{fixture}: expected input message {i} from gen_ai.prompt.{i}.*, got {message}"
        if "gen_ai.completion.0.role" in a:
            got = parsed(row["output_messages"]) or []
            assert got and got[0].get("role") == a["gen_ai.completion.0.role"], \
                f"{fixture}: expected an output message with role {a['gen_ai.completion.0.role']!r}, got {row['output_messages']!r}"
            if "gen_ai.completion.0.content" in a:
                assert {"type": "text", "content": a["gen_ai.completion.0.content"]} in got[0].get("parts", []), \
                    f"{fixture}: expected the completion text in output_messages, got {row['output_messages']!r}"
        if "llm.request.functions.0.name" in a:
            assert "get_weather" in (row["tool_definitions"] or ""), \
                f"{fixture}: expected tool_definitions from llm.request.functions.*, got {row['tool_definitions']!r}"
        if row["input_tokens"] is not None:
            assert row["cost_usd"] and row["cost_usd"] > 0, f"{fixture}: expected a cost for gpt-4o-mini, got {row['cost_usd']!r}"
        else:
            assert row["cost_usd"] is None, f"{fixture}: expected no cost without token counts, got {row['cost_usd']!r}"


# --- capture policy --------------------------------------------------------------------------------------

EMAIL, CARD, KEY = "dana.whitfield@example.org", "4111 1111 1111 1111", "sk-proj-Q2x9vLm4Tz8KpR7sW1nB3cY6dF0gH5jJ"
SECRETS = {"[EMAIL]": EMAIL, "[CARD]": CARD, "[API_KEY]": KEY}
KEEP = "Keep the tone friendly."
PROMPT = f"Please email {EMAIL} about the charge on card {CARD}; the integration key is {KEY}. {KEEP}"
PLANTED = {
    "input_messages": ([text_message("user", PROMPT)], ["[EMAIL]", "[CARD]", "[API_KEY]", KEEP]),
    "output_messages": ([text_message("assistant", f"I will write to {EMAIL} now.", finish_reason="stop")], ["[EMAIL]"]),
    "system_instructions": ([{"type": "text", "content": f"Escalations go to {EMAIL}."}], ["[EMAIL]"]),
    "tool_definitions": ([{"type": "function", "name": "charge_card", "description": f"Charges card {CARD} with key {KEY}",
                           "parameters": {"type": "object"}}], ["[CARD]", "[API_KEY]"]),
}
ERROR_MESSAGE = f"upstream rejected key {KEY} for {EMAIL}"
URL_PATH = f"/v1/accounts/{EMAIL}/chat/completions"
CONTENT_COLUMNS_ALL = list(PLANTED)


def _api_span(name, service="web", provider="openai", flags=None):
    """A span with planted secrets in every content field, for POST /v1/spans."""
    s = {"span_id": span_id(), "trace_id": trace_id(), "start_time": time.time_ns() - 300 * 10**9,
         "duration_ms": 900.0, "service_name": service, "provider": provider, "operation": "chat",
         "request_model": f"model-{name}", "input_tokens": 50, "output_tokens": 9, "http_status": 401,
         "error_type": "invalid_api_key", "error_message": ERROR_MESSAGE, "url_path": URL_PATH,
         "attributes": {"test.name": name}}
    s.update({column: value for column, (value, _) in PLANTED.items()})
    if flags:
        s["capture_flags"] = flags
    return s


def _otlp_span(name, provider="openai", in_event=False):
    """The same planted content for POST /v1/traces: as span attributes, or in the details event."""
    content = {"gen_ai.input.messages": PLANTED["input_messages"][0], "gen_ai.output.messages": PLANTED["output_messages"][0],
               "gen_ai.system_instructions": PLANTED["system_instructions"][0],
               "gen_ai.tool.definitions": PLANTED["tool_definitions"][0]}
    content = {k: json.dumps(v) for k, v in content.items()}
    attrs = {"gen_ai.provider.name": provider, "gen_ai.operation.name": "chat", "gen_ai.request.model": f"model-{name}",
             "gen_ai.usage.input_tokens": 60, "http.response.status_code": 401, "url.path": URL_PATH,
             "error.type": "invalid_api_key", "test.name": name}
    events = None
    if in_event:
        events = [{"name": DETAILS_EVENT, "attrs": content}]
    else:
        attrs.update(content)
    return span(name, attrs=attrs, events=events, status=STATUS_ERROR, status_message=ERROR_MESSAGE)


def _row_of(server, name):
    return one(server, f"attributes['test.name'] = '{name}'", f"the span {name!r}")


def _assert_redacted(row, what):
    assert "redacted" in (row["capture_flags"] or []), f"{what}: expected capture_flags to contain 'redacted', got {row['capture_flags']!r}"
    for column, (_, placeholders) in PLANTED.items():
        text = row[column]
        assert text is not None, f"{what}: expected {column} kept (redacted), got NULL"
        for value in SECRETS.values():
            assert value not in text, f"{what}: expected {value!r} replaced by a placeholder in {column}: {text}"
        for p in placeholders:
            assert p in text, f"{what}: expected {p!r} in {column}: {text}"
    for column, placeholders in (("error_message", ["[API_KEY]", "[EMAIL]"]), ("url_path", ["[EMAIL]"])):
        text = row[column] or ""
        for value in SECRETS.values():
            assert value not in text, f"{what}: expected {value!r} replaced in {column}: {text!r}"
        for p in placeholders:
            assert p in text or p.replace("[", "%5B").replace("]", "%5D") in text, \
                f"{what}: expected the placeholder {p} in {column}: {text!r}"


def _assert_metadata_only(row, what):
    assert "content_dropped" in (row["capture_flags"] or []), \
        f"{what}: expected capture_flags to contain 'content_dropped', got {row['capture_flags']!r}"
    for column in CONTENT_COLUMNS_ALL:
        assert row[column] is None, f"{what}: expected {column} NULL in metadata mode, got {row[column]!r}"
    for column in ("error_message", "url_path"):
        for value in SECRETS.values():
            assert value not in (row[column] or ""), f"{what}: expected no {value!r} in {column}: {row[column]!r}"
    assert row["request_model"] and row["input_tokens"], f"{what}: expected the metadata kept: {row}"


def _assert_full(row, what):
    assert "unredacted" in (row["capture_flags"] or []), \
        f"{what}: expected capture_flags to contain 'unredacted', got {row['capture_flags']!r}"
    for column, (value, _) in PLANTED.items():
        assert parsed(row[column]) == value, f"{what}: expected {column} stored as sent in full mode, got {row[column]!r}"
    assert row["error_message"] == ERROR_MESSAGE, f"{what}: expected error_message as sent, got {row['error_message']!r}"
    assert row["url_path"] == URL_PATH, f"{what}: expected url_path as sent, got {row['url_path']!r}"


def _on_disk(server):
    """(raw bytes, decoded text) of the WAL and (raw bytes, decoded text, file count) of the Parquet files."""
    wal_raw, tables = wal_tables(server.data_dir)
    wal_text = "\n".join(table_text(t) for t in tables)
    parquet = parquet_tables(server.data_dir)
    return (wal_raw, wal_text, len(tables)), (b"".join(p[1] for p in parquet),
                                              "\n".join(table_text(p[2]) for p in parquet), len(parquet))


def _assert_secrets_nowhere_on_disk(server, marker):
    """The planted values are in no byte of the WAL (raw and decoded) while the spans are hot, nor of the
    Parquet files (decoded; Parquet pages are zstd-compressed) after a flush, nor in the server's log.
    `marker` is a text of the same spans that must be stored, to prove the decoded view holds them."""
    (wal_raw, wal_text, records), _ = _on_disk(server)
    assert records > 0, f"expected WAL records under {server.data_dir / 'wal'} while the spans are unflushed"
    assert marker in wal_text, \
        f"expected the test's spans ({marker!r}) in the decoded WAL records — the decoder in otlp_harness.wal_tables may not match ingest/src/wal.rs any more"
    for value in SECRETS.values():
        assert value.encode() not in wal_raw, f"expected {value!r} nowhere in the WAL files (raw bytes)"
        assert value not in wal_text, f"expected {value!r} nowhere in the decoded WAL records"
    server.restart()  # a clean stop flushes everything to Parquet
    _, (pq_raw, pq_text, files) = _on_disk(server)
    assert files > 0, "expected Parquet files after the flush"
    assert marker in pq_text, f"expected the test's spans ({marker!r}) in the decoded Parquet files"
    (wal_raw, wal_text, _), _ = _on_disk(server)
    for value in SECRETS.values():
        assert value not in pq_text and value.encode() not in pq_raw, f"expected {value!r} nowhere in the Parquet files"
        assert value.encode() not in wal_raw and value not in wal_text, f"expected {value!r} nowhere in the WAL after the flush"
        for log in server.log_dir.glob(f"lumen-{server.port}-*.log"):
            assert value not in log.read_text(errors="replace"), f"expected {value!r} nowhere in lumen's log {log.name}"


def test_default_capture_mode_redacts_both_endpoints_before_the_wal(lumen):
    server = lumen(args=["--flush-age", "1h"])
    r = server.ingest([_api_span("api-default")])
    assert r.status_code == 200, f"expected /v1/spans to accept the span, got {r.status_code}: {r.text}"
    accepted(post_json(server, request([_otlp_span("otlp-default"), _otlp_span("otlp-event", in_event=True)])))
    accepted(post_protobuf(server, request([_otlp_span("otlp-proto")]), gzip_body=True))
    for name in ("api-default", "otlp-default", "otlp-event", "otlp-proto"):
        _assert_redacted(_row_of(server, name), f"default mode, span {name!r}")
    changed = server.metric("lumen_capture_policy_rows_changed_total")
    assert changed == 4, f"expected lumen_capture_policy_rows_changed_total = 4 (each span carried secrets), got {changed}"
    assert server.metric("lumen_capture_policy_values_redacted_total") >= 12, "expected at least 3 placeholders per span"
    _assert_secrets_nowhere_on_disk(server, KEEP)
    # After the restart the rows (now from Parquet) are still the redacted ones.
    for name in ("api-default", "otlp-default", "otlp-event", "otlp-proto"):
        _assert_redacted(_row_of(server, name), f"default mode after a flush, span {name!r}")


def test_metadata_mode_drops_content_from_both_endpoints(lumen):
    server = lumen(args=["--capture", "metadata", "--flush-age", "1h"])
    assert server.ingest([_api_span("api-meta", service="meta-marker-svc")]).status_code == 200
    accepted(post_json(server, request([_otlp_span("otlp-meta"), _otlp_span("otlp-meta-event", in_event=True)],
                                       resource={"service.name": "meta-marker-svc"})))
    for name in ("api-meta", "otlp-meta", "otlp-meta-event"):
        _assert_metadata_only(_row_of(server, name), f"--capture metadata, span {name!r}")
    (wal_raw, wal_text, _), _ = _on_disk(server)
    assert KEEP not in wal_text and KEEP.encode() not in wal_raw, "expected no prompt text in the WAL in metadata mode"
    _assert_secrets_nowhere_on_disk(server, "meta-marker-svc")


def test_full_mode_keeps_content_as_sent(lumen):
    server = lumen(args=["--capture", "full"])
    assert server.ingest([_api_span("api-full"), _api_span("api-already-redacted", flags=["redacted"])]).status_code == 200
    accepted(post_json(server, request([_otlp_span("otlp-full"), _otlp_span("otlp-full-event", in_event=True)])))
    for name in ("api-full", "otlp-full", "otlp-full-event"):
        _assert_full(_row_of(server, name), f"--capture full, span {name!r}")
    row = _row_of(server, "api-already-redacted")
    flags = row["capture_flags"] or []
    assert "redacted" in flags and "unredacted" not in flags, \
        f"expected a span that says it is redacted to keep 'redacted' and not be flagged 'unredacted', got {flags}"


def test_capture_mode_and_rules_from_the_config_file(lumen, tmp_path):
    config = tmp_path / "lumen.toml"
    config.write_text('capture = "full"\n\n'
                      '[[capture_rules]]\nservice = "billing"\nmode = "metadata"\n\n'
                      '[[capture_rules]]\nprovider = "anthropic"\nmode = "redacted"\n')
    server = lumen(args=["--config", str(config)])
    assert server.ingest([_api_span("api-web"), _api_span("api-billing", service="billing"),
                          _api_span("api-anthropic", provider="anthropic")]).status_code == 200
    accepted(post_json(server, request([_otlp_span("otlp-billing")], resource={"service.name": "billing"})))
    accepted(post_json(server, request([_otlp_span("otlp-anthropic", provider="anthropic"),
                                        _otlp_span("otlp-web")], resource={"service.name": "web"})))
    _assert_full(_row_of(server, "api-web"), 'capture = "full" from the config file (/v1/spans, service web)')
    _assert_full(_row_of(server, "otlp-web"), 'capture = "full" from the config file (/v1/traces, service web)')
    _assert_metadata_only(_row_of(server, "api-billing"), "rule service=billing -> metadata (/v1/spans)")
    _assert_metadata_only(_row_of(server, "otlp-billing"), "rule service=billing -> metadata (/v1/traces, resource service.name)")
    _assert_redacted(_row_of(server, "api-anthropic"), "rule provider=anthropic -> redacted (/v1/spans)")
    _assert_redacted(_row_of(server, "otlp-anthropic"), "rule provider=anthropic -> redacted (/v1/traces)")


def test_secrets_in_other_attributes_are_redacted(lumen):
    """Redaction also covers attribute values that are not content columns (ingest/src/policy.rs: 'attribute
    values'), so an API key in a custom attribute is not stored either."""
    server = lumen()
    s = span("chat attr", attrs={"gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
                                 "app.note": f"called with {KEY} for {EMAIL}"})
    accepted(post_json(server, request([s])))
    row = one(server, f"span_id = '{s['spanId']}'", "the span with a secret attribute", attrs=["app.note"])
    note = row["attr:app.note"] or ""
    assert KEY not in note and EMAIL not in note and "[API_KEY]" in note, \
        f"expected the API key and e-mail in attributes['app.note'] replaced by placeholders, got {note!r}"


# --- the inference-details event on the logs signal ------------------------------------------------------

def _post_logs(server, body: bytes, content_type=PROTOBUF):
    return requests.post(server.url + "/v1/logs", data=body, headers={"Content-Type": content_type}, timeout=30)


@pytest.mark.parametrize("order", ["spans first", "logs first"])
def test_inference_details_log_events_link_to_their_span_and_count_once(lumen, order):
    """openai-v2 with `span_and_event` sends each call's content twice: on the span (/v1/traces) and in a
    `gen_ai.client.inference.operation.details` log record (/v1/logs), captured in openai_v2.logs.pb. Whichever
    arrives first, each call counts once in `spans` with the span's timing, and both rows stay in spans_all."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse

    server = lumen(args=["--capture", "full"])
    traces = (FIXTURES / "openai_v2.pb").read_bytes()
    logs = (FIXTURES / "openai_v2.logs.pb").read_bytes()
    spans = fixture_spans("openai_v2.pb")
    posts = [("traces", lambda: post_traces(server, traces, PROTOBUF)), ("logs", lambda: _post_logs(server, logs))]
    if order == "logs first":
        posts.reverse()
    for what, post in posts:
        r = post()
        assert r.status_code == 200, f"expected 200 for the captured {what}, got {r.status_code}: {r.text[:300]}"
        if what == "logs":
            answer = ExportLogsServiceResponse()
            answer.ParseFromString(r.content)
            assert answer.partial_success.rejected_log_records == 0, f"expected no rejected log records: {answer}"

    ids = ", ".join(f"'{s['span_id']}', '{s['span_id']}-details'" for s in spans)
    all_rows = rows(server, f"span_id IN ({ids})", table="spans_all", attrs=["lumen.merged_with", "otel.event_name"])
    assert len(all_rows) == 2 * len(spans), f"expected a span row and an event row per call in spans_all, got {all_rows}"
    counted = rows(server, f"span_id IN ({ids})")
    assert len(counted) == len(spans), f"expected each of the {len(spans)} calls once in spans, got {len(counted)}: {counted}"
    for s in spans:
        pair = [r for r in all_rows if r["span_id"] in (s["span_id"], s["span_id"] + "-details")]
        kept = [r for r in pair if r["duplicate_of"] is None]
        assert len(kept) == 1, f"expected one row of {s['span_id']} counted, got {pair}"
        kept = kept[0]
        other = next(r for r in pair if r is not kept)
        assert other["duplicate_of"] == kept["span_id"], f"expected the other row linked to the counted one: {pair}"
        assert "merged" in kept["capture_flags"], f"expected the counted row to be the merged one: {kept}"
        assert kept["attr:lumen.merged_with"] == other["span_id"], f"expected the link in attributes: {kept}"
        duration = (s["end"] - s["start"]) / 1e6
        assert abs((kept["duration_ms"] or 0) - duration) < 0.01, \
            f"expected the counted row to keep the span's duration {duration} ms, got {kept['duration_ms']}"
        assert kept["output_messages"] and kept["input_tokens"] == int(s["attrs"]["gen_ai.usage.input_tokens"]), \
            f"expected content and tokens on the counted row: {kept}"


def test_other_log_records_are_acknowledged_with_a_warning_not_stored(lumen):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse

    server = lumen()
    req = ExportLogsServiceRequest()
    record = req.resource_logs.add().scope_logs.add().log_records.add()
    record.time_unix_nano = time.time_ns()
    record.body.string_value = "GET /cart 200"
    r = _post_logs(server, req.SerializeToString())
    assert r.status_code == 200, r.text
    answer = ExportLogsServiceResponse()
    answer.ParseFromString(r.content)
    assert answer.partial_success.rejected_log_records == 0
    assert "not stored" in answer.partial_success.error_message, \
        f"expected a warning that plain logs are not stored, got {answer.partial_success.error_message!r}"
    assert server.scalar("SELECT count(*) FROM spans_all") == 0
    r = requests.post(server.url + "/v1/logs", data=b"\xff\xff", headers={"Content-Type": PROTOBUF}, timeout=30)
    assert r.status_code == 400, f"expected 400 for an undecodable logs body, got {r.status_code}"
