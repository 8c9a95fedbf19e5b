//! `POST /v1/traces` (and `POST /v1/logs` for GenAI inference events): OTLP/HTTP export. The port is OTLP/HTTP's default (4318), so an application
//! whose OpenTelemetry SDK exports to its default endpoint reaches Lumen with no configuration.
//!
//! Protobuf and JSON bodies, gzip or zstd. Spans that cannot be stored are rejected one by one and
//! reported as a partial success (the rest are stored); an undecodable body is a 400 with a
//! `google.rpc.Status`; every answer is in the request's encoding. Spans then take the same path as
//! `POST /v1/spans`: capture policy, WAL, hot buffer. On `/v1/logs` only the
//! `gen_ai.client.inference.operation.details` events are kept, as rows linked to their span (an
//! instrumentation may carry prompt and completion there instead of on the span); other log records are
//! acknowledged with a warning and not stored.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use lumen_decoder::{PriceTable, Span as DecodedSpan};
use lumen_ingest::otlp::{self, Encoding};
use lumen_ingest::parse::validate_objects;

use crate::http::{
    ApiError, AppState, decode_body, ingest_error, ingest_outcome, ingest_preflight, media_type,
    read_body,
};

/// Rejections listed in a partial-success message; the count covers all of them.
const LISTED_REJECTIONS: usize = 5;

fn otlp_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let (text, media) = media_type(headers);
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {text:?}: OTLP/HTTP is application/x-protobuf or application/json"
            ),
        )),
    }
}

/// gRPC status code for an HTTP error status (the `code` of `google.rpc.Status`).
fn grpc_code(status: StatusCode) -> i32 {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 13,
    }
}

fn answer(status: StatusCode, body: Vec<u8>, encoding: Encoding) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response
}

fn error_answer(e: ApiError, encoding: Encoding) -> Response {
    let body = otlp::status(grpc_code(e.status), &e.message, encoding);
    let mut response = answer(e.status, body, encoding);
    e.add_headers(&mut response);
    response
}

/// The two OTLP signals Lumen takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signal {
    Traces,
    /// Only the `gen_ai.client.inference.operation.details` events are stored (as rows linked to their
    /// span); other log records are acknowledged and counted, not stored.
    Logs,
}

pub async fn ingest_traces(State(state): State<Arc<AppState>>, request: Request) -> Response {
    handle(&state, request, Signal::Traces).await
}

pub async fn ingest_logs(State(state): State<Arc<AppState>>, request: Request) -> Response {
    handle(&state, request, Signal::Logs).await
}

async fn handle(state: &AppState, request: Request, signal: Signal) -> Response {
    // Errors before the encoding is known are answered in JSON, which any client can read.
    let encoding = otlp_encoding(request.headers()).unwrap_or(Encoding::Json);
    match ingest(state, request, signal).await {
        Ok(response) => {
            state.metrics.count_ingest("ok");
            response
        }
        Err(e) => {
            state.metrics.count_ingest(ingest_outcome(e.status));
            error_answer(e, encoding)
        }
    }
}

/// Fills `cost_usd` from the embedded price table when the span has tokens and a known model.
fn fill_cost(prices: &PriceTable, object: &mut Map<String, Value>) {
    if object.contains_key("cost_usd") {
        return;
    }
    let text = |k: &str| object.get(k).and_then(Value::as_str).map(str::to_string);
    let int = |k: &str| object.get(k).and_then(Value::as_i64);
    let span = DecodedSpan {
        provider: text("provider"),
        request_model: text("request_model"),
        response_model: text("response_model"),
        input_tokens: int("input_tokens"),
        output_tokens: int("output_tokens"),
        cache_read_tokens: int("cache_read_tokens"),
        cache_creation_tokens: int("cache_creation_tokens"),
        reasoning_tokens: int("reasoning_tokens"),
        ..Default::default()
    };
    if let Some(cost) = prices.cost(&span) {
        object.insert("cost_usd".into(), cost.into());
    }
}

async fn ingest(state: &AppState, request: Request, signal: Signal) -> Result<Response, ApiError> {
    let compression = ingest_preflight(state, request.headers())?;
    let encoding = otlp_encoding(request.headers())?;
    let limit = state.config.max_body;
    let raw = read_body(request.into_body(), limit, state.config.body_timeout).await?;
    let (batch, rejected, ignored) = tokio::task::spawn_blocking(move || {
        let body = decode_body(compression, raw, limit)?;
        let bad = |e: otlp::OtlpError| ApiError::new(StatusCode::BAD_REQUEST, e.to_string());
        let (mut converted, ignored) = match signal {
            Signal::Traces => (
                otlp::convert(otlp::decode(&body, encoding).map_err(bad)?),
                0,
            ),
            Signal::Logs => {
                let logs = otlp::convert_logs(otlp::decode_logs(&body, encoding).map_err(bad)?);
                (logs.spans, logs.ignored)
            }
        };
        let prices = PriceTable::embedded();
        for object in &mut converted.objects {
            fill_cost(&prices, object);
        }
        let (batch, invalid) = validate_objects(converted.objects);
        let mut rejected = converted.rejected;
        for (index, errors) in invalid {
            let (position, label) = converted
                .labels
                .get(index)
                .cloned()
                .unwrap_or_else(|| (index + 1, format!("span {}", index + 1)));
            let problems: Vec<String> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            rejected.push((position, format!("{label}: {}", problems.join("; "))));
        }
        // In request order, whichever stage rejected them.
        rejected.sort_by_key(|(position, _)| *position);
        let rejected: Vec<String> = rejected.into_iter().map(|(_, m)| m).collect();
        Ok::<_, ApiError>((batch, rejected, ignored))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("ingest task failed: {e}"),
        )
    })??;
    if !rejected.is_empty() {
        state.metrics.spans_rejected.inc_by(rejected.len() as u64);
    }
    if let Some(batch) = batch {
        state.ingester.ingest(batch).await.map_err(ingest_error)?;
    }
    let mut message: String = rejected
        .iter()
        .take(LISTED_REJECTIONS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if rejected.len() > LISTED_REJECTIONS {
        message.push_str(&format!(
            " (and {} more)",
            rejected.len() - LISTED_REJECTIONS
        ));
    }
    let rejected = rejected.len() as i64;
    let body = match signal {
        Signal::Traces => otlp::response(rejected, message, encoding),
        Signal::Logs => {
            if ignored > 0 {
                if !message.is_empty() {
                    message.push_str("; ");
                }
                message.push_str(&format!(
                    "{ignored} log records are not GenAI inference events ({}) and were not stored: Lumen stores LLM calls, not logs",
                    otlp::DETAILS_EVENT
                ));
            }
            otlp::logs_response(rejected, message, encoding)
        }
    };
    Ok(answer(StatusCode::OK, body, encoding))
}
