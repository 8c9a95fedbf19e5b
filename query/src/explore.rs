//! Ready-made answers over the `spans` table: the model inventory, latency percentiles, token usage,
//! errors, SLA breaches, the service map, traces and span lists.
//!
//! Every request is typed: parameters are parsed and validated here, dimensions come from a fixed list,
//! and values reach SQL only as escaped literals, so no caller ever supplies a SQL fragment.

use std::collections::{BTreeMap, HashMap};

use arrow::json::writer::{JsonArray, WriterBuilder};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::{QueryEngine, QueryError, QueryResult};

#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("{0}")]
    BadParam(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Query(#[from] QueryError),
}

pub type Result<T, E = ExploreError> = std::result::Result<T, E>;

fn bad(msg: impl Into<String>) -> ExploreError {
    ExploreError::BadParam(msg.into())
}

/// The OpenTelemetry GenAI bucket boundaries for `gen_ai.client.token.usage`.
pub const TOKEN_BUCKETS: &[i64] = &[
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Model,
    Provider,
    Service,
    Operation,
}

impl Dimension {
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "model" => Dimension::Model,
            "provider" => Dimension::Provider,
            "service" => Dimension::Service,
            "operation" => Dimension::Operation,
            other => {
                return Err(bad(format!(
                    "by: unknown dimension {other:?}; use model, provider, service or operation"
                )));
            }
        })
    }

    fn column(self) -> &'static str {
        match self {
            Dimension::Model => "request_model",
            Dimension::Provider => "provider",
            Dimension::Service => "service_name",
            Dimension::Operation => "operation",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Ok,
    Error,
    Class(u16),
}

/// The typed parameters every explore endpoint shares, plus the ones specific to some.
#[derive(Debug, Clone)]
pub struct Params {
    pub from_ns: i64,
    pub to_ns: i64,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub service: Option<String>,
    pub operation: Option<String>,
    pub status: Option<StatusClass>,
    pub streaming: Option<bool>,
    pub by: Dimension,
    raw: HashMap<String, String>,
}

const COMMON: &[&str] = &[
    "from",
    "to",
    "provider",
    "model",
    "service",
    "operation",
    "status",
    "streaming",
    "by",
];

/// `now`, a relative time like `-1h` / `-15m` / `-30s` / `-7d`, RFC 3339, or integer Unix nanoseconds.
pub fn parse_time(text: &str, now: DateTime<Utc>, name: &str) -> Result<i64> {
    let t = text.trim();
    let now_ns = now.timestamp_nanos_opt().unwrap_or(i64::MAX);
    if t == "now" {
        return Ok(now_ns);
    }
    if let Some(ago) = t.strip_prefix('-') {
        let d = humantime::parse_duration(ago).map_err(|e| {
            bad(format!(
                "{name}: {text:?} is not a relative time like -1h ({e})"
            ))
        })?;
        return Ok(now_ns.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)));
    }
    if let Ok(ns) = t.parse::<i64>() {
        return Ok(ns);
    }
    DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .ok_or_else(|| {
            bad(format!(
                "{name}: {text:?} is not RFC 3339, a relative time like -1h, or now"
            ))
        })
}

