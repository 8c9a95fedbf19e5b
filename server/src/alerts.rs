//! Alert rules: a query (a metric of the explore API over filters, or SQL giving one number), a condition,
//! a window, a for-duration and an evaluation interval; webhooks notified when a rule fires and when it
//! resolves. Rules, their current state and their history are JSON objects in Lumen's own object store
//! (`_lumen/alerts/{rules,status,history}/…`), so they live in the user's account and survive restarts
//! (a rule that was firing stays firing: no second notification after a restart).
//!
//! States: `ok` → `pending` (condition true, for-duration not yet over) → `firing` → `ok` (resolved).
//! A window without data (a rate or percentile of no calls) does not meet the condition. A query that
//! fails puts an `ok`/`pending` rule in `error`; a firing rule stays firing and records the error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Float64Array};
use arrow::datatypes::DataType;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use object_store::{ObjectStore, path::Path as StorePath};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use lumen_query::explore::{ALERT_METRICS, Params, metric_sql};
use lumen_query::{QueryEngine, QueryResult};

use crate::dashboards::{now_rfc3339, substitute_window};
use crate::http::{ApiError, AppState, authorize};
use crate::objects::{JsonObjects, ObjectError, json_body};

const RULES: &str = "_lumen/alerts/rules";
const STATUS: &str = "_lumen/alerts/status";
const HISTORY: &str = "_lumen/alerts/history";
/// Events kept per rule; older ones are deleted as new ones come.
const HISTORY_KEPT: usize = 200;
const MAX_BODY: usize = 256 << 10;
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RuleQuery {
    /// A metric of the calls in the window that match the filters.
    Metric {
        metric: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold_ms: Option<f64>,
        #[serde(default)]
        filters: Filters,
    },
    /// SQL giving one number (first column of the first row); `$from` and `$to` are the window.
    Sql { sql: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Op {
    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Above => value > threshold,
            Op::AtLeast => value >= threshold,
            Op::Below => value < threshold,
            Op::AtMost => value <= threshold,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Above => ">",
            Op::AtLeast => ">=",
            Op::Below => "<",
            Op::AtMost => "<=",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub op: Op,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    /// Lumen's own JSON: status, rule, value, threshold, times.
    #[default]
    Generic,
    /// `{"text": …, "blocks": […]}`, what Slack (and Mattermost, Rocket.Chat) incoming webhooks take.
    Slack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub url: String,
    #[serde(default)]
    pub format: NotifyFormat,
}

fn default_for() -> String {
    "0s".into()
}
fn default_every() -> String {
    "30s".into()
}
fn yes() -> bool {
    true
}

/// What a client sends to create or replace a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub query: RuleQuery,
    pub condition: Condition,
    pub window: String,
    #[serde(rename = "for", default = "default_for")]
    pub for_duration: String,
    #[serde(default = "default_every")]
    pub every: String,
    #[serde(default)]
    pub notify: Vec<Notify>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    #[serde(flatten)]
    pub body: RuleBody,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Ok,
    Pending,
    Firing,
    Error,
}

impl AlertState {
    fn name(self) -> &'static str {
        match self {
            AlertState::Ok => "ok",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub state: AlertState,
    pub value: Option<f64>,
    /// When the current state began.
    pub since: String,
    #[serde(default)]
    pub since_ns: i64,
    pub last_evaluated: Option<String>,
    pub error: Option<String>,
}

impl Status {
    fn new(now_ns: i64) -> Self {
        Status {
            state: AlertState::Ok,
            value: None,
            since: rfc3339(now_ns),
            since_ns: now_ns,
            last_evaluated: None,
            error: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifyResult {
    pub url: String,
    pub format: NotifyFormat,
    pub ok: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// One change of state, with the notifications it sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    pub rule_id: String,
    pub rule_name: String,
    pub from: AlertState,
    pub to: AlertState,
    pub value: Option<f64>,
    pub threshold: f64,
    pub op: Op,
    pub error: Option<String>,
    pub notifications: Vec<NotifyResult>,
}

fn rfc3339(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn duration(text: &str, name: &str, min: Duration, max: Duration) -> Result<Duration, ObjectError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        ObjectError::Invalid(format!("{name}: {text:?} is not a duration like 5m ({e})"))
    })?;
    if d < min || d > max {
        return Err(ObjectError::Invalid(format!(
            "{name}: {text} is outside {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )));
    }
    Ok(d)
}

/// The durations of a checked rule.
struct Timing {
    window: Duration,
    for_duration: Duration,
    every: Duration,
}

fn timing(body: &RuleBody) -> Result<Timing, ObjectError> {
    Ok(Timing {
        window: duration(
            &body.window,
            "window",
            Duration::from_secs(1),
            Duration::from_secs(31 * 86400),
        )?,
        for_duration: duration(
            &body.for_duration,
            "for",
            Duration::ZERO,
            Duration::from_secs(86400),
        )?,
        every: duration(
            &body.every,
            "every",
            Duration::from_secs(1),
            Duration::from_secs(86400),
        )?,
    })
}

/// Checks everything a rule says, so evaluation later fails only for reasons of the data or the store.
pub fn validate(body: &RuleBody, max_sql: usize) -> Result<(), ObjectError> {
    let invalid = |m: String| ObjectError::Invalid(m);
    let name_len = body.name.trim().chars().count();
    if !(1..=200).contains(&name_len) {
        return Err(invalid("name: 1 to 200 characters".into()));
    }
    if body.description.chars().count() > 2000 {
        return Err(invalid("description: at most 2000 characters".into()));
    }
    if !body.condition.threshold.is_finite() {
        return Err(invalid("condition.threshold: a finite number".into()));
    }
    timing(body)?;
    match &body.query {
        RuleQuery::Metric {
            metric,
            threshold_ms,
            filters,
        } => {
            if !ALERT_METRICS.contains(&metric.as_str()) {
                return Err(invalid(format!(
                    "query.metric: {metric:?} is not one of {}",
                    ALERT_METRICS.join(", ")
                )));
            }
            if threshold_ms.is_some() && metric != "sla_breach_rate" {
                return Err(invalid(
                    "query.threshold_ms: only for the sla_breach_rate metric".into(),
                ));
            }
            metric_sql(&params(filters, 0, 1)?, metric, *threshold_ms)
                .map_err(|e| invalid(format!("query: {e}")))?;
        }
        RuleQuery::Sql { sql } => {
            if sql.trim().is_empty() || sql.len() > max_sql {
                return Err(invalid(format!(
                    "query.sql: 1 to {max_sql} bytes of SQL giving one number"
                )));
            }
            lumen_query::check_read_only(&substitute_window(sql, 0, 1))
                .map_err(|e| invalid(format!("query.sql: {e}")))?;
        }
    }
    if body.notify.len() > 10 {
        return Err(invalid("notify: at most 10 webhooks".into()));
    }
    for (i, n) in body.notify.iter().enumerate() {
        let url = url::Url::parse(&n.url)
            .map_err(|e| invalid(format!("notify[{i}].url: {:?} is not a URL ({e})", n.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(format!(
                "notify[{i}].url: {:?} must be an http:// or https:// URL",
                n.url
            )));
        }
    }
    Ok(())
}

/// The explore parameters of a metric rule over [from, to).
fn params(filters: &Filters, from_ns: i64, to_ns: i64) -> Result<Params, ObjectError> {
    let mut q: HashMap<String, String> = HashMap::new();
    q.insert("from".into(), from_ns.to_string());
    q.insert("to".into(), to_ns.to_string());
    for (k, v) in [
        ("model", &filters.model),
        ("provider", &filters.provider),
        ("service", &filters.service),
        ("operation", &filters.operation),
    ] {
        if let Some(v) = v {
            q.insert(k.into(), v.clone());
        }
    }
    Params::parse(&q, &[], Utc::now())
        .map_err(|e| ObjectError::Invalid(format!("query.filters: {e}")))
}

/// The first column of the first row as a number; None for no rows or NULL.
fn first_number(result: &QueryResult) -> Result<Option<f64>, String> {
    let Some(batch) = result.batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    if batch.num_columns() == 0 {
        return Err("the query gives no columns".into());
    }
    // Not "safe": text that is no number is an error, not NULL (which would read as "no data").
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    let column = arrow::compute::cast_with_options(batch.column(0), &DataType::Float64, &options)
        .map_err(|e| format!("the first column is not a number: {e}"))?;
    let numbers = column
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or("the first column is not a number")?;
    Ok((!numbers.is_null(0)).then(|| numbers.value(0)))
}

/// Runs a rule's query over the window ending at `now_ns`.
async fn measure(
    engine: &QueryEngine,
    rule: &RuleBody,
    now_ns: i64,
) -> Result<Option<f64>, String> {
    let window = timing(rule).map_err(|e| e.to_string())?.window;
    let from_ns = now_ns.saturating_sub(i64::try_from(window.as_nanos()).unwrap_or(i64::MAX));
    let result = match &rule.query {
        RuleQuery::Metric {
            metric,
            threshold_ms,
            filters,
        } => {
            let sql = metric_sql(
                &params(filters, from_ns, now_ns).map_err(|e| e.to_string())?,
                metric,
                *threshold_ms,
            )
            .map_err(|e| e.to_string())?;
            engine.internal(&sql).await
        }
        RuleQuery::Sql { sql } => {
            engine
                .query_queued(&substitute_window(sql, from_ns, now_ns))
                .await
        }
    }
    .map_err(|e| e.to_string())?;
    first_number(&result)
}

/// The message of a notification, shared by both payloads.
fn message(rule: &Rule, to: AlertState, value: Option<f64>) -> String {
    let value = value.map_or("no data".to_string(), |v| format!("{v:.4}"));
    let c = &rule.body.condition;
    match to {
        AlertState::Firing => format!(
            "[FIRING] {}: {value} {} {} over the last {}",
            rule.body.name,
            c.op.symbol(),
            c.threshold,
            rule.body.window
        ),
        _ => format!(
            "[RESOLVED] {}: {value} (condition {} {} over the last {} no longer holds)",
            rule.body.name,
            c.op.symbol(),
            c.threshold,
            rule.body.window
        ),
    }
}

/// Text for Slack's mrkdwn: `&`, `<` and `>` are its control characters (links, mentions).
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn payload(format: NotifyFormat, rule: &Rule, event: &Event, since: &str) -> Value {
    let status = if event.to == AlertState::Firing {
        "firing"
    } else {
        "resolved"
    };
    let text = message(rule, event.to, event.value);
    match format {
        NotifyFormat::Generic => json!({
            "source": "lumen",
            "status": status,
            "rule": {"id": rule.id, "name": rule.body.name, "description": rule.body.description,
                     "query": rule.body.query, "window": rule.body.window, "for": rule.body.for_duration},
            "value": event.value,
            "condition": {"op": event.op.symbol(), "threshold": event.threshold},
            "at": event.at,
            "firing_since": since,
            "message": text,
        }),
        NotifyFormat::Slack => {
            let icon = if event.to == AlertState::Firing {
                ":rotating_light:"
            } else {
                ":white_check_mark:"
            };
            let text = slack_escape(&text);
            json!({
                "text": format!("{icon} {text}"),
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} *{}*", text)}},
                    {"type": "context", "elements": [{"type": "mrkdwn",
                        "text": format!("Lumen alert `{}` · {} · at {}", rule.id, status, event.at)}]}
                ]
            })
        }
    }
}

struct Entry {
    rule: Rule,
    status: Status,
    next_due_ns: i64,
}

/// The rules of one object store, their states, and the evaluator.
///
/// Locking: `edits` serialises changes of the rule set (create, replace, delete, reload from the store);
/// a rule's own lock is held by an evaluation from reading the rule to recording its outcome, and by an
/// edit of that rule, so an edit never races an evaluation of the rule it changes. `entries` is only held
/// briefly, never across a query, a webhook or a store call.
pub struct Alerts {
    objects: JsonObjects,
    entries: Mutex<HashMap<String, Entry>>,
    edits: Mutex<()>,
    rule_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    client: reqwest::Client,
}

fn rule_path(id: &str) -> StorePath {
    StorePath::from(format!("{RULES}/{id}.json"))
}
fn status_path(id: &str) -> StorePath {
    StorePath::from(format!("{STATUS}/{id}.json"))
}
fn history_prefix(id: &str) -> StorePath {
    StorePath::from(format!("{HISTORY}/{id}"))
}

/// What evaluating a rule's query decided: the next state, and the status to keep.
fn decide(
    rule: &RuleBody,
    old: &Status,
    measured: &Result<Option<f64>, String>,
    now: i64,
) -> Status {
    let mut status = old.clone();
    status.last_evaluated = Some(rfc3339(now));
    let c = &rule.condition;
    let for_ns = timing(rule)
        .map(|t| i64::try_from(t.for_duration.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let next = match measured {
        Err(e) => {
            status.error = Some(e.clone());
            if old.state == AlertState::Firing {
                AlertState::Firing
            } else {
                AlertState::Error
            }
        }
        Ok(value) => {
            status.error = None;
            status.value = *value;
            let holds = value.is_some_and(|v| c.op.holds(v, c.threshold));
            match (old.state, holds) {
                (AlertState::Firing, true) => AlertState::Firing,
                (AlertState::Pending, true) if now.saturating_sub(old.since_ns) >= for_ns => {
                    AlertState::Firing
                }
                (AlertState::Pending, true) => AlertState::Pending,
                (_, true) if for_ns == 0 => AlertState::Firing,
                (_, true) => AlertState::Pending,
                (_, false) => AlertState::Ok,
            }
        }
    };
    if next != old.state {
        status.state = next;
        status.since = rfc3339(now);
        status.since_ns = now;
    }
    status
}

impl Alerts {
    /// Loads the rules and their last states from the store.
    pub async fn load(store: Arc<dyn ObjectStore>) -> Result<Self, ObjectError> {
        let client = reqwest::Client::builder()
            .timeout(NOTIFY_TIMEOUT)
            // A webhook answers itself; following redirects would let it point the server elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lumen/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ObjectError::Invalid(format!("webhook client: {e}")))?;
        let alerts = Alerts {
            objects: JsonObjects::new(store),
            entries: Mutex::new(HashMap::new()),
            edits: Mutex::new(()),
            rule_locks: std::sync::Mutex::new(HashMap::new()),
            client,
        };
        alerts.reload().await?;
        let rules = alerts.entries.lock().await.len();
        tracing::info!(rules, "alert rules loaded");
        Ok(alerts)
    }

    /// Brings the rules in memory in line with the store: rules another server added, changed or deleted.
    pub async fn reload(&self) -> Result<(), ObjectError> {
        let _edits = self.edits.lock().await;
        let stored = self
            .objects
            .read_all::<Rule>(&StorePath::from(RULES))
            .await?;
        let now = now_ns();
        let mut fresh = Vec::new();
        {
            let entries = self.entries.lock().await;
            for (id, rule) in &stored {
                let known = entries.get(id);
                if known.is_none_or(|e| e.rule.updated_at != rule.updated_at) {
                    fresh.push(id.clone());
                }
            }
        }
        let mut statuses = HashMap::new();
        for id in &fresh {
            let status = match self.objects.read::<Status>(&status_path(id)).await {
                Ok(Some(s)) => s,
                _ => Status::new(now),
            };
            statuses.insert(id.clone(), status);
        }
        let mut entries = self.entries.lock().await;
        let ids: std::collections::HashSet<String> =
            stored.iter().map(|(id, _)| id.clone()).collect();
        entries.retain(|id, _| ids.contains(id));
        for (id, rule) in stored {
            if let Some(status) = statuses.remove(&id) {
                let entry = entries.entry(id).or_insert_with(|| Entry {
                    rule: rule.clone(),
                    status: status.clone(),
                    next_due_ns: now,
                });
                entry.rule = rule;
                entry.next_due_ns = now;
                if entry.status.last_evaluated.is_none() {
                    entry.status = status;
                }
            }
        }
        Ok(())
    }

    fn rule_lock(&self, id: &str) -> Arc<Mutex<()>> {
        let mut locks = self
            .rule_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(id.to_string()).or_default().clone()
    }

    pub async fn list(&self) -> Vec<(Rule, Status)> {
        let entries = self.entries.lock().await;
        let mut out: Vec<(Rule, Status)> = entries
            .values()
            .map(|e| (e.rule.clone(), e.status.clone()))
            .collect();
        out.sort_by(|a, b| {
            a.0.body
                .name
                .to_lowercase()
                .cmp(&b.0.body.name.to_lowercase())
                .then_with(|| a.0.id.cmp(&b.0.id))
        });
        out
    }

    pub async fn get(&self, id: &str) -> Result<(Rule, Status), ObjectError> {
        self.entries
            .lock()
            .await
            .get(id)
            .map(|e| (e.rule.clone(), e.status.clone()))
            .ok_or_else(|| ObjectError::NotFound("alert rule", id.to_string()))
    }

    pub async fn create(&self, body: RuleBody) -> Result<(Rule, Status), ObjectError> {
        let _edits = self.edits.lock().await;
        let now = now_rfc3339();
        let rule = Rule {
            id: format!("a-{}", uuid::Uuid::now_v7().simple()),
            body,
            created_at: now.clone(),
            updated_at: now,
        };
        let status = Status::new(now_ns());
        self.objects.write(&status_path(&rule.id), &status).await?;
        // The rule last: a rule in the store always has its status.
        self.objects.write(&rule_path(&rule.id), &rule).await?;
        self.entries.lock().await.insert(
            rule.id.clone(),
            Entry {
                rule: rule.clone(),
                status: status.clone(),
                next_due_ns: now_ns(),
            },
        );
        Ok((rule, status))
    }

    /// Replaces a rule; it is evaluated again at once. Disabling a rule that is pending or firing
    /// resolves it (a firing one notifies), so nothing stays firing that nobody evaluates.
    pub async fn replace(&self, id: &str, body: RuleBody) -> Result<(Rule, Status), ObjectError> {
        let _edits = self.edits.lock().await;
        let lock = self.rule_lock(id);
        let _rule = lock.lock().await;
        let (old, status) = self.get(id).await?;
        let rule = Rule {
            id: id.to_string(),
            body,
            created_at: old.created_at,
            updated_at: now_rfc3339(),
        };
        self.objects.write(&rule_path(id), &rule).await?;
        {
            let mut entries = self.entries.lock().await;
            let entry = entries
                .get_mut(id)
                .ok_or_else(|| ObjectError::NotFound("alert rule", id.to_string()))?;
            entry.rule = rule.clone();
            entry.next_due_ns = now_ns();
        }
        let status = if !rule.body.enabled && status.state != AlertState::Ok {
            let now = now_ns();
            let mut resolved = status.clone();
            resolved.state = AlertState::Ok;
            resolved.since = rfc3339(now);
            resolved.since_ns = now;
            resolved.error = Some("the rule was disabled".into());
            self.settle(&rule, &status, resolved, now).await
        } else {
            status
        };
        Ok((rule, status))
    }

    pub async fn delete(&self, id: &str) -> Result<(), ObjectError> {
        let _edits = self.edits.lock().await;
        let lock = self.rule_lock(id);
        let _rule = lock.lock().await;
        self.get(id).await?;
        // The rule file first: once it is gone no server loads the rule again.
        self.objects.delete(&rule_path(id)).await?;
        self.entries.lock().await.remove(id);
        self.objects.delete(&status_path(id)).await?;
        for meta in self.objects.list(&history_prefix(id)).await? {
            self.objects.delete(&meta.location).await?;
        }
        Ok(())
    }

    /// The rule's changes of state, newest first.
    pub async fn history(&self, id: &str, limit: usize) -> Result<Vec<Event>, ObjectError> {
        self.get(id).await?;
        let mut metas = self.objects.list(&history_prefix(id)).await?;
        metas.reverse();
        let mut events = Vec::new();
        for meta in metas.into_iter().take(limit) {
            match self.objects.read::<Event>(&meta.location).await {
                Ok(Some(e)) => events.push(e),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "skipping an alert event"),
            }
        }
        Ok(events)
    }

    async fn record(&self, event: &Event, at_ns: i64) -> Result<(), ObjectError> {
        let prefix = history_prefix(&event.rule_id);
        let path = StorePath::from(format!("{prefix}/{at_ns:020}.json"));
        self.objects.write(&path, event).await?;
        let metas = self.objects.list(&prefix).await?;
        if metas.len() > HISTORY_KEPT {
            for meta in &metas[..metas.len() - HISTORY_KEPT] {
                self.objects.delete(&meta.location).await?;
            }
        }
        Ok(())
    }

    async fn notify(&self, rule: &Rule, event: &Event, since: &str) -> Vec<NotifyResult> {
        let mut results = Vec::new();
        for target in &rule.body.notify {
            let body = payload(target.format, rule, event, since);
            let outcome = self.client.post(&target.url).json(&body).send().await;
            let result = match outcome {
                Ok(r) => NotifyResult {
                    url: target.url.clone(),
                    format: target.format,
                    ok: r.status().is_success(),
                    status: Some(r.status().as_u16()),
                    error: (!r.status().is_success())
                        .then(|| format!("the webhook answered {}", r.status())),
                },
                Err(e) => NotifyResult {
                    url: target.url.clone(),
                    format: target.format,
                    ok: false,
                    status: None,
                    error: Some(e.to_string()),
                },
            };
            if !result.ok {
                tracing::warn!(rule = %rule.id, url = %target.url, error = ?result.error, "alert webhook failed");
            }
            results.push(result);
        }
        results
    }

    /// Makes `new` the rule's status: in memory first (so a store failure below can never cause a second
    /// notification for the same change), then, on a change of state, the webhooks, the history event and
    /// the status object. Store failures are logged; the state in memory stays right and is written again
    /// with the next change.
    async fn settle(&self, rule: &Rule, old: &Status, new: Status, now: i64) -> Status {
        if let Some(entry) = self.entries.lock().await.get_mut(&rule.id) {
            entry.status = new.clone();
        }
        let changed = new.state != old.state;
        if changed {
            let mut event = Event {
                at: rfc3339(now),
                rule_id: rule.id.clone(),
                rule_name: rule.body.name.clone(),
                from: old.state,
                to: new.state,
                value: new.value,
                threshold: rule.body.condition.threshold,
                op: rule.body.condition.op,
                error: new.error.clone(),
                notifications: Vec::new(),
            };
            let notifies = new.state == AlertState::Firing
                || (old.state == AlertState::Firing && new.state == AlertState::Ok);
            if notifies {
                let since = if new.state == AlertState::Firing {
                    new.since.clone()
                } else {
                    old.since.clone()
                };
                event.notifications = self.notify(rule, &event, &since).await;
            }
            tracing::info!(rule = %rule.id, name = %rule.body.name, from = old.state.name(), to = new.state.name(), value = ?new.value, "alert state changed");
            if let Err(e) = self.record(&event, now).await {
                tracing::warn!(rule = %rule.id, error = %e, "alert event not recorded");
            }
        }
        if (changed || new.error != old.error)
            && let Err(e) = self.objects.write(&status_path(&rule.id), &new).await
        {
            tracing::warn!(rule = %rule.id, error = %e, "alert status not written");
        }
        new
    }

    /// Evaluates one rule now and applies the state machine; answers the new status.
    pub async fn evaluate(&self, engine: &QueryEngine, id: &str) -> Result<Status, ObjectError> {
        let lock = self.rule_lock(id);
        let _rule = lock.lock().await;
        let (rule, old) = self.get(id).await?;
        let now = now_ns();
        let measured = measure(engine, &rule.body, now).await;
        let new = decide(&rule.body, &old, &measured, now);
        let every = timing(&rule.body)
            .map(|t| i64::try_from(t.every.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(30_000_000_000);
        if let Some(entry) = self.entries.lock().await.get_mut(id) {
            entry.next_due_ns = now.saturating_add(every);
        }
        Ok(self.settle(&rule, &old, new, now).await)
    }

    /// Evaluates every enabled rule when it is due, each in its own task (a slow query or webhook of one
    /// rule delays no other), until shutdown.
    pub async fn run(self: Arc<Self>, state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
            let now = now_ns();
            let mut due = Vec::new();
            {
                let mut entries = self.entries.lock().await;
                for (id, entry) in entries.iter_mut() {
                    if entry.rule.body.enabled && entry.next_due_ns <= now {
                        // Not due again while this evaluation runs; `evaluate` sets the real next time.
                        entry.next_due_ns = now.saturating_add(3_600_000_000_000);
                        due.push(id.clone());
                    }
                }
            }
            for id in due {
                let alerts = self.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    match alerts.evaluate(&state.engine, &id).await {
                        Ok(_) | Err(ObjectError::NotFound(..)) => {}
                        Err(e) => {
                            tracing::warn!(rule = %id, error = %e, "alert evaluation failed");
                            if let Some(entry) = alerts.entries.lock().await.get_mut(&id) {
                                entry.next_due_ns = now_ns().saturating_add(10_000_000_000);
                            }
                        }
                    }
                });
            }
        }
    }

    /// Re-reads the rules from the store every 15 s, so rules made through another server show here.
    pub async fn keep_reloading(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = self.reload().await {
                tracing::debug!(error = %e, "alert rules not reloaded");
            }
        }
    }
}

/// The rules the UI offers to start from.
pub fn templates() -> Vec<RuleBody> {
    vec![
        RuleBody {
            name: "SLA breach: over 5% of calls slower than 1 s".into(),
            description: "Share of calls in the window whose latency is over threshold_ms.".into(),
            query: RuleQuery::Metric {
                metric: "sla_breach_rate".into(),
                threshold_ms: Some(1000.0),
                filters: Filters::default(),
            },
            condition: Condition {
                op: Op::Above,
                threshold: 0.05,
            },
            window: "5m".into(),
            for_duration: "2m".into(),
            every: "30s".into(),
            notify: Vec::new(),
            enabled: true,
        },
        RuleBody {
            name: "Error rate over 5%".into(),
            description:
                "Share of calls in the window that failed (error type or HTTP status >= 400)."
                    .into(),
            query: RuleQuery::Metric {
                metric: "error_rate".into(),
                threshold_ms: None,
                filters: Filters::default(),
            },
            condition: Condition {
                op: Op::Above,
                threshold: 0.05,
            },
            window: "5m".into(),
            for_duration: "2m".into(),
            every: "30s".into(),
            notify: Vec::new(),
            enabled: true,
        },
    ]
}

fn rule_json(rule: &Rule, status: &Status) -> Value {
    let mut v = serde_json::to_value(rule).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "status".into(),
            serde_json::to_value(status).unwrap_or(Value::Null),
        );
    }
    v
}

async fn rule_body(state: &AppState, body: axum::body::Body) -> Result<RuleBody, ApiError> {
    let body: RuleBody = json_body(
        state,
        body,
        MAX_BODY,
        "an alert rule (see GET /v1/alerts/templates)",
    )
    .await?;
    validate(&body, state.engine.options().max_sql_bytes)?;
    Ok(body)
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    let rules: Vec<Value> = state
        .alerts
        .list()
        .await
        .iter()
        .map(|(r, s)| rule_json(r, s))
        .collect();
    Ok(Json(json!({ "rules": rules })).into_response())
}

pub async fn templates_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    Ok(Json(json!({ "templates": templates() })).into_response())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    authorize(request.headers(), &state.config.query_token)?;
    let body = rule_body(&state, request.into_body()).await?;
    let (rule, status) = state.alerts.create(body).await?;
    Ok((StatusCode::CREATED, Json(rule_json(&rule, &status))).into_response())
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    let (rule, status) = state.alerts.get(&id).await?;
    Ok(Json(rule_json(&rule, &status)).into_response())
}

pub async fn replace(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    authorize(request.headers(), &state.config.query_token)?;
    let body = rule_body(&state, request.into_body()).await?;
    let (rule, status) = state.alerts.replace(&id, body).await?;
    Ok(Json(rule_json(&rule, &status)).into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    state.alerts.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn history(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    let events = state.alerts.history(&id, HISTORY_KEPT).await?;
    Ok(Json(json!({ "events": events })).into_response())
}

pub async fn evaluate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &state.config.query_token)?;
    let status = state.alerts.evaluate(&state.engine, &id).await?;
    Ok(Json(status).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: Value) -> Result<RuleBody, String> {
        let body: RuleBody = serde_json::from_value(json).map_err(|e| e.to_string())?;
        validate(&body, 10_000).map_err(|e| e.to_string())?;
        Ok(body)
    }

    #[test]
    fn templates_are_valid_rules() {
        for t in templates() {
            validate(&t, 10_000).expect("template is valid");
            let back: RuleBody = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let base = json!({"name": "r", "query": {"kind": "metric", "metric": "error_rate"},
                          "condition": {"op": ">", "threshold": 0.1}, "window": "5m"});
        assert!(rule(base.clone()).is_ok());
        let mut b = base.clone();
        b["query"]["metric"] = json!("nope");
        assert!(rule(b).unwrap_err().contains("query.metric"));
        let mut b = base.clone();
        b["window"] = json!("soon");
        assert!(rule(b).unwrap_err().contains("window"));
        let mut b = base.clone();
        b["condition"]["op"] = json!("!=");
        assert!(rule(b).is_err());
        let mut b = base.clone();
        b["notify"] = json!([{"url": "file:///etc/passwd"}]);
        assert!(rule(b).unwrap_err().contains("notify[0].url"));
        let mut b = base.clone();
        b["query"] = json!({"kind": "sql", "sql": "DELETE FROM spans"});
        assert!(rule(b).unwrap_err().contains("query.sql"));
        let mut b = base.clone();
        b["query"] = json!({"kind": "metric", "metric": "sla_breach_rate"});
        assert!(rule(b).unwrap_err().contains("threshold_ms"));
        let mut b = base;
        b["every"] = json!("0s");
        assert!(rule(b).unwrap_err().contains("every"));
    }

    #[test]
    fn payloads_have_the_shapes_receivers_expect() {
        let r = Rule {
            id: "a-1".into(),
            body: templates().remove(1),
            created_at: "t".into(),
            updated_at: "t".into(),
        };
        let e = Event {
            at: "2026-11-28T10:00:00.000Z".into(),
            rule_id: "a-1".into(),
            rule_name: r.body.name.clone(),
            from: AlertState::Ok,
            to: AlertState::Firing,
            value: Some(0.2),
            threshold: 0.05,
            op: Op::Above,
            error: None,
            notifications: Vec::new(),
        };
        let g = payload(NotifyFormat::Generic, &r, &e, &e.at);
        assert_eq!(g["status"], "firing");
        assert_eq!(g["rule"]["id"], "a-1");
        assert_eq!(g["value"], 0.2);
        let s = payload(NotifyFormat::Slack, &r, &e, &e.at);
        assert!(s["text"].as_str().unwrap().contains("[FIRING]"));
        assert!(s["blocks"].is_array());
    }
}
