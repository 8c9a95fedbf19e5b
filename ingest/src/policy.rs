//! The server's capture policy: what content of a span may be stored, decided per deployment and per
//! provider or service, and enforced on every batch before it reaches the WAL (defence in depth: the
//! sensor applies its own mode on the node, and an SDK exporting OTLP applies none).
//!
//! - `full`: content is stored as sent; the span is flagged `unredacted` unless an earlier stage already
//!   flagged it `redacted` or `content_dropped`.
//! - `redacted` (the default): sensitive values in prompts, completions, system instructions, tool
//!   definitions, error text, the URL and attribute values become typed placeholders (`lumen-redact`);
//!   flagged `redacted`.
//! - `metadata`: no content at all — the message columns are emptied and content-bearing attributes
//!   dropped; error text and URL are still redacted; flagged `content_dropped`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListBuilder, MapBuilder, MapFieldNames, StringArray, StringBuilder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use lumen_redact::{RedactConfig, RedactError, Redactor};
use serde::Deserialize;
use serde_json::Value;

use crate::schema::{column_index, names};

/// Values of `capture_flags` that record the policy in force.
pub mod flags {
    /// Sensitive values were replaced by placeholders.
    pub const REDACTED: &str = "redacted";
    /// Content was not stored because of the capture mode.
    pub const CONTENT_DROPPED: &str = "content_dropped";
    /// Content is stored as captured (`full` mode).
    pub const UNREDACTED: &str = "unredacted";
    /// The same call was also reported by another source; this row holds the fields of both.
    pub const MERGED: &str = "merged";
    /// The row came from an OTLP log event about a call (`gen_ai.client.inference.operation.details`),
    /// not from the call's span; it is linked to that span by id.
    pub const EVENT: &str = "event";
}

/// How much content a span may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureMode {
    Full,
    Redacted,
    Metadata,
}

impl FromStr for CaptureMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(CaptureMode::Full),
            "redacted" => Ok(CaptureMode::Redacted),
            "metadata" => Ok(CaptureMode::Metadata),
            other => Err(format!(
                "unknown capture mode {other:?}: use full, redacted or metadata"
            )),
        }
    }
}

impl fmt::Display for CaptureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaptureMode::Full => "full",
            CaptureMode::Redacted => "redacted",
            CaptureMode::Metadata => "metadata",
        })
    }
}

/// A per-provider and/or per-service override. Every field that is set must equal the span's value
/// (case-insensitive); the first matching rule wins.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRule {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    pub mode: CaptureMode,
}

/// The compiled policy; cheap to share.
pub struct CapturePolicy {
    default: CaptureMode,
    rules: Vec<CaptureRule>,
    redactor: Arc<Redactor>,
}

impl fmt::Debug for CapturePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapturePolicy")
            .field("default", &self.default)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("capture rule {index}: a rule needs a provider or a service to match on")]
    EmptyRule { index: usize },
    #[error("redaction config: {0}")]
    Redact(#[from] RedactError),
}

/// Attribute keys (or key prefixes ending in `.`) that carry prompt or completion content; `metadata`
/// mode drops them.
const CONTENT_ATTRIBUTES: &[&str] = &[
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "llm.prompts.",
    "llm.completions.",
    "llm.request.functions.",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "input.value",
    "output.value",
    "url.query",
];

fn is_content_attribute(key: &str) -> bool {
    CONTENT_ATTRIBUTES.iter().any(|c| {
        if c.ends_with('.') {
            key.starts_with(c)
        } else {
            key == *c
        }
    })
}

/// What one `apply` did, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// Rows whose stored content differs from what was sent.
    pub rows_changed: usize,
    /// Placeholders inserted.
    pub values_redacted: u64,
}

impl CapturePolicy {
    pub fn new(
        default: CaptureMode,
        rules: Vec<CaptureRule>,
        redact: &RedactConfig,
    ) -> Result<Self, PolicyError> {
        if let Some(index) = rules
            .iter()
            .position(|r| r.provider.is_none() && r.service.is_none())
        {
            return Err(PolicyError::EmptyRule { index });
        }
        Ok(CapturePolicy {
            default,
            rules,
            redactor: Arc::new(Redactor::new(redact)?),
        })
    }

