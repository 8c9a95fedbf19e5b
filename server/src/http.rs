//! The HTTP API: `POST /v1/spans`, `POST|GET /v1/sql`, `/healthz`, `/metrics` (OTLP's `POST /v1/traces`
//! is in `otlp.rs`).
//! Handlers translate between HTTP and the stages; every rejection names what was wrong.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use datafusion::error::DataFusionError;
use lumen_ingest::{BodyFormat, IngestError, Ingester, ParseError, parse_spans};
use lumen_query::{QueryEngine, QueryError};

use crate::config::ServeConfig;
use crate::format::{ResultEncoder, ResultFormat};
use crate::metrics::Metrics;
use crate::{alerts, dashboards, explore};

pub struct AppState {
    pub config: ServeConfig,
    pub ingester: Ingester,
    pub engine: QueryEngine,
    pub metrics: Metrics,
    pub dashboards: crate::dashboards::Dashboards,
    pub alerts: Arc<crate::alerts::Alerts>,
}

/// Every route: (method, path). The OpenAPI description is checked against this list in tests.
#[cfg_attr(not(test), allow(dead_code))]
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/spans"),
    ("get", "/v1/spans"),
    ("get", "/v1/spans/{span_id}"),
    ("post", "/v1/traces"),
    ("post", "/v1/logs"),
    ("get", "/v1/traces/{trace_id}"),
    ("post", "/v1/sql"),
    ("get", "/v1/sql"),
    ("get", "/v1/models"),
    ("get", "/v1/services"),
    ("get", "/v1/explore/latency"),
    ("get", "/v1/explore/tokens"),
    ("get", "/v1/explore/errors"),
    ("get", "/v1/explore/sla"),
    ("get", "/v1/explore/timeseries"),
    ("get", "/v1/explore/histogram"),
    ("get", "/v1/explore/dimensions"),
    ("get", "/v1/dashboards"),
    ("post", "/v1/dashboards"),
    ("get", "/v1/dashboards/{id}"),
    ("put", "/v1/dashboards/{id}"),
    ("delete", "/v1/dashboards/{id}"),
    ("get", "/v1/alerts"),
    ("post", "/v1/alerts"),
    ("get", "/v1/alerts/templates"),
    ("get", "/v1/alerts/{id}"),
    ("put", "/v1/alerts/{id}"),
    ("delete", "/v1/alerts/{id}"),
    ("get", "/v1/alerts/{id}/history"),
    ("post", "/v1/alerts/{id}/evaluate"),
    ("get", "/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/metrics"),
];

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/spans", post(ingest_spans).get(explore::list_spans))
        .route("/v1/spans/{span_id}", get(explore::span))
        .route("/v1/traces", post(crate::otlp::ingest_traces))
        .route("/v1/logs", post(crate::otlp::ingest_logs))
        .route("/v1/traces/{trace_id}", get(explore::trace))
        .route("/v1/sql", post(sql_post).get(sql_get))
        .route("/v1/models", get(explore::models))
        .route("/v1/services", get(explore::services))
        .route("/v1/explore/latency", get(explore::latency))
        .route("/v1/explore/tokens", get(explore::tokens))
        .route("/v1/explore/errors", get(explore::errors))
        .route("/v1/explore/sla", get(explore::sla))
        .route("/v1/explore/timeseries", get(explore::timeseries))
        .route("/v1/explore/histogram", get(explore::histogram))
        .route("/v1/explore/dimensions", get(explore::dimensions))
        .route(
            "/v1/dashboards",
            get(dashboards::list).post(dashboards::create),
        )
        .route(
            "/v1/dashboards/{id}",
            get(dashboards::get)
                .put(dashboards::replace)
                .delete(dashboards::delete),
        )
        .route("/v1/alerts", get(alerts::list).post(alerts::create))
        .route("/v1/alerts/templates", get(alerts::templates_handler))
        .route(
            "/v1/alerts/{id}",
            get(alerts::get).put(alerts::replace).delete(alerts::delete),
        )
        .route("/v1/alerts/{id}/history", get(alerts::history))
        .route("/v1/alerts/{id}/evaluate", post(alerts::evaluate))
        // The web UI: not part of the API, so not in ROUTES or the OpenAPI description.
        .route("/", get(crate::ui::index))
        .route("/ui/{*path}", get(crate::ui::asset))
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// An error answer: status, message, optional details and headers.
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    details: Option<serde_json::Value>,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(details) = self.details.clone() {
            body["errors"] = details;
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        self.add_headers(&mut response);
        response
    }
}

impl ApiError {
    /// `Retry-After` for retryable refusals, `WWW-Authenticate` for a missing token.
    pub(crate) fn add_headers(&self, response: &mut Response) {
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
    }
}

/// Constant-time comparison, so a token cannot be guessed byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn authorize(headers: &HeaderMap, token: &Option<String>) -> Result<(), ApiError> {
    let Some(expected) = token else { return Ok(()) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    match given {
        Some(t) if same_secret(t.trim().as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid bearer token",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing Authorization: Bearer <token>",
        )),
    }
}