impl Params {
    /// Parses query parameters; `extra` are the names this endpoint accepts besides the common ones.
    pub fn parse(
        query: &HashMap<String, String>,
        extra: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Self> {
        for key in query.keys() {
            if !COMMON.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
                let mut known: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
                known.sort_unstable();
                return Err(bad(format!(
                    "unknown parameter {key:?}; this endpoint takes {}",
                    known.join(", ")
                )));
            }
        }
        let get = |k: &str| {
            query
                .get(k)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let from_ns = match get("from") {
            Some(t) => parse_time(&t, now, "from")?,
            None => parse_time("-24h", now, "from")?,
        };
        let to_ns = match get("to") {
            Some(t) => parse_time(&t, now, "to")?,
            None => now.timestamp_nanos_opt().unwrap_or(i64::MAX),
        };
        if to_ns <= from_ns {
            return Err(bad("to must be after from"));
        }
        let status = match get("status").as_deref() {
            None => None,
            Some("ok") => Some(StatusClass::Ok),
            Some("error") => Some(StatusClass::Error),
            Some(s)
                if s.len() == 3
                    && s.ends_with("xx")
                    && matches!(&s[..1], "1" | "2" | "3" | "4" | "5") =>
            {
                Some(StatusClass::Class(s[..1].parse::<u16>().unwrap_or(0) * 100))
            }
            Some(other) => {
                return Err(bad(format!(
                    "status: {other:?} is not one of ok, error, 2xx, 3xx, 4xx, 5xx"
                )));
            }
        };
        let streaming = match get("streaming").as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(bad(format!(
                    "streaming: expected true or false, found {other:?}"
                )));
            }
        };
        let by = match get("by") {
            Some(b) => Dimension::parse(&b)?,
            None => Dimension::Model,
        };
        Ok(Params {
            from_ns,
            to_ns,
            provider: get("provider"),
            model: get("model"),
            service: get("service"),
            operation: get("operation"),
            status,
            streaming,
            by,
            raw: query.clone(),
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.raw
            .get(key)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// The WHERE clause for the time range and filters.
    fn filter(&self) -> String {
        let mut parts = vec![
            format!("start_time >= {}", ts_literal(self.from_ns)),
            format!("start_time < {}", ts_literal(self.to_ns)),
        ];
        for (column, value) in [
            ("provider", &self.provider),
            ("request_model", &self.model),
            ("service_name", &self.service),
            ("operation", &self.operation),
        ] {
            if let Some(v) = value {
                parts.push(format!("{column} = {}", quote(v)));
            }
        }
        match self.status {
            Some(StatusClass::Ok) => parts.push(format!("NOT ({ERROR})")),
            Some(StatusClass::Error) => parts.push(format!("({ERROR})")),
            Some(StatusClass::Class(c)) => {
                parts.push(format!("http_status >= {c} AND http_status < {}", c + 100))
            }
            None => {}
        }
        if let Some(s) = self.streaming {
            parts.push(format!("streaming = {s}"));
        }
        parts.join(" AND ")
    }

    fn window(&self) -> Value {
        json!({"from": rfc3339(self.from_ns), "to": rfc3339(self.to_ns)})
    }
}

/// What counts as a failed call.
const ERROR: &str = "error_type IS NOT NULL OR http_status >= 400";

/// A SQL string literal: the only way user text reaches SQL here.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn rfc3339(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn ts_literal(ns: i64) -> String {
    format!(
        "'{}'",
        DateTime::<Utc>::from_timestamp_nanos(ns)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    )
}

/// Result rows as JSON objects (nulls kept).
pub fn rows(result: &QueryResult) -> Result<Vec<Map<String, Value>>> {
    let encode = |e: &dyn std::fmt::Display| {
        ExploreError::Query(QueryError::DataFusion(
            datafusion::error::DataFusionError::Execution(format!("encoding rows as JSON: {e}")),
        ))
    };
    let mut buf = Vec::new();
    {
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, JsonArray>(&mut buf);
        for batch in &result.batches {
            writer.write(batch).map_err(|e| encode(&e))?;
        }
        writer.finish().map_err(|e| encode(&e))?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(|e| encode(&e))
}

fn take(row: &mut Map<String, Value>, key: &str) -> Value {
    row.remove(key).unwrap_or(Value::Null)
}

fn ratio(part: &Value, whole: &Value) -> Value {
    match (part.as_f64(), whole.as_f64()) {
        (Some(p), Some(w)) if w > 0.0 => json!(p / w),
        _ => Value::Null,
    }
}

fn parse_quantiles(text: Option<&str>) -> Result<Vec<f64>> {
    let text = text.unwrap_or("0.5,0.9,0.99");
    let qs: Vec<f64> = text
        .split(',')
        .map(|q| {
            q.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0 && *v <= 1.0)
                .ok_or_else(|| bad(format!("q: {q:?} is not a quantile in (0, 1]")))
        })
        .collect::<Result<_>>()?;
    if qs.is_empty() || qs.len() > 10 {
        return Err(bad("q: give 1 to 10 quantiles, e.g. q=0.5,0.9,0.99"));
    }
    Ok(qs)
}

fn q_label(q: f64) -> String {
    let pct = (q * 100.0 * 1e6).round() / 1e6;
    format!("p{pct}")
}

/// GET /v1/models
pub async fn models(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let sql = format!(
        "WITH w AS (SELECT provider, request_model, response_model, min(start_time) AS first_seen, \
           max(start_time) AS last_seen, count(*) AS calls, \
           array_sort(array_agg(DISTINCT service_name) FILTER (WHERE service_name IS NOT NULL)) AS services \
           FROM spans WHERE {f} GROUP BY 1, 2, 3), \
         e AS (SELECT provider, request_model, response_model, min(start_time) AS first_ever FROM spans GROUP BY 1, 2, 3) \
         SELECT w.*, e.first_ever >= {from} AS new FROM w JOIN e \
           ON (w.provider IS NOT DISTINCT FROM e.provider) AND (w.request_model IS NOT DISTINCT FROM e.request_model) \
           AND (w.response_model IS NOT DISTINCT FROM e.response_model) \
         ORDER BY calls DESC, request_model, response_model",
        f = p.filter(),
        from = ts_literal(p.from_ns),
    );
    let models = rows(&engine.internal(&sql).await?)?;
    Ok(json!({"window": p.window(), "models": models}))
}

/// GET /v1/explore/latency
pub async fn latency(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let qs = parse_quantiles(p.get("q"))?;
    let step = match p.get("step") {
        None => None,
        Some(s) => {
            let d = humantime::parse_duration(s).map_err(|e| bad(format!("step: {s:?} ({e})")))?;
            if d.as_secs() < 1 {
                return Err(bad("step: at least 1s"));
            }
            let buckets = p.to_ns.abs_diff(p.from_ns) as u128 / d.as_nanos().max(1);
            if buckets > 10_000 {
                return Err(bad(format!(
                    "step: {s} gives {buckets} points over this window; at most 10000"
                )));
            }
            Some(d.as_secs())
        }
    };
    let mut select = vec![
        format!("{} AS grp", p.by.column()),
        "count(*) AS calls".into(),
        "count(ttft_ms) AS streamed".into(),
    ];
    for (i, q) in qs.iter().enumerate() {
        select.push(format!("quantile_cont(duration_ms, {q}) AS d{i}"));
        select.push(format!("quantile_cont(ttft_ms, {q}) AS t{i}"));
    }
    let shape = |row: &mut Map<String, Value>| {
        let mut duration = Map::new();
        let mut ttft = Map::new();
        for (i, q) in qs.iter().enumerate() {
            duration.insert(q_label(*q), take(row, &format!("d{i}")));
            ttft.insert(q_label(*q), take(row, &format!("t{i}")));
        }
        (Value::Object(duration), Value::Object(ttft))
    };
    let sql = format!(
        "SELECT {} FROM spans WHERE {} GROUP BY 1 ORDER BY calls DESC, 1",
        select.join(", "),
        p.filter()
    );
    let mut groups: Vec<Value> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for mut row in rows(&engine.internal(&sql).await?)? {
        let (duration, ttft) = shape(&mut row);
        let group = take(&mut row, "grp");
        index.insert(group.to_string(), groups.len());
        groups.push(json!({
            "group": group, "calls": take(&mut row, "calls"), "streamed_calls": take(&mut row, "streamed"),
            "duration_ms": duration, "ttft_ms": ttft,
        }));
    }
    if let Some(secs) = step {
        let mut series_select = select.clone();
        series_select.push(format!(
            "date_bin(INTERVAL '{secs} seconds', start_time, TIMESTAMP '1970-01-01T00:00:00Z') AS bucket"
        ));
        let sql = format!(
            "SELECT {} FROM spans WHERE {} GROUP BY grp, bucket ORDER BY grp, bucket",
            series_select.join(", "),
            p.filter()
        );
        for mut row in rows(&engine.internal(&sql).await?)? {
            let (duration, ttft) = shape(&mut row);
            let group = take(&mut row, "grp");
            if let Some(&i) = index.get(&group.to_string()) {
                let point = json!({"t": take(&mut row, "bucket"), "calls": take(&mut row, "calls"),
                                   "duration_ms": duration, "ttft_ms": ttft});
                if let Some(series) = groups[i]
                    .as_object_mut()
                    .map(|g| g.entry("series").or_insert(json!([])))
                    && let Some(list) = series.as_array_mut()
                {
                    list.push(point);
                }
            }
        }
    }
    Ok(
        json!({"window": p.window(), "by": p.by.column(), "quantiles": qs, "step_seconds": step, "groups": groups}),
    )
}

const TOKEN_KINDS: &[&str] = &[
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
];

fn token_bucket(column: &str) -> String {
    let mut case = String::from("CASE");
    for (i, bound) in TOKEN_BUCKETS.iter().enumerate() {
        case.push_str(&format!(" WHEN {column} <= {bound} THEN {i}"));
    }
    case.push_str(&format!(" ELSE {} END", TOKEN_BUCKETS.len()));
    case
}

/// GET /v1/explore/tokens
pub async fn tokens(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let col = p.by.column();
    let sums: Vec<String> = TOKEN_KINDS
        .iter()
        .map(|k| format!("sum({k}) AS {k}, avg({k}) AS avg_{k}"))
        .collect();
    let sql = format!(
        "SELECT {col} AS grp, count(*) AS calls, {}, sum(cost_usd) AS cost_usd, count(cost_usd) AS priced_calls \
         FROM spans WHERE {} GROUP BY 1 ORDER BY calls DESC, 1",
        sums.join(", "),
        p.filter()
    );
    let mut groups: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut order = Vec::new();
    for mut row in rows(&engine.internal(&sql).await?)? {
        let group = take(&mut row, "grp");
        let key = group.to_string();
        let mut out = Map::new();
        out.insert("group".into(), group);
        out.insert("calls".into(), take(&mut row, "calls"));
        let mut totals = Map::new();
        let mut mean = Map::new();
        for k in TOKEN_KINDS {
            totals.insert((*k).into(), take(&mut row, k));
            mean.insert((*k).into(), take(&mut row, &format!("avg_{k}")));
        }
        out.insert("totals".into(), Value::Object(totals));
        out.insert("mean_per_call".into(), Value::Object(mean));
        out.insert("cost_usd".into(), take(&mut row, "cost_usd"));
        out.insert("priced_calls".into(), take(&mut row, "priced_calls"));
        out.insert("histograms".into(), json!({}));
        order.push(key.clone());
        groups.insert(key, out);
    }
    for k in TOKEN_KINDS {
        let sql = format!(
            "SELECT {col} AS grp, {} AS bucket, count(*) AS n FROM spans WHERE {} AND {k} IS NOT NULL GROUP BY 1, 2",
            token_bucket(k),
            p.filter()
        );
        for mut row in rows(&engine.internal(&sql).await?)? {
            let key = take(&mut row, "grp").to_string();
            let (Some(bucket), Some(n)) = (
                take(&mut row, "bucket").as_u64(),
                take(&mut row, "n").as_u64(),
            ) else {
                continue;
            };
            if let Some(hist) = groups
                .get_mut(&key)
                .and_then(|g| g.get_mut("histograms"))
                .and_then(|h| h.as_object_mut())
            {
                let counts = hist
                    .entry(*k)
                    .or_insert_with(|| json!(vec![0u64; TOKEN_BUCKETS.len() + 1]));
                if let Some(slot) = counts.get_mut(bucket as usize) {
                    *slot = json!(n);
                }
            }
        }
    }
    let groups: Vec<Value> = order
        .iter()
        .filter_map(|k| groups.remove(k))
        .map(Value::Object)
        .collect();
    Ok(
        json!({"window": p.window(), "by": col, "bucket_boundaries": TOKEN_BUCKETS, "groups": groups}),
    )
}

/// GET /v1/explore/errors
pub async fn errors(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let col = p.by.column();
    let sql = format!(
        "SELECT {col} AS grp, count(*) AS calls, count(*) FILTER (WHERE {ERROR}) AS errors \
         FROM spans WHERE {} GROUP BY 1 ORDER BY errors DESC, calls DESC, 1",
        p.filter()
    );
    let mut groups: Vec<Map<String, Value>> = Vec::new();
    for mut row in rows(&engine.internal(&sql).await?)? {
        let mut out = Map::new();
        let calls = take(&mut row, "calls");
        let errors = take(&mut row, "errors");
        out.insert("group".into(), take(&mut row, "grp"));
        out.insert("error_rate".into(), ratio(&errors, &calls));
        out.insert("calls".into(), calls);
        out.insert("errors".into(), errors);
        out.insert("top_errors".into(), json!([]));
        groups.push(out);
    }
    let sql = format!(
        "SELECT {col} AS grp, coalesce(error_type, concat('http_', CAST(http_status AS VARCHAR))) AS error_type, \
           count(*) AS n, array_slice(array_agg(span_id ORDER BY start_time DESC), 1, 3) AS example_span_ids \
         FROM spans WHERE {} AND ({ERROR}) GROUP BY 1, 2 ORDER BY n DESC, 2",
        p.filter()
    );
    for mut row in rows(&engine.internal(&sql).await?)? {
        let group = take(&mut row, "grp");
        if let Some(g) = groups.iter_mut().find(|g| g.get("group") == Some(&group))
            && let Some(top) = g.get_mut("top_errors").and_then(|t| t.as_array_mut())
            && top.len() < 5
        {
            top.push(
                json!({"error_type": take(&mut row, "error_type"), "count": take(&mut row, "n"),
                            "example_span_ids": take(&mut row, "example_span_ids")}),
            );
        }
    }
    Ok(json!({"window": p.window(), "by": col, "groups": groups}))
}

const PROMPT_SIZE: &str = "CASE WHEN input_tokens IS NULL THEN 'unknown' WHEN input_tokens < 1000 THEN '<1k' \
    WHEN input_tokens < 4000 THEN '1k-4k' WHEN input_tokens < 16000 THEN '4k-16k' \
    WHEN input_tokens < 64000 THEN '16k-64k' ELSE '>=64k' END";
const OUTPUT_SIZE: &str = "CASE WHEN output_tokens IS NULL THEN 'unknown' WHEN output_tokens < 100 THEN '<100' \
    WHEN output_tokens < 500 THEN '100-500' WHEN output_tokens < 2000 THEN '500-2k' \
    WHEN output_tokens < 8000 THEN '2k-8k' ELSE '>=8k' END";

/// GET /v1/explore/sla
pub async fn sla(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let threshold: f64 = p
        .get("threshold_ms")
        .ok_or_else(|| bad("threshold_ms is required, e.g. threshold_ms=1000"))?
        .parse()
        .ok()
        .filter(|t: &f64| t.is_finite() && *t > 0.0)
        .ok_or_else(|| bad("threshold_ms: expected a positive number of milliseconds"))?;
    let over = format!("duration_ms > {threshold}");
    let f = p.filter();
    let totals = rows(
        &engine.internal(&format!("SELECT count(*) AS calls, count(*) FILTER (WHERE {over}) AS over FROM spans WHERE {f}")).await?,
    )?;
    let (calls, breaches) = totals
        .into_iter()
        .next()
        .map(|mut r| (take(&mut r, "calls"), take(&mut r, "over")))
        .unwrap_or((json!(0), json!(0)));
    let dims: [(&str, String); 7] = [
        ("model", "request_model".into()),
        ("provider", "provider".into()),
        ("service", "service_name".into()),
        ("operation", "operation".into()),
        ("prompt_size", PROMPT_SIZE.into()),
        ("output_size", OUTPUT_SIZE.into()),
        ("streaming", "CAST(streaming AS VARCHAR)".into()),
    ];
    let mut breakdown = Map::new();
    for (name, expr) in dims {
        let sql = format!(
            "SELECT {expr} AS value, count(*) AS calls, count(*) FILTER (WHERE {over}) AS over FROM spans WHERE {f} \
             GROUP BY 1 ORDER BY over DESC, calls DESC, 1"
        );
        let list: Vec<Value> = rows(&engine.internal(&sql).await?)?
            .into_iter()
            .map(|mut r| {
                let c = take(&mut r, "calls");
                let o = take(&mut r, "over");
                json!({"value": take(&mut r, "value"), "calls": c, "over": o,
                       "breach_rate": ratio(&o, &c), "share_of_breaches": ratio(&o, &breaches)})
            })
            .collect();
        breakdown.insert(name.into(), Value::Array(list));
    }
    let slowest = rows(
        &engine
            .internal(&format!(
                "SELECT span_id, trace_id, start_time, duration_ms, request_model, service_name, input_tokens, \
                 output_tokens, streaming FROM spans WHERE {f} AND {over} ORDER BY duration_ms DESC, span_id LIMIT 10"
            ))
            .await?,
    )?;
    Ok(json!({
        "window": p.window(), "threshold_ms": threshold, "calls": calls, "over": breaches,
        "share": ratio(&breaches, &calls), "breakdown": breakdown, "slowest": slowest,
    }))
}

/// GET /v1/services
pub async fn services(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let sql = format!(
        "SELECT CASE WHEN span_kind = 'server' THEN coalesce(client_address, 'unknown') \
                ELSE coalesce(service_name, process_name, k8s_pod, host, 'unknown') END AS source, \
           CASE WHEN span_kind = 'server' THEN coalesce(service_name, process_name, k8s_pod, host, 'unknown') \
                ELSE concat(coalesce(server_address, provider, 'unknown'), \
                            CASE WHEN server_port IS NULL THEN '' ELSE concat(':', CAST(server_port AS VARCHAR)) END) END AS target, \
           CASE WHEN span_kind = 'server' OR provider IS NULL THEN 'workload' ELSE 'provider' END AS target_kind, \
           max(provider) AS provider, count(*) AS calls, count(*) FILTER (WHERE {ERROR}) AS errors, \
           quantile_cont(duration_ms, 0.9) AS p90_ms \
         FROM spans WHERE {} GROUP BY 1, 2, 3 ORDER BY calls DESC, 1, 2",
        p.filter()
    );
    let mut nodes: BTreeMap<String, &'static str> = BTreeMap::new();
    let edges: Vec<Value> = rows(&engine.internal(&sql).await?)?
        .into_iter()
        .map(|mut r| {
            let source = take(&mut r, "source");
            let target = take(&mut r, "target");
            let kind = if take(&mut r, "target_kind") == json!("provider") {
                "provider"
            } else {
                "workload"
            };
            nodes
                .entry(source.as_str().unwrap_or("unknown").to_string())
                .or_insert("workload");
            nodes.insert(target.as_str().unwrap_or("unknown").to_string(), kind);
            let calls = take(&mut r, "calls");
            let errors = take(&mut r, "errors");
            json!({"source": source, "target": target, "provider": take(&mut r, "provider"),
                   "error_rate": ratio(&errors, &calls), "calls": calls, "errors": errors,
                   "p90_ms": take(&mut r, "p90_ms")})
        })
        .collect();
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|(id, kind)| json!({"id": id, "kind": kind}))
        .collect();
    Ok(json!({"window": p.window(), "nodes": nodes, "edges": edges}))
}

