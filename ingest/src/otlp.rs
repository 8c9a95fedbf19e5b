//! OTLP/HTTP trace export (`POST /v1/traces`): request bodies in protobuf or JSON → span objects of the
//! contract, and the OTLP answers (`ExportTraceServiceResponse` with partial success, `google.rpc.Status`).
//!
//! GenAI spans are mapped from the current OpenTelemetry GenAI conventions, the deprecated names they
//! replaced, and OpenLLMetry's attributes (flattened `gen_ai.prompt.{i}.*` messages, `llm.*`); message
//! content may also come from the `gen_ai.client.inference.operation.details` span event. Resource
//! attributes give the workload (service, host, Kubernetes, process). Spans that are not GenAI are kept as
//! plain spans. Whatever is not mapped onto a column is kept in `attributes` (resource attributes under
//! `resource.`), so nothing the SDK sent is dropped silently.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::{Map, Value, json};

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("the body is not a valid OTLP protobuf message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("the body is not valid OTLP/JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The log event that carries an inference's attributes and content when the instrumentation sends it
/// on the logs signal.
pub const DETAILS_EVENT: &str = "gen_ai.client.inference.operation.details";

pub fn decode_logs(body: &[u8], encoding: Encoding) -> Result<ExportLogsServiceRequest, OtlpError> {
    decode_message(body, encoding)
}

fn decode_message<T: Message + Default + serde::de::DeserializeOwned>(
    body: &[u8],
    encoding: Encoding,
) -> Result<T, OtlpError> {
    Ok(match encoding {
        Encoding::Protobuf => T::decode(body)?,
        Encoding::Json => serde_json::from_slice(body)?,
    })
}

fn encode_answer<T: Message + serde::Serialize>(
    answer: &T,
    full_success: bool,
    encoding: Encoding,
) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => answer.encode_to_vec(),
        // The canonical JSON of a full success is the empty message.
        Encoding::Json if full_success => b"{}".to_vec(),
        Encoding::Json => serde_json::to_vec(answer).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// The logs answer; `rejected` > 0 makes it a partial success, and `message` may carry a warning.
pub fn logs_response(rejected: i64, message: String, encoding: Encoding) -> Vec<u8> {
    let answer = ExportLogsServiceResponse {
        partial_success: (rejected > 0 || !message.is_empty()).then_some(
            ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message,
            },
        ),
    };
    let full_success = answer.partial_success.is_none();
    encode_answer(&answer, full_success, encoding)
}

/// Log records of one request: the GenAI inference-details events as contract objects (rows linked to
/// their span, see `correlate`), the records rejected (position and reason), and how many records were
/// other logs, which Lumen does not store.
#[derive(Debug, Default)]
pub struct ConvertedLogs {
    pub spans: Converted,
    pub ignored: usize,
}

/// Converts the `gen_ai.client.inference.operation.details` events of `request` into rows: the event's
/// attributes are the span's attribute set (model, tokens, content), its trace context names the span.
/// The row's span id is the span's with `-details` appended and it is flagged `event`, so ingest links
/// it to the span (whichever arrives first) and the call counts once.
pub fn convert_logs(request: ExportLogsServiceRequest) -> ConvertedLogs {
    let mut out = ConvertedLogs::default();
    let mut index = 0usize;
    for resource_logs in request.resource_logs {
        let resource = attributes_of(
            resource_logs
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.unwrap_or_default();
            for record in scope_logs.log_records {
                index += 1;
                let named = record.event_name == DETAILS_EVENT
                    || record.attributes.iter().any(|kv| {
                        kv.key == "event.name"
                            && matches!(
                                kv.value.as_ref().and_then(|v| v.value.as_ref()),
                                Some(any_value::Value::StringValue(n)) if n == DETAILS_EVENT
                            )
                    });
                if !named {
                    out.ignored += 1;
                    continue;
                }
                let label = format!(
                    "log record {index} ({DETAILS_EVENT}, spanId {})",
                    hex::encode(&record.span_id)
                );
                let time = if record.time_unix_nano != 0 {
                    record.time_unix_nano
                } else {
                    record.observed_time_unix_nano
                };
                let span = OtlpSpan {
                    trace_id: record.trace_id,
                    span_id: record.span_id,
                    kind: SpanKind::Client as i32,
                    start_time_unix_nano: time,
                    attributes: record
                        .attributes
                        .into_iter()
                        .filter(|kv| kv.key != "event.name")
                        .collect(),
                    ..Default::default()
                };
                match convert_span(span, &resource, &scope.name, &scope.version) {
                    Ok(mut object) => {
                        if let Some(Value::String(id)) = object.get("span_id").cloned() {
                            object.insert(
                                "span_id".into(),
                                crate::correlate::details_span_id(&id).into(),
                            );
                        }
                        // Stamped when the call ended: its duration is the span's, unknown here.
                        object.remove("end_time");
                        object.insert("capture_flags".into(), json!([crate::policy::flags::EVENT]));
                        if let Some(Value::Object(attrs)) = object.get_mut("attributes") {
                            attrs.remove("otel.span_name");
                            attrs.remove("otel.span_kind");
                            attrs.insert("otel.event_name".into(), DETAILS_EVENT.into());
                        }
                        out.spans.objects.push(object);
                        out.spans.labels.push((index, label));
                    }
                    Err(reason) => {
                        let reason = reason
                            .replace("traceId", "the record's traceId")
                            .replace("spanId", "the record's spanId")
                            .replace("startTimeUnixNano", "timeUnixNano");
                        out.spans
                            .rejected
                            .push((index, format!("{label}: {reason}")));
                    }
                }
            }
        }
    }
    out
}

pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, OtlpError> {
    decode_message(body, encoding)
}

/// The success answer; `rejected` > 0 makes it a partial success.
pub fn response(rejected: i64, message: String, encoding: Encoding) -> Vec<u8> {
    let answer = ExportTraceServiceResponse {
        partial_success: (rejected > 0 || !message.is_empty()).then_some(
            ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message,
            },
        ),
    };
    let full_success = answer.partial_success.is_none();
    encode_answer(&answer, full_success, encoding)
}

/// `google.rpc.Status`, the body of OTLP/HTTP error answers.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An error answer's body: `code` is a gRPC status code (3 = INVALID_ARGUMENT, 8 = RESOURCE_EXHAUSTED,
/// 14 = UNAVAILABLE, 16 = UNAUTHENTICATED).
pub fn status(code: i32, message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => RpcStatus {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Encoding::Json => json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    }
}

/// The spans of one request as contract objects, each with a label for error messages; and the spans
/// rejected while converting (with the reason).
#[derive(Debug, Default)]
pub struct Converted {
    pub objects: Vec<Map<String, Value>>,
    /// For each object: its position in the request (1-based) and a label naming it.
    pub labels: Vec<(usize, String)>,
    /// Spans rejected while converting: position in the request and the reason.
    pub rejected: Vec<(usize, String)>,
}

/// Converts every span of `request`.
pub fn convert(request: ExportTraceServiceRequest) -> Converted {
    let mut out = Converted::default();
    let mut index = 0usize;
    for resource_spans in request.resource_spans {
        let resource = attributes_of(
            resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.unwrap_or_default();
            for span in scope_spans.spans {
                index += 1;
                let label = format!(
                    "span {index} ({:?}, spanId {})",
                    span.name,
                    hex::encode(&span.span_id)
                );
                match convert_span(span, &resource, &scope.name, &scope.version) {
                    Ok(object) => {
                        out.objects.push(object);
                        out.labels.push((index, label));
                    }
                    Err(reason) => out.rejected.push((index, format!("{label}: {reason}"))),
                }
            }
        }
    }
    out
}