/// The `Content-Type` as sent (for messages) and its media type, lowercased without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> (String, String) {
    let text = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let media = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (text, media)
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    if !headers.contains_key(header::CONTENT_TYPE) {
        return Ok(BodyFormat::Auto);
    }
    let (text, media) = media_type(headers);
    match media.as_str() {
        "application/json" | "text/json" => Ok(BodyFormat::Auto),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(BodyFormat::Ndjson),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {text:?}: send application/json (an array) or application/x-ndjson"
            ),
        )),
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("");
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "zstd" => Ok(Encoding::Zstd),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding {text:?}: use gzip, zstd or none"),
        )),
    }
}

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what} is over the limit of {limit} bytes (--max-body)"),
    )
}

/// Decodes a compressed body, refusing to inflate past `limit` (a small gzip bomb stays small).
pub(crate) fn decode_body(encoding: Encoding, raw: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let bad = |e: std::io::Error, name: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body is not valid {name}: {e}"),
        )
    };
    let mut out = Vec::new();
    let read = match encoding {
        Encoding::Identity => return Ok(raw),
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(&raw[..])
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(e, "gzip")),
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(&raw[..]).map_err(|e| bad(e, "zstd"))?;
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(e, "zstd"))
        }
    }?;
    if read > limit {
        return Err(too_large(limit, "the decompressed body"));
    }
    Ok(Bytes::from(out))
}

/// Reads a whole body within `limit` bytes and `timeout` (a client that trickles its body is cut off).
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {timeout:?} (--body-timeout)"),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        // The limit is the only way `to_bytes` fails on a healthy connection.
        Ok(Err(e))
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) =>
        {
            Err(too_large(limit, "the body"))
        }
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("reading the body failed: {e}"),
        )),
    }
}

fn parse_error(e: ParseError) -> ApiError {
    let details = serde_json::to_value(
        e.errors
            .iter()
            .map(|l| json!({"line": l.line, "field": l.field, "message": l.message}))
            .collect::<Vec<_>>(),
    )
    .ok();
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: e.to_string(),
        details,
        retry_after: None,
    }
}

async fn ingest_spans(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match ingest_inner(&state, request).await {
        Ok(response) => {
            state.metrics.count_ingest("ok");
            response
        }
        Err(e) => {
            state.metrics.count_ingest(ingest_outcome(e.status));
            e.into_response()
        }
    }
}

/// The `outcome` label of the ingest-requests metric for an error status.
pub(crate) fn ingest_outcome(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::SERVICE_UNAVAILABLE => "overloaded",
        _ => "error",
    }
}

/// What every ingest endpoint checks before reading a body: the token, the content encoding, the declared
/// size and the ingest bounds (refused early, before reading a large body for nothing).
pub(crate) fn ingest_preflight(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Encoding, ApiError> {
    authorize(headers, &state.config.ingest_token)?;
    let encoding = content_encoding(headers)?;
    let limit = state.config.max_body;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large(limit, "the body"));
    }
    state.ingester.check_capacity().map_err(ingest_error)?;
    Ok(encoding)
}

async fn ingest_inner(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let encoding = ingest_preflight(state, request.headers())?;
    let format = body_format(request.headers())?;
    let limit = state.config.max_body;
    let raw = read_body(request.into_body(), limit, state.config.body_timeout).await?;
    let batch = tokio::task::spawn_blocking(move || {
        let body = decode_body(encoding, raw, limit)?;
        parse_spans(&body, format).map_err(parse_error)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("ingest task failed: {e}"),
        )
    })?
    .inspect_err(|e| {
        if e.status == StatusCode::BAD_REQUEST {
            state.metrics.spans_rejected.inc();
        }
    })?;
    let ack = state.ingester.ingest(batch).await.map_err(ingest_error)?;
    Ok(axum::Json(json!({"accepted": ack.accepted, "duplicates": ack.duplicates})).into_response())
}

pub(crate) fn ingest_error(e: IngestError) -> ApiError {
    let retry_after = match &e {
        IngestError::Overloaded {
            retry_after_secs, ..
        } => Some(*retry_after_secs),
        _ => Some(5),
    };
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: e.to_string(),
        details: None,
        retry_after,
    }
}

#[derive(Deserialize)]
struct SqlBody {
    sql: String,
    format: Option<String>,
}

#[derive(Deserialize)]
struct SqlParams {
    q: Option<String>,
    format: Option<String>,
}

async fn sql_post(
    State(state): State<Arc<AppState>>,
    Query(params): Query<SqlParams>,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    authorize(&headers, &state.config.query_token)?;
    let limit = state.engine.options().max_sql_bytes + 4096;
    let body = read_body(request.into_body(), limit, state.config.body_timeout).await?;
    let request: SqlBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body must be JSON like {{\"sql\": \"SELECT ...\"}}: {e}"),
        )
    })?;
    let format = request.format.or(params.format);
    run_sql(&state, &headers, &request.sql, format.as_deref()).await
}