/// `split`: the dimension a time series or histogram is broken down by, if any.
fn split_of(p: &Params) -> Result<Option<Dimension>> {
    p.get("split")
        .map(|s| {
            Dimension::parse(s).map_err(|_| {
                bad(format!(
                    "split: unknown dimension {s:?}; use model, provider, service or operation"
                ))
            })
        })
        .transpose()
}

/// `top`: how many groups a split keeps (the busiest).
fn top_of(p: &Params) -> Result<usize> {
    match p.get("top") {
        None => Ok(5),
        Some(t) => t
            .parse()
            .ok()
            .filter(|n| (1..=20).contains(n))
            .ok_or_else(|| bad(format!("top: {t:?} is not a number from 1 to 20"))),
    }
}

/// The busiest `top` values of `dim` in the window, and the SQL condition that keeps only them.
async fn top_groups(
    engine: &QueryEngine,
    p: &Params,
    dim: Dimension,
    top: usize,
) -> Result<(Vec<Value>, String)> {
    let col = dim.column();
    let sql = format!(
        "SELECT {col} AS grp, count(*) AS calls FROM spans WHERE {} GROUP BY 1 ORDER BY calls DESC, 1 LIMIT {top}",
        p.filter()
    );
    let groups: Vec<Value> = rows(&engine.internal(&sql).await?)?
        .into_iter()
        .map(|mut r| take(&mut r, "grp"))
        .collect();
    let values: Vec<String> = groups
        .iter()
        .filter_map(|g| g.as_str().map(quote))
        .collect();
    let mut parts = Vec::new();
    if !values.is_empty() {
        parts.push(format!("{col} IN ({})", values.join(", ")));
    }
    if groups.iter().any(Value::is_null) {
        parts.push(format!("{col} IS NULL"));
    }
    let condition = if parts.is_empty() {
        "FALSE".to_string()
    } else {
        format!("({})", parts.join(" OR "))
    };
    Ok((groups, condition))
}