    /// The documented default: `redacted` everywhere, the default redaction rules.
    pub fn default_redacted() -> Self {
        // The default configuration always compiles (checked by a test in lumen-redact).
        Self::new(CaptureMode::Redacted, Vec::new(), &RedactConfig::default())
            .expect("the default redaction config compiles")
    }

    pub fn default_mode(&self) -> CaptureMode {
        self.default
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The mode for a span of this provider and service.
    pub fn mode_for(&self, provider: Option<&str>, service: Option<&str>) -> CaptureMode {
        let same = |want: &Option<String>, have: Option<&str>| match want {
            None => true,
            Some(w) => have.is_some_and(|h| h.eq_ignore_ascii_case(w)),
        };
        self.rules
            .iter()
            .find(|r| same(&r.provider, provider) && same(&r.service, service))
            .map(|r| r.mode)
            .unwrap_or(self.default)
    }

    /// Applies the policy to every row of a span-schema batch.
    pub fn apply(&self, batch: &RecordBatch) -> Result<(RecordBatch, PolicyOutcome), ArrowError> {
        let rows = batch.num_rows();
        let text = |name: &str| -> Result<&StringArray, ArrowError> {
            let index = column_index(name)
                .ok_or_else(|| ArrowError::SchemaError(format!("no column {name}")))?;
            batch.column(index).as_string_opt::<i32>().ok_or_else(|| {
                ArrowError::SchemaError(format!("column {name} is not a string column"))
            })
        };
        let provider = text("provider")?;
        let service = text("service_name")?;
        let modes: Vec<CaptureMode> = (0..rows)
            .map(|i| {
                fn get(a: &StringArray, i: usize) -> Option<&str> {
                    (!a.is_null(i)).then(|| a.value(i))
                }
                self.mode_for(get(provider, i), get(service, i))
            })
            .collect();

        let mut outcome = PolicyOutcome::default();
        let mut changed = vec![false; rows];
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();

        for (name, how) in [
            ("input_messages", Content::Json),
            ("output_messages", Content::Json),
            ("system_instructions", Content::Json),
            ("tool_definitions", Content::Json),
            ("error_message", Content::Text),
            ("url_path", Content::Url),
        ] {
            let source = text(name)?;
            let mut out = StringBuilder::with_capacity(rows, source.value_data().len());
            let mut any = false;
            for (i, mode) in modes.iter().enumerate() {
                if source.is_null(i) {
                    out.append_null();
                    continue;
                }
                let value = source.value(i);
                let drop_it = *mode == CaptureMode::Metadata && how == Content::Json;
                if drop_it {
                    out.append_null();
                    changed[i] = true;
                    any = true;
                    continue;
                }
                if *mode == CaptureMode::Full {
                    out.append_value(value);
                    continue;
                }
                let (redacted, found) = match how {
                    Content::Json => self.redactor.redact_json_str(value),
                    Content::Text => self.redactor.redact_text(value),
                    Content::Url => self.redactor.redact_url(value),
                };
                if let Cow::Owned(new) = redacted {
                    outcome.values_redacted += found.total();
                    out.append_value(new);
                    changed[i] = true;
                    any = true;
                } else {
                    out.append_value(value);
                }
            }
            if any {
                columns[index(name)?] = Arc::new(out.finish());
            }
        }

        if let Some(attributes) = self.attributes(batch, &modes, &mut changed, &mut outcome)? {
            columns[index(names::ATTRIBUTES)?] = attributes;
        }
        columns[index(names::CAPTURE_FLAGS)?] = capture_flags(batch, &modes)?;
        outcome.rows_changed = changed.iter().filter(|c| **c).count();
        Ok((RecordBatch::try_new(batch.schema(), columns)?, outcome))
    }

    /// Redacts attribute values (and drops content-bearing keys in `metadata` mode); `None` when no row
    /// changed.
    fn attributes(
        &self,
        batch: &RecordBatch,
        modes: &[CaptureMode],
        changed: &mut [bool],
        outcome: &mut PolicyOutcome,
    ) -> Result<Option<ArrayRef>, ArrowError> {
        let column = batch.column(index(names::ATTRIBUTES)?);
        let map = column
            .as_map_opt()
            .ok_or_else(|| ArrowError::SchemaError("attributes is not a map column".into()))?;
        let mut rebuilt: Vec<Option<Vec<(String, String)>>> = Vec::with_capacity(modes.len());
        let mut any = false;
        for (i, mode) in modes.iter().enumerate() {
            if map.is_null(i) {
                rebuilt.push(None);
                continue;
            }
            let entries = map.value(i);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            let mut pairs: Vec<(String, String)> = Vec::with_capacity(keys.len());
            let mut row_changed = false;
            if *mode == CaptureMode::Full {
                rebuilt.push(None);
                continue;
            }
            // Key rules (drop-lists such as `*password*`) apply through the JSON path.
            let mut object = serde_json::Map::new();
            for k in 0..keys.len() {
                let key = keys.value(k);
                if values.is_null(k) {
                    continue;
                }
                if *mode == CaptureMode::Metadata && is_content_attribute(key) {
                    row_changed = true;
                    continue;
                }
                object.insert(key.to_string(), Value::String(values.value(k).to_string()));
            }
            let mut value = Value::Object(object);
            let found = self.redactor.redact_json(&mut value);
            if !found.is_empty() {
                row_changed = true;
                outcome.values_redacted += found.total();
            }
            if let Value::Object(object) = value {
                for (k, v) in object {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    pairs.push((k, v));
                }
            }
            if row_changed {
                changed[i] = true;
                any = true;
                pairs.sort();
                rebuilt.push(Some(pairs));
            } else {
                rebuilt.push(None);
            }
        }
        if !any {
            return Ok(None);
        }
        let mut builder = map_builder();
        for (i, row) in rebuilt.into_iter().enumerate() {
            match row {
                Some(pairs) => {
                    for (k, v) in pairs {
                        builder.keys().append_value(k);
                        builder.values().append_value(v);
                    }
                    builder.append(true)?;
                }
                None if map.is_null(i) => builder.append(false)?,
                None => {
                    let entries = map.value(i);
                    let keys = entries.column(0).as_string::<i32>();
                    let values = entries.column(1).as_string::<i32>();
                    for k in 0..keys.len() {
                        builder.keys().append_value(keys.value(k));
                        if values.is_null(k) {
                            builder.values().append_null();
                        } else {
                            builder.values().append_value(values.value(k));
                        }
                    }
                    builder.append(true)?;
                }
            }
        }
        Ok(Some(Arc::new(builder.finish())))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Json,
    Text,
    Url,
}

fn index(name: &str) -> Result<usize, ArrowError> {
    column_index(name).ok_or_else(|| ArrowError::SchemaError(format!("no column {name}")))
}

/// A builder for the `attributes` column with the contract's field names.
pub(crate) fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(
        Some(MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    )
}

/// `capture_flags` with the flag of each row's mode added (once).
fn capture_flags(batch: &RecordBatch, modes: &[CaptureMode]) -> Result<ArrayRef, ArrowError> {
    let column = batch.column(index(names::CAPTURE_FLAGS)?);
    let list = column
        .as_list_opt::<i32>()
        .ok_or_else(|| ArrowError::SchemaError("capture_flags is not a list column".into()))?;
    let mut builder = ListBuilder::new(StringBuilder::new());
    for (i, mode) in modes.iter().enumerate() {
        let mut existing: Vec<String> = Vec::new();
        if !list.is_null(i) {
            let values = list.value(i);
            let values = values.as_string::<i32>();
            for v in 0..values.len() {
                if !values.is_null(v) {
                    existing.push(values.value(v).to_string());
                }
            }
        }
        let has = |f: &str| existing.iter().any(|e| e == f);
        let flag = match mode {
            CaptureMode::Redacted => Some(flags::REDACTED),
            CaptureMode::Metadata => Some(flags::CONTENT_DROPPED),
            CaptureMode::Full if has(flags::REDACTED) || has(flags::CONTENT_DROPPED) => None,
            CaptureMode::Full => Some(flags::UNREDACTED),
        };
        if let Some(flag) = flag
            && !has(flag)
        {
            existing.push(flag.to_string());
        }
        for e in existing {
            builder.values().append_value(e);
        }
        builder.append(true);
    }
    Ok(Arc::new(builder.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{BodyFormat, parse_spans};

    fn batch(lines: &[&str]) -> RecordBatch {
        parse_spans(lines.join("\n").as_bytes(), BodyFormat::Ndjson).unwrap()
    }

    fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let a = batch.column(column_index(name).unwrap()).as_string::<i32>();
        (0..a.len())
            .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
            .collect()
    }

    fn flags_of(batch: &RecordBatch, row: usize) -> Vec<String> {
        let list = batch
            .column(column_index("capture_flags").unwrap())
            .as_list::<i32>();
        let v = list.value(row);
        let v = v.as_string::<i32>();
        (0..v.len()).map(|i| v.value(i).to_string()).collect()
    }

    const SECRET_SPAN: &str = r#"{"start_time":1,"service_name":"web","provider":"openai","input_messages":[{"role":"user","parts":[{"type":"text","content":"mail bob@example.com card 4111 1111 1111 1111"}]}],"error_message":"key sk-proj-abcdefghijklmnopqrstuvwxyz012345 rejected","url_path":"/v1/chat?api_key=sekrit","attributes":{"note":"call +1 415 555 0100","password":"hunter2","gen_ai.prompt.0.content":"bob@example.com"}}"#;

    #[test]
    fn redacted_mode_replaces_values_everywhere_and_flags_the_row() {
        let policy = CapturePolicy::default_redacted();
        let (out, outcome) = policy.apply(&batch(&[SECRET_SPAN])).unwrap();
        let all = format!("{:?}", out);
        for secret in [
            "bob@example.com",
            "4111 1111 1111 1111",
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
            "sekrit",
            "hunter2",
            "415 555 0100",
        ] {
            assert!(!all.contains(secret), "{secret} survived: {all}");
        }
        let input = strings(&out, "input_messages")[0].clone().unwrap();
        assert!(
            input.contains("[EMAIL]") && input.contains("[CARD]"),
            "{input}"
        );
        serde_json::from_str::<Value>(&input).expect("still JSON");
        assert_eq!(flags_of(&out, 0), vec!["redacted"]);
        assert_eq!(outcome.rows_changed, 1);
        assert!(outcome.values_redacted >= 6, "{outcome:?}");
    }

    #[test]
    fn metadata_mode_drops_content_and_full_mode_keeps_it() {
        let policy = CapturePolicy::new(
            CaptureMode::Full,
            vec![CaptureRule {
                provider: None,
                service: Some("WEB".into()),
                mode: CaptureMode::Metadata,
            }],
            &RedactConfig::default(),
        )
        .unwrap();
        let other = SECRET_SPAN.replace("\"web\"", "\"batch\"");
        let (out, _) = policy.apply(&batch(&[SECRET_SPAN, &other])).unwrap();
        assert_eq!(strings(&out, "input_messages")[0], None);
        let error = strings(&out, "error_message")[0].clone().unwrap();
        assert!(
            !error.contains("sk-proj"),
            "error text is redacted even in metadata mode: {error}"
        );
        assert_eq!(flags_of(&out, 0), vec!["content_dropped"]);
        let attrs = format!(
            "{:?}",
            out.column(column_index("attributes").unwrap())
                .as_map()
                .value(0)
        );
        assert!(!attrs.contains("gen_ai.prompt.0.content"), "{attrs}");
        // The other service falls back to the default, full.
        assert!(
            strings(&out, "input_messages")[1]
                .clone()
                .unwrap()
                .contains("bob@example.com")
        );
        assert_eq!(flags_of(&out, 1), vec!["unredacted"]);
    }

    #[test]
    fn an_earlier_stricter_flag_is_kept_and_not_contradicted() {
        let policy =
            CapturePolicy::new(CaptureMode::Full, Vec::new(), &RedactConfig::default()).unwrap();
        let (out, _) = policy
            .apply(&batch(&[
                r#"{"start_time":1,"capture_flags":["redacted"]}"#,
            ]))
            .unwrap();
        assert_eq!(flags_of(&out, 0), vec!["redacted"]);
        let strict = CapturePolicy::default_redacted();
        let (twice, _) = strict.apply(&out).unwrap();
        assert_eq!(flags_of(&twice, 0), vec!["redacted"], "idempotent");
    }

    #[test]
    fn rules_need_a_selector_and_modes_parse() {
        let err = CapturePolicy::new(
            CaptureMode::Full,
            vec![CaptureRule {
                provider: None,
                service: None,
                mode: CaptureMode::Full,
            }],
            &RedactConfig::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("rule 0"), "{err}");
        assert_eq!("Metadata".parse::<CaptureMode>(), Ok(CaptureMode::Metadata));
        assert!("none".parse::<CaptureMode>().unwrap_err().contains("none"));
    }
}