async fn sql_get(
    State(state): State<Arc<AppState>>,
    Query(params): Query<SqlParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    let Some(sql) = params.q else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing query parameter q (the SQL text)",
        ));
    };
    run_sql(&state, &headers, &sql, params.format.as_deref()).await
}

/// The HTTP answer for a query error.
pub fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Busy(_) => ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: e.to_string(),
            details: None,
            retry_after: Some(1),
        },
        QueryError::TooLong(..) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        // The storage failed, not the query: worth a retry.
        QueryError::DataFusion(DataFusionError::ObjectStore(_) | DataFusionError::IoError(_)) => {
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
                details: None,
                retry_after: Some(5),
            }
        }
        QueryError::DataFusion(DataFusionError::Internal(_)) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        _ => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn query_outcome(e: &QueryError) -> &'static str {
    match e {
        QueryError::Refused(_) | QueryError::TooLong(..) => "refused",
        QueryError::Busy(_) => "busy",
        QueryError::Timeout(_) => "timeout",
        QueryError::DataFusion(_) => "error",
    }
}

async fn run_sql(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    sql: &str,
    format: Option<&str>,
) -> Result<Response, ApiError> {
    let format = match format {
        Some(name) => ResultFormat::parse(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown format {name:?}: use json, ndjson, csv, arrow or parquet"),
            )
        })?,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(ResultFormat::from_accept)
            .unwrap_or(ResultFormat::Json),
    };
    let started = Instant::now();
    let fail = |e: QueryError| {
        state.metrics.count_query(query_outcome(&e));
        state
            .metrics
            .query_seconds
            .observe(started.elapsed().as_secs_f64());
        query_error(e)
    };
    let mut rows = state.engine.query_stream(sql).await.map_err(fail)?;
    // The first batch decides the status: an error before any row is sent is still a clean 400.
    let first = match rows.next_batch().await {
        Some(Err(e)) => return Err(fail(e)),
        other => other,
    };
    let encode_error = |e: crate::format::EncodeError| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    };
    let (mut encoder, preamble) =
        ResultEncoder::new(format, rows.schema()).map_err(encode_error)?;
    let mut head = preamble;
    if let Some(Ok(batch)) = first {
        head.extend(encoder.batch(&batch).map_err(encode_error)?);
    }
    let state = state.clone();
    let body = async_stream(move |tx| async move {
        if tx.send(Ok(Bytes::from(head))).await.is_err() {
            return;
        }
        let mut error = None;
        while let Some(next) = rows.next_batch().await {
            let chunk = match next {
                Ok(batch) => encoder.batch(&batch),
                Err(e) => {
                    state.metrics.count_query(query_outcome(&e));
                    error = Some(e.to_string());
                    break;
                }
            };
            match chunk {
                Ok(bytes) if bytes.is_empty() => {}
                Ok(bytes) => {
                    if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                        return; // the client went away: dropping `rows` cancels the query
                    }
                }
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        let elapsed = started.elapsed();
        state.metrics.query_seconds.observe(elapsed.as_secs_f64());
        if error.is_none() {
            state.metrics.count_query("ok");
        }
        // JSON can say what went wrong at the end; other formats end abruptly so no client takes a cut
        // result for a whole one.
        if error.is_some() && format != ResultFormat::Json {
            let _ = tx
                .send(Err(std::io::Error::other(error.unwrap_or_default())))
                .await;
            return;
        }
        match encoder.finish(
            rows.truncated(),
            elapsed.as_secs_f64() * 1e3,
            error.as_deref(),
        ) {
            Ok(tail) => {
                let _ = tx.send(Ok(Bytes::from(tail))).await;
            }
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// A response body fed by a task through a small channel (back-pressure: the task waits for the client).
fn async_stream<F, Fut>(produce: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(produce(tx));
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_bomb_is_refused_and_good_gzip_decodes() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&vec![b' '; 1 << 20]).unwrap();
        let bomb = Bytes::from(enc.finish().unwrap());
        assert!(bomb.len() < 10_000);
        let err = decode_body(Encoding::Gzip, bomb.clone(), 1000)
            .err()
            .unwrap();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            decode_body(Encoding::Gzip, bomb, 2 << 20)
                .ok()
                .unwrap()
                .len(),
            1 << 20
        );
        let err = decode_body(Encoding::Zstd, Bytes::from_static(b"nope"), 1000)
            .err()
            .unwrap();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn tokens_are_checked() {
        let mut h = HeaderMap::new();
        assert!(authorize(&h, &None).is_ok());
        assert_eq!(
            authorize(&h, &Some("s".into())).err().unwrap().status,
            StatusCode::UNAUTHORIZED
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s"));
        assert!(authorize(&h, &Some("s".into())).is_ok());
        assert!(authorize(&h, &Some("t".into())).is_err());
    }
}

#[cfg(test)]
mod openapi_tests {
    use super::*;

    #[test]
    fn openapi_lists_exactly_the_routes() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