/// Steps a time axis snaps to, in seconds.
const NICE_STEPS: &[u64] = &[
    1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
    604800,
];

/// The step of a time series: as asked (at most 10 000 points), or the smallest nice step giving at most
/// 120 points over the window.
fn series_step(p: &Params) -> Result<u64> {
    let window_ns = p.to_ns.abs_diff(p.from_ns);
    match p.get("step") {
        Some(s) => {
            let d = humantime::parse_duration(s).map_err(|e| bad(format!("step: {s:?} ({e})")))?;
            if d.as_secs() < 1 {
                return Err(bad("step: at least 1s"));
            }
            let points = u128::from(window_ns) / d.as_nanos().max(1);
            if points > 10_000 {
                return Err(bad(format!(
                    "step: {s} gives {points} points over this window; at most 10000"
                )));
            }
            Ok(d.as_secs())
        }
        None => {
            let secs = window_ns / 1_000_000_000;
            Ok(NICE_STEPS
                .iter()
                .copied()
                .find(|step| secs / step <= 120)
                .unwrap_or_else(|| secs.div_ceil(120).max(1)))
        }
    }
}

/// The aggregates of one time bucket (or of the whole window).
const SERIES_METRICS: &str = "count(*) AS calls, count(*) FILTER (WHERE error_type IS NOT NULL OR http_status >= 400) AS errors, \
    quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.9) AS p90_ms, \
    quantile_cont(duration_ms, 0.99) AS p99_ms, quantile_cont(ttft_ms, 0.5) AS ttft_p50_ms, \
    quantile_cont(ttft_ms, 0.9) AS ttft_p90_ms, sum(input_tokens) AS input_tokens, \
    sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd";

