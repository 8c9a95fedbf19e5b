//! Dashboards: named lists of panels (an explore query or SQL, and a chart), kept as JSON objects in
//! Lumen's own object store (`_lumen/dashboards/<id>.json`), so they live in the user's account with the
//! data. `default` always exists: the built-in one until someone saves over it; deleting it brings the
//! built-in one back. `/v1/dashboards` manages them; the web UI draws them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use object_store::{ObjectStore, path::Path as StorePath};
use serde::{Deserialize, Serialize};
use serde_json::json;

use lumen_query::explore::Params;

use crate::http::{ApiError, AppState, authorize};
use crate::objects::{JsonObjects, ObjectError, check_id, json_body};

const PREFIX: &str = "_lumen/dashboards";
const MAX_PANELS: usize = 50;
const MAX_BODY: usize = 1 << 20;

/// The explore endpoints a panel may run, with the parameters each takes besides the common ones.
pub const PANEL_ENDPOINTS: &[(&str, &[&str])] = &[
    ("timeseries", &["step", "split", "top"]),
    ("latency", &["q", "step"]),
    ("tokens", &[]),
    ("errors", &[]),
    ("histogram", &["metric", "split", "top"]),
    ("models", &[]),
    ("services", &[]),
    ("sla", &["threshold_ms"]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    Explore,
    Sql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Chart {
    Line,
    Bar,
    Table,
    Stat,
    Histogram,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    #[serde(default)]
    pub id: String,
    pub title: String,
    pub kind: PanelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    pub chart: Chart,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default = "one")]
    pub width: u8,
}

fn one() -> u8 {
    1
}

/// What a client sends to create or replace a dashboard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardBody {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub panels: Vec<Panel>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dashboard {
    pub id: String,
    pub title: String,
    pub description: String,
    pub panels: Vec<Panel>,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

fn invalid(msg: impl Into<String>) -> ObjectError {
    ObjectError::Invalid(msg.into())
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `$from` / `$to` in a panel's or rule's SQL become quoted RFC 3339 timestamps.
pub fn substitute_window(sql: &str, from_ns: i64, to_ns: i64) -> String {
    let lit = |ns: i64| {
        format!(
            "'{}'",
            DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
        )
    };
    sql.replace("$from", &lit(from_ns))
        .replace("$to", &lit(to_ns))
}

/// Checks a panel: the endpoint and its parameters, or the SQL (read-only, within the size limit).
fn validate_panel(panel: &mut Panel, index: usize, max_sql: usize) -> Result<(), ObjectError> {
    let at = |msg: String| invalid(format!("panels[{index}]: {msg}"));
    let title_len = panel.title.trim().chars().count();
    if !(1..=200).contains(&title_len) {
        return Err(at("title: 1 to 200 characters".into()));
    }
    if !matches!(panel.width, 1 | 2) {
        return Err(at(format!(
            "width: 1 (half) or 2 (full), found {}",
            panel.width
        )));
    }
    if panel.field.as_ref().is_some_and(|f| f.len() > 200) {
        return Err(at("field: at most 200 characters".into()));
    }
    match panel.kind {
        PanelKind::Explore => {
            if panel.sql.is_some() {
                return Err(at("an explore panel has no sql".into()));
            }
            let name = panel
                .endpoint
                .as_deref()
                .ok_or_else(|| at("endpoint is required for an explore panel".into()))?;
            let extra = PANEL_ENDPOINTS
                .iter()
                .find(|(e, _)| *e == name)
                .map(|(_, extra)| *extra)
                .ok_or_else(|| {
                    let names: Vec<&str> = PANEL_ENDPOINTS.iter().map(|(e, _)| *e).collect();
                    at(format!(
                        "endpoint: {name:?} is not one of {}",
                        names.join(", ")
                    ))
                })?;
            let mut query: HashMap<String, String> = panel.params.clone().into_iter().collect();
            // The UI keeps which SLA breakdown a panel shows with its parameters; not an API parameter.
            if name == "sla" {
                query.remove("breakdown");
            }
            Params::parse(&query, extra, Utc::now()).map_err(|e| at(format!("params: {e}")))?;
        }
        PanelKind::Sql => {
            if panel.endpoint.is_some() || !panel.params.is_empty() {
                return Err(at("a sql panel has no endpoint or params".into()));
            }
            let sql = panel
                .sql
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| at("sql is required for a sql panel".into()))?;
            if sql.len() > max_sql {
                return Err(at(format!(
                    "sql: {} bytes; the limit is {max_sql}",
                    sql.len()
                )));
            }
            lumen_query::check_read_only(&substitute_window(sql, 0, 1))
                .map_err(|e| at(format!("sql: {e}")))?;
        }
    }
    Ok(())
}

