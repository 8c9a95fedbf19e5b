//! HTTP handlers of the explore API: parse typed parameters, run the query stage's explore queries,
//! answer JSON. Same bearer token as `/v1/sql`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use lumen_query::explore::{self as q, ExploreError, Params};

use crate::http::{ApiError, AppState, authorize, query_error};

fn explore_error(e: ExploreError) -> ApiError {
    match e {
        ExploreError::BadParam(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
        ExploreError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        ExploreError::Query(e) => query_error(e),
    }
}

/// Defines a handler for a windowed explore endpoint that takes `extra` parameters besides the common ones.
macro_rules! windowed {
    ($name:ident, $extra:expr) => {
        pub async fn $name(
            State(state): State<Arc<AppState>>,
            headers: HeaderMap,
            Query(query): Query<HashMap<String, String>>,
        ) -> Result<Response, ApiError> {
            authorize(&headers, &state.config.query_token)?;
            let params = Params::parse(&query, $extra, Utc::now()).map_err(explore_error)?;
            let answer = q::$name(&state.engine, &params)
                .await
                .map_err(explore_error)?;
            Ok(Json(answer).into_response())
        }
    };
}

windowed!(models, &[]);
windowed!(latency, &["q", "step"]);
windowed!(tokens, &[]);
windowed!(errors, &[]);
windowed!(sla, &["threshold_ms"]);
windowed!(services, &[]);
windowed!(timeseries, &["step", "split", "top"]);
windowed!(histogram, &["metric", "split", "top"]);
windowed!(dimensions, &[]);

pub async fn list_spans(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    let params = Params::parse(
        &query,
        &["limit", "cursor", "sort", "errors", "search"],
        Utc::now(),
    )
    .map_err(explore_error)?;
    let answer = q::list(&state.engine, &params)
        .await
        .map_err(explore_error)?;
    Ok(Json(answer).into_response())
}

pub async fn trace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    Ok(Json(
        q::trace(&state.engine, &trace_id)
            .await
            .map_err(explore_error)?,
    )
    .into_response())
}

pub async fn span(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(span_id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    Ok(Json(
        q::span(&state.engine, &span_id)
            .await
            .map_err(explore_error)?,
    )
    .into_response())
}