const SERIES_FIELDS: &[&str] = &[
    "calls",
    "errors",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "ttft_p50_ms",
    "ttft_p90_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
];

/// Sums over no rows are NULL in SQL; in a series they are zero.
fn zero_missing_sums(row: &mut Map<String, Value>) {
    for k in ["input_tokens", "output_tokens", "cost_usd"] {
        if row.get(k).is_none_or(Value::is_null) {
            row.insert(k.into(), json!(0));
        }
    }
}

/// A point with no calls: counts are zero, percentiles unknown.
fn empty_point(t: String) -> Map<String, Value> {
    let mut point = Map::new();
    point.insert("t".into(), json!(t));
    for f in SERIES_FIELDS {
        let zero = matches!(
            *f,
            "calls" | "errors" | "input_tokens" | "output_tokens" | "cost_usd"
        );
        point.insert((*f).into(), if zero { json!(0) } else { Value::Null });
    }
    point.insert("error_rate".into(), Value::Null);
    point
}

/// GET /v1/explore/timeseries: calls, errors, latency and TTFT percentiles, tokens and cost per time
/// bucket, for the whole selection or split by a dimension; every bucket of the window is present.
pub async fn timeseries(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let step = series_step(p)?;
    let split = split_of(p)?;
    let top = top_of(p)?;
    let f = p.filter();
    let total_sql = format!(
        "SELECT {SERIES_METRICS}, quantile_cont(ttft_ms, 0.99) AS ttft_p99_ms, \
         count(DISTINCT request_model) AS models, count(DISTINCT service_name) AS services FROM spans WHERE {f}"
    );
    let mut total = rows(&engine.internal(&total_sql).await?)?
        .into_iter()
        .next()
        .unwrap_or_default();
    let errors = total.get("errors").cloned().unwrap_or(Value::Null);
    let calls = total.get("calls").cloned().unwrap_or(Value::Null);
    total.insert("error_rate".into(), ratio(&errors, &calls));
    zero_missing_sums(&mut total);

    let step_ns = i64::try_from(step)
        .unwrap_or(i64::MAX / 2)
        .saturating_mul(1_000_000_000);
    let first = p
        .from_ns
        .div_euclid(step_ns)
        .checked_mul(step_ns)
        .ok_or_else(|| bad("from: too far in the past for a time series"))?;
    let buckets: Vec<i64> = (0..)
        .map(|i: i64| first.saturating_add(i.saturating_mul(step_ns)))
        .take_while(|t| *t < p.to_ns)
        .take(10_001)
        .collect();
    let bin = format!(
        "CAST(date_bin(INTERVAL '{step} seconds', start_time, TIMESTAMP '1970-01-01T00:00:00Z') AS BIGINT)"
    );
    let (groups, sql) = match split {
        Some(dim) => {
            let (groups, keep) = top_groups(engine, p, dim, top).await?;
            let sql = format!(
                "SELECT {} AS grp, {bin} AS bucket_ns, {SERIES_METRICS} FROM spans WHERE {f} AND {keep} \
                 GROUP BY 1, 2 ORDER BY 1, 2",
                dim.column()
            );
            (groups, sql)
        }
        None => (
            vec![Value::Null],
            format!(
                "SELECT NULL AS grp, {bin} AS bucket_ns, {SERIES_METRICS} FROM spans WHERE {f} GROUP BY 2 ORDER BY 2"
            ),
        ),
    };
    // The buckets with rows, per group (keyed by the group's JSON text, as `groups` are).
    let mut found: HashMap<String, HashMap<i64, Map<String, Value>>> = HashMap::new();
    for mut row in rows(&engine.internal(&sql).await?)? {
        let group = take(&mut row, "grp").to_string();
        let Some(bucket) = take(&mut row, "bucket_ns").as_i64() else {
            continue;
        };
        found.entry(group).or_default().insert(bucket, row);
    }
    let series: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let mut rows_of_group = found.remove(&group.to_string()).unwrap_or_default();
            let mut group_calls = 0u64;
            let points: Vec<Value> = buckets
                .iter()
                .map(|&b| {
                    let mut point = empty_point(rfc3339(b));
                    if let Some(row) = rows_of_group.remove(&b) {
                        point.extend(row);
                        zero_missing_sums(&mut point);
                        let rate = ratio(
                            point.get("errors").unwrap_or(&Value::Null),
                            point.get("calls").unwrap_or(&Value::Null),
                        );
                        point.insert("error_rate".into(), rate);
                    }
                    group_calls += point.get("calls").and_then(Value::as_u64).unwrap_or(0);
                    Value::Object(point)
                })
                .collect();
            json!({"group": group, "calls": group_calls, "points": points})
        })
        .collect();
    Ok(json!({
        "window": p.window(), "step_seconds": step, "split": split.map(Dimension::column),
        "total": total, "series": series,
    }))
}