/// Checks a whole body and gives every panel a unique id.
pub fn validate(body: &mut DashboardBody, max_sql: usize) -> Result<(), ObjectError> {
    let title_len = body.title.trim().chars().count();
    if !(1..=200).contains(&title_len) {
        return Err(invalid("title: 1 to 200 characters"));
    }
    if body.description.chars().count() > 2000 {
        return Err(invalid("description: at most 2000 characters"));
    }
    if body.panels.len() > MAX_PANELS {
        return Err(invalid(format!(
            "panels: at most {MAX_PANELS}, found {}",
            body.panels.len()
        )));
    }
    let mut seen = HashSet::new();
    for (i, panel) in body.panels.iter_mut().enumerate() {
        validate_panel(panel, i, max_sql)?;
        let ok_id = (1..=64).contains(&panel.id.len())
            && panel
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok_id || !seen.insert(panel.id.clone()) {
            let mut n = i + 1;
            while !seen.insert(format!("p{n}")) {
                n += 1;
            }
            panel.id = format!("p{n}");
        }
    }
    Ok(())
}

fn explore(
    title: &str,
    endpoint: &str,
    params: &[(&str, &str)],
    chart: Chart,
    field: &str,
) -> Panel {
    Panel {
        id: String::new(),
        title: title.into(),
        kind: PanelKind::Explore,
        endpoint: Some(endpoint.into()),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        sql: None,
        chart,
        field: Some(field.into()),
        width: 1,
    }
}

/// Peak requests and tokens per minute per provider (what provider quotas are counted in) and the calls
/// the provider refused for rate limits.
const QUOTA_SQL: &str = "SELECT provider, max(requests) AS peak_requests_per_min, max(tokens) AS peak_tokens_per_min, \
sum(rate_limited) AS rate_limited_calls, sum(requests) AS calls \
FROM (SELECT provider, date_bin(INTERVAL '1 minute', start_time, TIMESTAMP '1970-01-01T00:00:00Z') AS minute, \
count(*) AS requests, sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens, \
count(*) FILTER (WHERE http_status = 429) AS rate_limited \
FROM spans WHERE start_time >= $from AND start_time < $to AND provider IS NOT NULL GROUP BY 1, 2) \
GROUP BY provider ORDER BY peak_tokens_per_min DESC";