/// OTLP `AnyValue` → JSON (ints stay integers, bytes become hex).
fn any_to_json(value: Option<AnyValue>) -> Value {
    let Some(value) = value.and_then(|v| v.value) else {
        return Value::Null;
    };
    match value {
        any_value::Value::StringValue(s) => Value::String(s),
        any_value::Value::BoolValue(b) => Value::Bool(b),
        any_value::Value::IntValue(i) => Value::from(i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(d)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        any_value::Value::ArrayValue(a) => {
            Value::Array(a.values.into_iter().map(|v| any_to_json(Some(v))).collect())
        }
        any_value::Value::KvlistValue(kv) => Value::Object(
            kv.values
                .into_iter()
                .map(|kv| (kv.key, any_to_json(kv.value)))
                .collect(),
        ),
        any_value::Value::BytesValue(b) => Value::String(hex::encode(b)),
        // Newer protocol versions may add value kinds; keep their debug form rather than drop them.
        #[allow(unreachable_patterns)]
        other => Value::String(format!("{other:?}")),
    }
}

type Attributes = BTreeMap<String, Value>;

fn attributes_of(list: Vec<KeyValue>) -> Attributes {
    list.into_iter()
        .map(|kv| (kv.key, any_to_json(kv.value)))
        .filter(|(_, v)| !v.is_null())
        .collect()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// JSON text for a content attribute: a JSON string is taken as the text it holds; structured values
/// are serialised.
fn json_text_of(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Takes the first of `keys` present (current name first, then the deprecated ones).
fn take(attrs: &mut Attributes, keys: &[&str]) -> Option<Value> {
    let mut found = None;
    for key in keys {
        if let Some(v) = attrs.remove(*key)
            && found.is_none()
        {
            found = Some(v);
        }
    }
    found
}

/// `gen_ai.provider.name` values from the deprecated `gen_ai.system` and OpenLLMetry's spellings.
pub fn normalise_provider(raw: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    match lower.as_str() {
        "az.ai.openai" | "azure" | "azure_openai" | "azure.openai" => "azure.ai.openai",
        "az.ai.inference" => "azure.ai.inference",
        "vertex_ai" | "vertexai" => "gcp.vertex_ai",
        "gemini" | "google_genai" => "gcp.gemini",
        "google" => "gcp.gen_ai",
        "xai" => "x_ai",
        "aws" | "bedrock" | "aws_bedrock" | "aws.bedrock" => "aws.bedrock",
        "mistralai" | "mistral" => "mistral_ai",
        "watsonx" => "ibm.watsonx.ai",
        _ => return lower,
    }
    .to_string()
}

fn normalise_operation(raw: &str) -> String {
    match raw.trim().to_ascii_lowercase().as_str() {
        "completion" => "text_completion".into(),
        "embedding" => "embeddings".into(),
        other => other.to_string(),
    }
}

fn hex_id(bytes: &[u8], len: usize, what: &str) -> Result<Option<String>, String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    if bytes.len() != len {
        return Err(format!("{what} must be {len} bytes, found {}", bytes.len()));
    }
    Ok(Some(hex::encode(bytes)))
}

/// The OpenLLMetry flattened messages `{prefix}.{i}.{field}` (and `.tool_calls.{j}.{field}`) → OTel
/// GenAI message objects, in index order; `None` when there are none.
fn indexed_messages(attrs: &mut Attributes, prefix: &str, output: bool) -> Option<Vec<Value>> {
    let start = format!("{prefix}.");
    let keys: Vec<String> = attrs
        .range(start.clone()..)
        .take_while(|(k, _)| k.starts_with(&start))
        .map(|(k, _)| k.clone())
        .collect();
    let mut messages: BTreeMap<usize, BTreeMap<String, Value>> = BTreeMap::new();
    for key in keys {
        let rest = &key[start.len()..];
        let Some((i, field)) = rest.split_once('.') else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else {
            continue;
        };
        if let Some(v) = attrs.remove(&key) {
            messages.entry(i).or_default().insert(field.to_string(), v);
        }
    }
    if messages.is_empty() {
        return None;
    }
    let built = messages
        .into_values()
        .map(|mut fields| {
            let role = fields
                .remove("role")
                .and_then(|r| text_of(&r))
                .unwrap_or_else(|| if output { "assistant" } else { "user" }.into());
            let mut parts = Vec::new();
            let tool_call_id = fields.remove("tool_call_id").and_then(|v| text_of(&v));
            if let Some(content) = fields.remove("content").and_then(|c| text_of(&c))
                && !content.is_empty()
            {
                if role == "tool" {
                    parts.push(json!({"type": "tool_call_response", "id": tool_call_id, "response": content}));
                } else {
                    parts.push(json!({"type": "text", "content": content}));
                }
            }
            let mut calls: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
            for (field, v) in &fields {
                if let Some(rest) = field.strip_prefix("tool_calls.")
                    && let Some((j, name)) = rest.split_once('.')
                    && let Ok(j) = j.parse::<usize>()
                {
                    calls.entry(j).or_default().insert(name.to_string(), v.clone());
                }
            }
            for (_, call) in calls {
                let arguments = call
                    .get("arguments")
                    .and_then(text_of)
                    .map(|a| serde_json::from_str::<Value>(&a).unwrap_or(Value::String(a)));
                parts.push(json!({
                    "type": "tool_call",
                    "id": call.get("id").and_then(text_of),
                    "name": call.get("name").and_then(text_of),
                    "arguments": arguments,
                }));
            }
            let mut message = json!({"role": role, "parts": parts});
            if output
                && let Some(reason) = fields.remove("finish_reason").and_then(|r| text_of(&r))
            {
                message["finish_reason"] = Value::String(reason);
            }
            message
        })
        .collect();
    Some(built)
}

/// OpenLLMetry's `llm.request.functions.{i}.{name,description,parameters}` → tool definitions.
fn indexed_functions(attrs: &mut Attributes) -> Option<Vec<Value>> {
    let start = "llm.request.functions.";
    let keys: Vec<String> = attrs
        .range(start.to_string()..)
        .take_while(|(k, _)| k.starts_with(start))
        .map(|(k, _)| k.clone())
        .collect();
    let mut tools: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
    for key in keys {
        let Some((i, field)) = key[start.len()..].split_once('.') else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else {
            continue;
        };
        if let Some(v) = attrs.remove(&key) {
            let v = match (field, v) {
                ("parameters", Value::String(s)) => {
                    serde_json::from_str(&s).unwrap_or(Value::String(s))
                }
                (_, v) => v,
            };
            tools.entry(i).or_default().insert(field.to_string(), v);
        }
    }
    if tools.is_empty() {
        return None;
    }
    Some(
        tools
            .into_values()
            .map(|mut t| {
                t.insert("type".into(), Value::String("function".into()));
                Value::Object(t)
            })
            .collect(),
    )
}

/// A path from `url.path`, `http.target` or `url.full` (query dropped: it may hold credentials).
fn path_of(v: &Value) -> Option<String> {
    let raw = text_of(v)?;
    let path = match raw.find("://") {
        Some(i) => {
            let after = &raw[i + 3..];
            after.find('/').map(|p| &after[p..]).unwrap_or("/")
        }
        None => raw.as_str(),
    };
    Some(path.split(['?', '#']).next().unwrap_or(path).to_string())
}

fn convert_span(
    span: OtlpSpan,
    resource: &Attributes,
    scope_name: &str,
    scope_version: &str,
) -> Result<Map<String, Value>, String> {
    let mut o = Map::new();
    let trace_id = hex_id(&span.trace_id, 16, "traceId")?;
    let span_id = hex_id(&span.span_id, 8, "spanId")?;
    if trace_id.is_none() {
        return Err("traceId is missing or all zero".into());
    }
    if span_id.is_none() {
        return Err("spanId is missing or all zero".into());
    }
    o.insert("trace_id".into(), trace_id.into());
    o.insert("span_id".into(), span_id.into());
    if let Some(parent) = hex_id(&span.parent_span_id, 8, "parentSpanId")? {
        o.insert("parent_span_id".into(), parent.into());
    }
    if span.start_time_unix_nano == 0 {
        return Err("startTimeUnixNano is missing".into());
    }
    o.insert("start_time".into(), Value::from(span.start_time_unix_nano));
    if span.end_time_unix_nano != 0 {
        o.insert("end_time".into(), Value::from(span.end_time_unix_nano));
    }
    o.insert("source".into(), "otlp".into());
    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
    let (contract_kind, kind_name) = match kind {
        SpanKind::Server => ("server", "server"),
        SpanKind::Consumer => ("server", "consumer"),
        SpanKind::Client => ("client", "client"),
        SpanKind::Producer => ("client", "producer"),
        SpanKind::Internal => ("client", "internal"),
        SpanKind::Unspecified => ("client", "unspecified"),
    };
    o.insert("span_kind".into(), contract_kind.into());

    let mut attrs = attributes_of(span.attributes);
    let mut extra: Map<String, Value> = Map::new();
    extra.insert("otel.span_name".into(), span.name.clone().into());
    extra.insert("otel.span_kind".into(), kind_name.into());
    if !scope_name.is_empty() {
        extra.insert("otel.scope.name".into(), scope_name.into());
    }
    if !scope_version.is_empty() {
        extra.insert("otel.scope.version".into(), scope_version.into());
    }

    // Content and exceptions carried by events.
    let mut exception: Option<(Option<String>, Option<String>)> = None;
    for event in span.events {
        let mut event_attrs = attributes_of(event.attributes);
        match event.name.as_str() {
            "gen_ai.client.inference.operation.details" => {
                for (k, v) in event_attrs {
                    attrs.entry(k).or_insert(v);
                }
            }
            "gen_ai.content.prompt" => {
                if let Some(v) = event_attrs.remove("gen_ai.prompt") {
                    attrs.entry("gen_ai.prompt".into()).or_insert(v);
                }
            }
            "gen_ai.content.completion" => {
                if let Some(v) = event_attrs.remove("gen_ai.completion") {
                    attrs.entry("gen_ai.completion".into()).or_insert(v);
                }
            }
            "exception" => {
                let ty = event_attrs
                    .remove("exception.type")
                    .and_then(|v| text_of(&v));
                let msg = event_attrs
                    .remove("exception.message")
                    .and_then(|v| text_of(&v));
                exception.get_or_insert((ty, msg));
            }
            _ => {}
        }
    }

    // Workload identity from the resource.
    let mut resource = resource.clone();
    for (key, column) in [
        ("service.name", "service_name"),
        ("host.name", "host"),
        ("k8s.namespace.name", "k8s_namespace"),
        ("k8s.pod.name", "k8s_pod"),
        ("container.id", "container_id"),
        ("process.executable.name", "process_name"),
        ("process.executable.path", "exe"),
    ] {
        if let Some(v) = resource.remove(key).and_then(|v| text_of(&v)) {
            o.insert(column.into(), v.into());
        }
    }
    if let Some(pid) = resource.remove("process.pid").and_then(|v| int_of(&v))
        && let Ok(pid) = u32::try_from(pid)
    {
        o.insert("pid".into(), pid.into());
    }
    for (k, v) in resource {
        extra.insert(format!("resource.{k}"), v);
    }

    // GenAI: current names first, then deprecated and OpenLLMetry ones.
    if let Some(p) =
        take(&mut attrs, &["gen_ai.provider.name", "gen_ai.system"]).and_then(|p| text_of(&p))
    {
        o.insert("provider".into(), normalise_provider(&p).into());
    }
    if let Some(op) =
        take(&mut attrs, &["gen_ai.operation.name", "llm.request.type"]).and_then(|v| text_of(&v))
    {
        o.insert("operation".into(), normalise_operation(&op).into());
    }
    let strings = [
        (&["gen_ai.request.model"][..], "request_model"),
        (&["gen_ai.response.model"][..], "response_model"),
        (&["gen_ai.response.id"][..], "response_id"),
        (&["server.address", "net.peer.name"][..], "server_address"),
        (&["client.address"][..], "client_address"),
        (&["http.request.method", "http.method"][..], "http_method"),
        (&["network.protocol.version"][..], "http_version"),
    ];
    for (keys, column) in strings {
        if let Some(v) = take(&mut attrs, keys).and_then(|v| text_of(&v)) {
            o.insert(column.into(), v.into());
        }
    }
    if let Some(path) = take(
        &mut attrs,
        &["url.path", "http.target", "url.full", "http.url"],
    )
    .and_then(|v| path_of(&v))
    {
        o.insert("url_path".into(), path.into());
    }
    let integers = [
        (
            &["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"][..],
            "input_tokens",
        ),
        (
            &[
                "gen_ai.usage.output_tokens",
                "gen_ai.usage.completion_tokens",
            ][..],
            "output_tokens",
        ),
        (
            &[
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.usage.cache_read_input_tokens",
            ][..],
            "cache_read_tokens",
        ),
        (
            &[
                "gen_ai.usage.cache_creation.input_tokens",
                "gen_ai.usage.cache_creation_input_tokens",
            ][..],
            "cache_creation_tokens",
        ),
        (
            &[
                "gen_ai.usage.reasoning.output_tokens",
                "gen_ai.usage.reasoning_tokens",
            ][..],
            "reasoning_tokens",
        ),
        (&["gen_ai.request.max_tokens"][..], "max_tokens"),
        (&["server.port", "net.peer.port"][..], "server_port"),
        (
            &["http.response.status_code", "http.status_code"][..],
            "http_status",
        ),
        (&["http.request.body.size"][..], "request_bytes"),
        (&["http.response.body.size"][..], "response_bytes"),
    ];
    for (keys, column) in integers {
        if let Some(v) = take(&mut attrs, keys).and_then(|v| int_of(&v)) {
            o.insert(column.into(), v.into());
        }
    }
    for (keys, column) in [
        (&["gen_ai.request.temperature"][..], "temperature"),
        (&["gen_ai.request.top_p"][..], "top_p"),
    ] {
        if let Some(v) = take(&mut attrs, keys).and_then(|v| float_of(&v)) {
            o.insert(column.into(), v.into());
        }
    }
    if let Some(seconds) =
        take(&mut attrs, &["gen_ai.response.time_to_first_chunk"]).and_then(|v| float_of(&v))
        && seconds >= 0.0
    {
        o.insert("ttft_ms".into(), (seconds * 1000.0).into());
    }
    if let Some(stream) = take(
        &mut attrs,
        &[
            "gen_ai.request.stream",
            "gen_ai.is_streaming",
            "llm.is_streaming",
        ],
    )
    .and_then(|v| bool_of(&v))
    {
        o.insert("streaming".into(), stream.into());
    }
    // Drop a derivable total rather than keep it as an attribute.
    attrs.remove("llm.usage.total_tokens");
    attrs.remove("gen_ai.usage.total_tokens");

    // Messages: OTel attributes (or the details event), else OpenLLMetry's flattened ones, else the
    // deprecated single-attribute prompt/completion.
    let mut finish_reasons: Vec<String> = Vec::new();
    let input = take(&mut attrs, &["gen_ai.input.messages"]).map(json_text_of);
    let flat_input = indexed_messages(&mut attrs, "gen_ai.prompt", false);
    let flat_output = indexed_messages(&mut attrs, "gen_ai.completion", true);
    let legacy_prompt = take(&mut attrs, &["gen_ai.prompt"]).map(json_text_of);
    let legacy_completion = take(&mut attrs, &["gen_ai.completion"]).map(json_text_of);
    let input = input
        .or_else(|| flat_input.map(|m| Value::Array(m).to_string()))
        .or(legacy_prompt);
    if let Some(input) = input {
        o.insert("input_messages".into(), input.into());
    }
    let output = take(&mut attrs, &["gen_ai.output.messages"]).map(json_text_of);
    if let Some(flat) = &flat_output {
        for m in flat {
            if let Some(r) = m.get("finish_reason").and_then(text_of) {
                finish_reasons.push(r);
            }
        }
    }
    let output = output
        .or_else(|| flat_output.map(|m| Value::Array(m).to_string()))
        .or(legacy_completion);
    if let Some(output) = output {
        o.insert("output_messages".into(), output.into());
    }
    if let Some(v) = take(&mut attrs, &["gen_ai.system_instructions"]) {
        o.insert("system_instructions".into(), json_text_of(v).into());
    }
    let tools = take(&mut attrs, &["gen_ai.tool.definitions"])
        .map(json_text_of)
        .or_else(|| indexed_functions(&mut attrs).map(|t| Value::Array(t).to_string()));
    if let Some(tools) = tools {
        o.insert("tool_definitions".into(), tools.into());
    }
    match take(
        &mut attrs,
        &[
            "gen_ai.response.finish_reasons",
            "llm.response.finish_reason",
            "llm.response.stop_reason",
        ],
    ) {
        Some(Value::Array(items)) => {
            finish_reasons = items.iter().filter_map(text_of).collect();
        }
        Some(Value::String(s)) => {
            // A JSON list in a string, or one reason.
            finish_reasons = serde_json::from_str::<Vec<String>>(&s).unwrap_or_else(|_| vec![s]);
        }
        _ => {}
    }
    if !finish_reasons.is_empty() {
        o.insert("finish_reasons".into(), finish_reasons.into());
    }

    // Errors: the span status, `error.type`, and the exception event.
    let status = span.status.unwrap_or_default();
    let failed = StatusCode::try_from(status.code) == Ok(StatusCode::Error);
    let error_type = take(&mut attrs, &["error.type"]).and_then(|v| text_of(&v));
    let (exc_type, exc_message) = exception.unwrap_or((None, None));
    if failed || error_type.is_some() {
        let ty = error_type
            .or(exc_type)
            .unwrap_or_else(|| "_OTHER".to_string());
        o.insert("error_type".into(), ty.into());
        let message = Some(status.message.clone())
            .filter(|m| !m.is_empty())
            .or(exc_message);
        if let Some(m) = message {
            o.insert("error_message".into(), m.into());
        }
    }
    if status.code != 0 {
        let name = if failed { "error" } else { "ok" };
        extra.insert("otel.status_code".into(), name.into());
    }

    // Everything left, as attributes (a contract column name sent as an attribute stays an attribute).
    for (k, v) in attrs {
        extra.entry(k).or_insert(v);
    }
    let attributes: Map<String, Value> = extra
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(s),
                Value::Array(_) | Value::Object(_) => Value::String(v.to_string()),
                other => other,
            };
            (k, v)
        })
        .collect();
    o.insert("attributes".into(), Value::Object(attributes));
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::Event;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }
    fn s(key: &str, v: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(v.into()))
    }
    fn i(key: &str, v: i64) -> KeyValue {
        kv(key, any_value::Value::IntValue(v))
    }

    fn request(spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        s("service.name", "chat-api"),
                        s("k8s.namespace.name", "prod"),
                        s("k8s.pod.name", "chat-api-7d9"),
                        i("process.pid", 4242),
                        s("telemetry.sdk.language", "python"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "opentelemetry.instrumentation.openai_v2".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn span(attributes: Vec<KeyValue>) -> OtlpSpan {
        OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "chat gpt-4o-mini".into(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: 1_780_000_000_000_000_000,
            end_time_unix_nano: 1_780_000_001_500_000_000,
            attributes,
            ..Default::default()
        }
    }

    fn one(attributes: Vec<KeyValue>) -> Map<String, Value> {
        let mut c = convert(request(vec![span(attributes)]));
        assert!(c.rejected.is_empty(), "{:?}", c.rejected);
        c.objects.remove(0)
    }

    #[test]
    fn current_genai_names_and_resource_map_onto_columns() {
        let o = one(vec![
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.request.model", "gpt-4o-mini"),
            s("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
            i("gen_ai.usage.input_tokens", 12),
            i("gen_ai.usage.output_tokens", 7),
            i("gen_ai.usage.cache_read.input_tokens", 3),
            kv("gen_ai.request.stream", any_value::Value::BoolValue(true)),
            kv(
                "gen_ai.response.time_to_first_chunk",
                any_value::Value::DoubleValue(0.25),
            ),
            s(
                "gen_ai.input.messages",
                r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#,
            ),
            s("server.address", "api.openai.com"),
            i("server.port", 443),
            s("custom.tag", "blue"),
        ]);
        assert_eq!(o["trace_id"], "01010101010101010101010101010101");
        assert_eq!(o["provider"], "openai");
        assert_eq!(o["response_model"], "gpt-4o-mini-2024-07-18");
        assert_eq!(
            (o["input_tokens"].as_i64(), o["output_tokens"].as_i64()),
            (Some(12), Some(7))
        );
        assert_eq!(o["cache_read_tokens"], 3);
        assert_eq!(o["streaming"], true);
        assert_eq!(o["ttft_ms"], 250.0);
        assert_eq!(o["server_port"], 443);
        assert_eq!(o["service_name"], "chat-api");
        assert_eq!(o["k8s_namespace"], "prod");
        assert_eq!(o["pid"], 4242);
        assert!(o["input_messages"].as_str().unwrap().contains("\"hi\""));
        let attrs = &o["attributes"];
        assert_eq!(attrs["custom.tag"], "blue");
        assert_eq!(attrs["otel.span_name"], "chat gpt-4o-mini");
        assert_eq!(attrs["resource.telemetry.sdk.language"], "python");
        assert!(
            attrs.get("gen_ai.request.model").is_none(),
            "mapped keys are not repeated"
        );
    }

    #[test]
    fn deprecated_and_openllmetry_attributes_are_understood() {
        let o = one(vec![
            s("gen_ai.system", "Anthropic"),
            s("llm.request.type", "completion"),
            s("gen_ai.request.model", "claude-3-5-haiku"),
            i("gen_ai.usage.prompt_tokens", 20),
            i("gen_ai.usage.completion_tokens", 5),
            i("llm.usage.total_tokens", 25),
            kv("llm.is_streaming", any_value::Value::BoolValue(false)),
            s("gen_ai.prompt.0.role", "system"),
            s("gen_ai.prompt.0.content", "be brief"),
            s("gen_ai.prompt.1.role", "user"),
            s("gen_ai.prompt.1.content", "weather?"),
            s("gen_ai.completion.0.role", "assistant"),
            s("gen_ai.completion.0.finish_reason", "tool_calls"),
            s("gen_ai.completion.0.tool_calls.0.name", "get_weather"),
            s(
                "gen_ai.completion.0.tool_calls.0.arguments",
                r#"{"city":"Paris"}"#,
            ),
            s("llm.request.functions.0.name", "get_weather"),
            s("llm.request.functions.0.parameters", r#"{"type":"object"}"#),
        ]);
        assert_eq!(o["provider"], "anthropic");
        assert_eq!(o["operation"], "text_completion");
        assert_eq!(
            (o["input_tokens"].as_i64(), o["output_tokens"].as_i64()),
            (Some(20), Some(5))
        );
        assert_eq!(o["streaming"], false);
        let input: Value = serde_json::from_str(o["input_messages"].as_str().unwrap()).unwrap();
        assert_eq!(input[1]["parts"][0]["content"], "weather?");
        let output: Value = serde_json::from_str(o["output_messages"].as_str().unwrap()).unwrap();
        assert_eq!(output[0]["parts"][0]["arguments"]["city"], "Paris");
        assert_eq!(o["finish_reasons"], json!(["tool_calls"]));
        let tools: Value = serde_json::from_str(o["tool_definitions"].as_str().unwrap()).unwrap();
        assert_eq!(tools[0]["name"], "get_weather");
        assert!(o["attributes"].get("llm.usage.total_tokens").is_none());
        assert!(o["attributes"].get("gen_ai.prompt.1.content").is_none());
    }

    #[test]
    fn content_from_the_details_event_and_errors_from_status_and_exception() {
        let mut sp = span(vec![s("gen_ai.request.model", "gpt-4o")]);
        sp.events = vec![
            Event {
                name: "gen_ai.client.inference.operation.details".into(),
                attributes: vec![s(
                    "gen_ai.output.messages",
                    r#"[{"role":"assistant","parts":[]}]"#,
                )],
                ..Default::default()
            },
            Event {
                name: "exception".into(),
                attributes: vec![
                    s("exception.type", "openai.RateLimitError"),
                    s("exception.message", "slow down"),
                ],
                ..Default::default()
            },
        ];
        sp.status = Some(Status {
            code: StatusCode::Error as i32,
            message: String::new(),
        });
        let o = convert(request(vec![sp])).objects.remove(0);
        assert!(o["output_messages"].as_str().unwrap().contains("assistant"));
        assert_eq!(o["error_type"], "openai.RateLimitError");
        assert_eq!(o["error_message"], "slow down");
    }

    #[test]
    fn bad_spans_are_rejected_one_by_one_and_plain_spans_kept() {
        let mut no_start = span(vec![]);
        no_start.start_time_unix_nano = 0;
        let mut short_id = span(vec![]);
        short_id.trace_id = vec![1; 3];
        let mut plain = span(vec![
            s("http.request.method", "GET"),
            s("url.full", "https://x.test/a/b?token=1"),
        ]);
        plain.kind = SpanKind::Server as i32;
        let c = convert(request(vec![no_start, short_id, plain]));
        assert_eq!(c.rejected.len(), 2, "{:?}", c.rejected);
        assert!(
            c.rejected[0].1.contains("span 1") && c.rejected[0].1.contains("startTimeUnixNano")
        );
        assert!(c.rejected[1].1.contains("traceId must be 16 bytes"));
        let o = &c.objects[0];
        assert_eq!(o["span_kind"], "server");
        assert_eq!(o["url_path"], "/a/b");
        assert!(o.get("provider").is_none());
    }

    #[test]
    fn inference_details_log_events_become_linkable_rows_and_other_logs_are_ignored() {
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        let details = LogRecord {
            time_unix_nano: 1_780_000_001_500_000_000,
            event_name: DETAILS_EVENT.into(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            attributes: vec![
                s("gen_ai.request.model", "gpt-4o-mini"),
                i("gen_ai.usage.input_tokens", 12),
                s("gen_ai.input.messages", r#"[{"role":"user","parts":[]}]"#),
            ],
            ..Default::default()
        };
        let other = LogRecord {
            time_unix_nano: 1,
            ..Default::default()
        };
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![details, other],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let back = decode_logs(&request.encode_to_vec(), Encoding::Protobuf).unwrap();
        let c = convert_logs(back);
        assert_eq!(c.ignored, 1);
        let o = &c.spans.objects[0];
        assert_eq!(o["span_id"], "0202020202020202-details");
        assert_eq!(o["capture_flags"], json!(["event"]));
        assert_eq!(o["input_tokens"], 12);
        assert!(o.get("end_time").is_none());
        assert_eq!(o["attributes"]["otel.event_name"], DETAILS_EVENT);
    }

    #[test]
    fn both_encodings_decode_and_answers_encode() {
        let req = request(vec![span(vec![s("gen_ai.request.model", "m")])]);
        let pb = req.encode_to_vec();
        assert_eq!(decode(&pb, Encoding::Protobuf).unwrap(), req);
        let js = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":3,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"9"}}]}]}]}]}"#;
        let decoded = decode(js.as_bytes(), Encoding::Json).unwrap();
        let o = convert(decoded).objects.remove(0);
        assert_eq!(o["span_id"], "eee19b7ec3c1b174");
        assert_eq!(o["input_tokens"], 9);
        assert!(decode(b"{not json", Encoding::Json).is_err());
        assert!(decode(&[0xff, 0xff, 0xff], Encoding::Protobuf).is_err());
        let answer = response(2, "span 1: bad".into(), Encoding::Protobuf);
        let back = ExportTraceServiceResponse::decode(answer.as_slice()).unwrap();
        assert_eq!(back.partial_success.unwrap().rejected_spans, 2);
        let json_answer: Value =
            serde_json::from_slice(&response(0, String::new(), Encoding::Json)).unwrap();
        assert_eq!(json_answer, json!({}));
        let st = status(3, "bad body", Encoding::Json);
        assert!(String::from_utf8(st).unwrap().contains("bad body"));
    }
}