/// What `/v1/explore/histogram` can count, and its bucket upper bounds.
fn histogram_metric(name: &str) -> Result<(&'static str, &'static [f64])> {
    const MS: &[f64] = &[
        50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 7500.0,
        10000.0, 15000.0, 30000.0, 60000.0,
    ];
    const TOKENS: &[f64] = &[
        16.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0,
        131072.0,
    ];
    const USD: &[f64] = &[
        0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
    ];
    Ok(match name {
        "duration_ms" => ("duration_ms", MS),
        "ttft_ms" => ("ttft_ms", MS),
        "input_tokens" => ("input_tokens", TOKENS),
        "output_tokens" => ("output_tokens", TOKENS),
        "cost_usd" => ("cost_usd", USD),
        other => {
            return Err(bad(format!(
                "metric: {other:?} is not one of duration_ms, ttft_ms, input_tokens, output_tokens, cost_usd"
            )));
        }
    })
}

/// GET /v1/explore/histogram: how a metric's values spread over fixed buckets, per group.
pub async fn histogram(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let (column, bounds) = histogram_metric(p.get("metric").unwrap_or("duration_ms"))?;
    let split = split_of(p)?;
    let top = top_of(p)?;
    let f = p.filter();
    let mut case = String::from("CASE");
    for (i, bound) in bounds.iter().enumerate() {
        case.push_str(&format!(" WHEN {column} <= {bound:?} THEN {i}"));
    }
    case.push_str(&format!(" ELSE {} END", bounds.len()));
    let (groups, sql) = match split {
        Some(dim) => {
            let (groups, keep) = top_groups(engine, p, dim, top).await?;
            let sql = format!(
                "SELECT {} AS grp, {case} AS bucket, count(*) AS n FROM spans \
                 WHERE {f} AND {keep} AND {column} IS NOT NULL GROUP BY 1, 2",
                dim.column()
            );
            (groups, sql)
        }
        None => (
            vec![Value::Null],
            format!(
                "SELECT NULL AS grp, {case} AS bucket, count(*) AS n FROM spans WHERE {f} AND {column} IS NOT NULL GROUP BY 2"
            ),
        ),
    };
    let mut counts: HashMap<String, Vec<u64>> = groups
        .iter()
        .map(|g| (g.to_string(), vec![0u64; bounds.len() + 1]))
        .collect();
    for mut row in rows(&engine.internal(&sql).await?)? {
        let group = take(&mut row, "grp").to_string();
        let (Some(bucket), Some(n)) = (
            take(&mut row, "bucket").as_u64(),
            take(&mut row, "n").as_u64(),
        ) else {
            continue;
        };
        if let Some(slot) = counts
            .get_mut(&group)
            .and_then(|c| c.get_mut(bucket as usize))
        {
            *slot = n;
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let c = counts.remove(&g.to_string()).unwrap_or_default();
            json!({"group": g, "calls": c.iter().sum::<u64>(), "counts": c})
        })
        .collect();
    Ok(json!({
        "window": p.window(), "metric": column, "split": split.map(Dimension::column),
        "boundaries": bounds, "groups": groups,
    }))
}