/// The dashboard every installation starts with.
pub fn builtin_default() -> Dashboard {
    let mut body = DashboardBody {
        title: "LLM usage".into(),
        description: "Model usage, latency trends, token usage and quota usage per provider."
            .into(),
        panels: vec![
            explore(
                "Calls by model",
                "timeseries",
                &[("split", "model")],
                Chart::Line,
                "calls",
            ),
            explore(
                "Latency P50 / P90 / P99",
                "timeseries",
                &[],
                Chart::Line,
                "p50_ms,p90_ms,p99_ms",
            ),
            explore(
                "Input tokens by model",
                "timeseries",
                &[("split", "model")],
                Chart::Bar,
                "input_tokens",
            ),
            explore(
                "Output tokens by model",
                "timeseries",
                &[("split", "model")],
                Chart::Bar,
                "output_tokens",
            ),
            Panel {
                id: String::new(),
                title: "Quota usage per provider (peak per minute)".into(),
                kind: PanelKind::Sql,
                endpoint: None,
                params: BTreeMap::new(),
                sql: Some(QUOTA_SQL.into()),
                chart: Chart::Table,
                field: Some("peak_tokens_per_min".into()),
                width: 2,
            },
            explore(
                "Cost by model",
                "tokens",
                &[("by", "model")],
                Chart::Bar,
                "cost_usd",
            ),
            explore("Error rate", "timeseries", &[], Chart::Line, "error_rate"),
        ],
    };
    // The built-in panels are valid by construction; this only numbers them.
    let _ = validate(&mut body, usize::MAX);
    Dashboard {
        id: "default".into(),
        title: body.title,
        description: body.description,
        panels: body.panels,
        created_at: "1970-01-01T00:00:00.000Z".into(),
        updated_at: "1970-01-01T00:00:00.000Z".into(),
        version: 0,
    }
}

/// The dashboards in one object store.
pub struct Dashboards {
    objects: JsonObjects,
    /// Serialises read-modify-write of one server's changes (version numbers stay in order).
    write: tokio::sync::Mutex<()>,
}

fn location(id: &str) -> StorePath {
    StorePath::from(format!("{PREFIX}/{id}.json"))
}

impl Dashboards {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Dashboards {
            objects: JsonObjects::new(store),
            write: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Dashboard, ObjectError> {
        check_id(id, "dashboard")?;
        match self.objects.read(&location(id)).await? {
            Some(d) => Ok(d),
            None if id == "default" => Ok(builtin_default()),
            None => Err(ObjectError::NotFound("dashboard", id.to_string())),
        }
    }