/// GET /v1/explore/dimensions: the values of each dimension in the window with their calls (busiest
/// first, at most 200 each), for filter pickers.
pub async fn dimensions(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let mut out = Map::new();
    for (name, dim) in [
        ("model", Dimension::Model),
        ("provider", Dimension::Provider),
        ("service", Dimension::Service),
        ("operation", Dimension::Operation),
    ] {
        let col = dim.column();
        let sql = format!(
            "SELECT {col} AS value, count(*) AS calls FROM spans WHERE {} AND {col} IS NOT NULL \
             GROUP BY 1 ORDER BY calls DESC, 1 LIMIT 200",
            p.filter()
        );
        out.insert(
            name.into(),
            Value::Array(
                rows(&engine.internal(&sql).await?)?
                    .into_iter()
                    .map(Value::Object)
                    .collect(),
            ),
        );
    }
    Ok(json!({"window": p.window(), "dimensions": out}))
}

/// The condition for `search`: a case-insensitive substring of ids, service, model, error and content.
fn search_condition(text: &str) -> Result<String> {
    let text = text.trim();
    if text.chars().count() > 200 {
        return Err(bad("search: at most 200 characters"));
    }
    let needle = quote(&text.to_lowercase());
    let exact = quote(text);
    let fields = [
        "service_name",
        "request_model",
        "response_model",
        "error_type",
        "error_message",
        "system_instructions",
        "input_messages",
        "output_messages",
    ];
    let mut parts = vec![format!("trace_id = {exact}"), format!("span_id = {exact}")];
    parts.extend(
        fields
            .iter()
            .map(|f| format!("coalesce(strpos(lower({f}), {needle}), 0) > 0")),
    );
    Ok(format!("({})", parts.join(" OR ")))
}

/// The metrics an alert rule can watch.
pub const ALERT_METRICS: &[&str] = &[
    "error_rate",
    "sla_breach_rate",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "ttft_p90_ms",
    "calls",
    "errors",
    "cost_usd",
];

/// One number over the window and filters of `p`: the SQL an alert rule on `metric` runs. NULL when the
/// window has no calls (for rates and percentiles).
pub fn metric_sql(p: &Params, metric: &str, threshold_ms: Option<f64>) -> Result<String> {
    let expr = match metric {
        "error_rate" => format!(
            "CAST(count(*) FILTER (WHERE {ERROR}) AS DOUBLE) / CAST(nullif(count(*), 0) AS DOUBLE)"
        ),
        "sla_breach_rate" => {
            let t = threshold_ms
                .filter(|t| t.is_finite() && *t > 0.0)
                .ok_or_else(|| bad("sla_breach_rate needs threshold_ms, a positive number"))?;
            format!(
                "CAST(count(*) FILTER (WHERE duration_ms > {t:?}) AS DOUBLE) / CAST(nullif(count(*), 0) AS DOUBLE)"
            )
        }
        "p50_ms" => "quantile_cont(duration_ms, 0.5)".into(),
        "p90_ms" => "quantile_cont(duration_ms, 0.9)".into(),
        "p99_ms" => "quantile_cont(duration_ms, 0.99)".into(),
        "ttft_p90_ms" => "quantile_cont(ttft_ms, 0.9)".into(),
        "calls" => "count(*)".into(),
        "errors" => format!("count(*) FILTER (WHERE {ERROR})"),
        "cost_usd" => "coalesce(sum(cost_usd), 0)".into(),
        other => {
            return Err(bad(format!(
                "metric: {other:?} is not one of {}",
                ALERT_METRICS.join(", ")
            )));
        }
    };
    Ok(format!(
        "SELECT CAST({expr} AS DOUBLE) AS value FROM spans WHERE {}",
        p.filter()
    ))
}

fn check_id(id: &str, what: &str) -> Result<()> {
    if (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(bad(format!(
            "{what}: expected 1 to 64 characters of [0-9A-Za-z_-]"
        )))
    }
}

/// GET /v1/traces/{trace_id}: every span of the trace, with content, oldest first.
pub async fn trace(engine: &QueryEngine, trace_id: &str) -> Result<Value> {
    check_id(trace_id, "trace_id")?;
    let sql = format!(
        "SELECT * FROM spans WHERE trace_id = {} ORDER BY start_time, span_id",
        quote(trace_id)
    );
    let spans = rows(&engine.internal(&sql).await?)?;
    if spans.is_empty() {
        return Err(ExploreError::NotFound(format!(
            "no spans with trace_id {trace_id}"
        )));
    }
    Ok(json!({"trace_id": trace_id, "spans": spans}))
}

/// GET /v1/spans/{span_id}
pub async fn span(engine: &QueryEngine, span_id: &str) -> Result<Value> {
    check_id(span_id, "span_id")?;
    let sql = format!(
        "SELECT * FROM spans WHERE span_id = {} ORDER BY start_time LIMIT 1",
        quote(span_id)
    );
    rows(&engine.internal(&sql).await?)?
        .into_iter()
        .next()
        .map(Value::Object)
        .ok_or_else(|| ExploreError::NotFound(format!("no span with span_id {span_id}")))
}

const LIST_COLUMNS: &str = "trace_id, span_id, start_time, duration_ms, ttft_ms, service_name, provider, operation, \
    request_model, response_model, streaming, input_tokens, output_tokens, cost_usd, http_status, error_type";