    pub async fn list(&self) -> Result<Vec<Dashboard>, ObjectError> {
        let mut out: Vec<Dashboard> = self
            .objects
            .read_all::<Dashboard>(&StorePath::from(PREFIX))
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        if !out.iter().any(|d| d.id == "default") {
            out.push(builtin_default());
        }
        out.sort_by(|a, b| {
            (b.id == "default")
                .cmp(&(a.id == "default"))
                .then_with(|| a.title.to_lowercase().cmp(&b.title.to_lowercase()))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    pub async fn create(&self, body: DashboardBody) -> Result<Dashboard, ObjectError> {
        let now = now_rfc3339();
        let dashboard = Dashboard {
            id: format!("d-{}", uuid::Uuid::now_v7().simple()),
            title: body.title.trim().to_string(),
            description: body.description,
            panels: body.panels,
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        };
        self.objects
            .write(&location(&dashboard.id), &dashboard)
            .await?;
        Ok(dashboard)
    }

    pub async fn replace(&self, id: &str, body: DashboardBody) -> Result<Dashboard, ObjectError> {
        let _one_writer = self.write.lock().await;
        let old = self.get(id).await?;
        let dashboard = Dashboard {
            id: id.to_string(),
            title: body.title.trim().to_string(),
            description: body.description,
            panels: body.panels,
            created_at: if old.version == 0 {
                now_rfc3339()
            } else {
                old.created_at
            },
            updated_at: now_rfc3339(),
            version: old.version + 1,
        };
        self.objects.write(&location(id), &dashboard).await?;
        Ok(dashboard)
    }

    /// Deletes a dashboard; deleting `default` brings back the built-in one.
    pub async fn delete(&self, id: &str) -> Result<(), ObjectError> {
        let _one_writer = self.write.lock().await;
        check_id(id, "dashboard")?;
        let stored: Option<Dashboard> = self.objects.read(&location(id)).await?;
        if stored.is_none() && id != "default" {
            return Err(ObjectError::NotFound("dashboard", id.to_string()));
        }
        self.objects.delete(&location(id)).await
    }
}

async fn dashboard_body(
    state: &AppState,
    body: axum::body::Body,
) -> Result<DashboardBody, ApiError> {
    let mut body: DashboardBody = json_body(
        state,
        body,
        MAX_BODY,
        r#"a dashboard like {"title": "...", "panels": [...]}"#,
    )
    .await?;
    validate(&mut body, state.engine.options().max_sql_bytes)?;
    Ok(body)
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    let list: Vec<_> = state
        .dashboards
        .list()
        .await?
        .into_iter()
        .map(|d| {
            json!({"id": d.id, "title": d.title, "description": d.description,
                   "panels": d.panels.len(), "updated_at": d.updated_at, "version": d.version})
        })
        .collect();
    Ok(Json(json!({ "dashboards": list })).into_response())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    authorize(request.headers(), &state.config.query_token)?;
    let body = dashboard_body(&state, request.into_body()).await?;
    let dashboard = state.dashboards.create(body).await?;
    Ok((StatusCode::CREATED, Json(dashboard)).into_response())
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    Ok(Json(state.dashboards.get(&id).await?).into_response())
}

pub async fn replace(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    authorize(request.headers(), &state.config.query_token)?;
    let body = dashboard_body(&state, request.into_body()).await?;
    Ok(Json(state.dashboards.replace(&id, body).await?).into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    state.dashboards.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> Result<DashboardBody, String> {
        let mut b: DashboardBody = serde_json::from_value(json).map_err(|e| e.to_string())?;
        validate(&mut b, 10_000).map_err(|e| e.to_string())?;
        Ok(b)
    }

    #[test]
    fn the_default_dashboard_is_valid_and_numbered() {
        let d = builtin_default();
        let mut b = DashboardBody {
            title: d.title.clone(),
            description: d.description.clone(),
            panels: d.panels.clone(),
        };
        validate(&mut b, 100_000).expect("valid");
        let ids: HashSet<_> = d.panels.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), d.panels.len());
        assert!(d.panels.iter().any(|p| p.kind == PanelKind::Sql));
    }

    #[test]
    fn bad_panels_are_named() {
        let err = body(json!({"title": "t", "panels": [
            {"title": "a", "kind": "explore", "endpoint": "latency", "chart": "line"},
            {"title": "b", "kind": "explore", "endpoint": "nope", "chart": "line"}]}))
        .unwrap_err();
        assert!(err.contains("panels[1]") && err.contains("nope"), "{err}");
        let err = body(json!({"title": "t", "panels": [
            {"title": "a", "kind": "sql", "sql": "DROP TABLE spans", "chart": "table"}]}))
        .unwrap_err();
        assert!(err.contains("panels[0]: sql"), "{err}");
        let err = body(json!({"title": "t", "panels": [
            {"title": "a", "kind": "explore", "endpoint": "sla", "params": {"bogus": "1"}, "chart": "bar"}]}))
        .unwrap_err();
        assert!(err.contains("bogus"), "{err}");
        let err = body(json!({"title": "", "panels": []})).unwrap_err();
        assert!(err.contains("title"), "{err}");
        let err = body(json!({"title": "t", "panels": [
            {"title": "a", "kind": "explore", "endpoint": "tokens", "chart": "pie"}]}))
        .unwrap_err();
        assert!(err.contains("pie"), "{err}");
    }

    #[test]
    fn sql_with_window_placeholders_is_accepted() {
        let b = body(json!({"title": "t", "panels": [
            {"title": "a", "kind": "sql", "chart": "table",
             "sql": "SELECT count(*) FROM spans WHERE start_time >= $from AND start_time < $to"},
            {"title": "b", "kind": "sql", "chart": "table", "sql": "SELECT 1", "id": "p1"}]}))
        .unwrap();
        assert_ne!(b.panels[0].id, b.panels[1].id);
        assert!(
            substitute_window("x >= $from AND x < $to", 0, 1_000_000_000)
                .contains("'1970-01-01T00:00:01")
        );
    }
}