/// GET /v1/spans: filtered, sorted (newest or slowest first), paginated by an opaque cursor.
pub async fn list(engine: &QueryEngine, p: &Params) -> Result<Value> {
    let limit: usize = match p.get("limit") {
        None => 50,
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| bad("limit: 1 to 1000"))?,
    };
    let slowest = match p.get("sort") {
        None | Some("newest") => false,
        Some("slowest") => true,
        Some(other) => return Err(bad(format!("sort: {other:?} is not newest or slowest"))),
    };
    let mut filter = p.filter();
    match p.get("errors") {
        None | Some("false") => {}
        Some("true") => filter.push_str(&format!(" AND ({ERROR})")),
        Some(other) => {
            return Err(bad(format!(
                "errors: expected true or false, found {other:?}"
            )));
        }
    }
    if let Some(text) = p.get("search") {
        filter.push_str(&format!(" AND {}", search_condition(text)?));
    }
    if let Some(cursor) = p.get("cursor") {
        let (key, id) = decode_cursor(cursor, slowest)?;
        filter.push_str(&if slowest && key == "NULL" {
            // Past the last span with a duration: only the ones without (sorted last) remain.
            format!(" AND (duration_ms IS NULL AND span_id < {})", quote(&id))
        } else if slowest {
            format!(
                " AND (duration_ms < {key} OR (duration_ms = {key} AND span_id < {}) OR duration_ms IS NULL)",
                quote(&id)
            )
        } else {
            format!(
                " AND (start_time < {key} OR (start_time = {key} AND span_id < {}))",
                quote(&id)
            )
        });
    }
    let order = if slowest {
        "duration_ms DESC NULLS LAST, span_id DESC"
    } else {
        "start_time DESC, span_id DESC"
    };
    let sql = format!(
        "SELECT {LIST_COLUMNS}, CAST(start_time AS BIGINT) AS start_ns FROM spans WHERE {filter} ORDER BY {order} LIMIT {}",
        limit + 1
    );
    let mut spans = rows(&engine.internal(&sql).await?)?;
    let more = spans.len() > limit;
    spans.truncate(limit);
    let next_cursor = match spans.last() {
        Some(last) if more => Some(encode_cursor(last, slowest)),
        _ => None,
    };
    for s in &mut spans {
        s.remove("start_ns");
    }
    Ok(json!({"window": p.window(), "spans": spans, "next_cursor": next_cursor}))
}

fn encode_cursor(row: &Map<String, Value>, slowest: bool) -> String {
    let key = if slowest {
        row.get("duration_ms")
    } else {
        row.get("start_ns")
    };
    let text = format!(
        "{}|{}",
        key.cloned().unwrap_or(Value::Null),
        row.get("span_id").and_then(|v| v.as_str()).unwrap_or("")
    );
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Returns (SQL literal of the sort key, span id).
fn decode_cursor(cursor: &str, slowest: bool) -> Result<(String, String)> {
    let invalid = || {
        bad(
            "cursor: not a cursor from this endpoint (use next_cursor as given, with the same sort)",
        )
    };
    if !cursor.is_ascii() || !cursor.len().is_multiple_of(2) || cursor.len() > 512 {
        return Err(invalid());
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (key, id) = text.split_once('|').ok_or_else(invalid)?;
    check_id(id, "cursor").map_err(|_| invalid())?;
    let key = if slowest && key == "null" {
        "NULL".to_string()
    } else if slowest {
        key.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(|v| format!("{v:?}"))
            .ok_or_else(invalid)?
    } else {
        key.parse::<i64>().map(ts_literal).map_err(|_| invalid())?
    };
    Ok((key, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn times_parse_in_every_form() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s| parse_time(s, now, "from").unwrap();
        assert_eq!(at("-1h"), at("2026-11-28T11:00:00Z"));
        assert_eq!(at("now"), at("2026-11-28T12:00:00Z"));
        assert_eq!(at("-90m"), at("2026-11-28T10:30:00+00:00"));
        assert_eq!(at("1000"), 1000);
        assert!(parse_time("yesterday", now, "from").is_err());
    }

    #[test]
    fn filters_are_typed_and_quoted() {
        let now = Utc::now();
        let p = Params::parse(
            &q(&[
                ("model", "o'brien"),
                ("status", "4xx"),
                ("streaming", "true"),
            ]),
            &[],
            now,
        )
        .unwrap();
        let f = p.filter();
        assert!(f.contains("request_model = 'o''brien'"), "{f}");
        assert!(f.contains("http_status >= 400 AND http_status < 500"));
        assert!(f.contains("streaming = true"));
        assert!(
            Params::parse(&q(&[("sql", "1")]), &[], now)
                .unwrap_err()
                .to_string()
                .contains("unknown parameter")
        );
        assert!(Params::parse(&q(&[("status", "6xx")]), &[], now).is_err());
        assert!(Params::parse(&q(&[("by", "pid")]), &[], now).is_err());
        assert!(Params::parse(&q(&[("from", "-1h"), ("to", "-2h")]), &[], now).is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let mut row = Map::new();
        row.insert("start_ns".into(), json!(1_700_000_000_000_000_000i64));
        row.insert("duration_ms".into(), json!(12.5));
        row.insert("span_id".into(), json!("abc"));
        let c = encode_cursor(&row, false);
        let (key, id) = decode_cursor(&c, false).unwrap();
        assert_eq!(id, "abc");
        assert!(key.starts_with("'2023-11-14T22:13:20"), "{key}");
        let (key, _) = decode_cursor(&encode_cursor(&row, true), true).unwrap();
        assert_eq!(key, "12.5");
        let evil: String = "1|x' OR 1=1 --"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(decode_cursor(&evil, false).is_err());
        assert!(decode_cursor("zz", false).is_err());
    }

    #[test]
    fn quantile_labels() {
        assert_eq!(parse_quantiles(None).unwrap(), vec![0.5, 0.9, 0.99]);
        assert_eq!(q_label(0.99), "p99");
        assert_eq!(q_label(0.999), "p99.9");
        assert!(parse_quantiles(Some("0")).is_err());
        assert!(parse_quantiles(Some("1.5")).is_err());
    }
}
