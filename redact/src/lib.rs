//! `lumen-redact`: replaces sensitive values in LLM prompts, completions, tool arguments and URLs
//! with typed placeholders (`[EMAIL]`, `[CARD]`, `[API_KEY]`, …).
//!
//! Used by the node sensor before anything leaves the node (`redacted` capture mode) and by the
//! ingest server before the WAL (defence in depth). It runs on every prompt byte, so the common
//! case — text with nothing sensitive — costs a SIMD literal search plus one byte-classification
//! pass (see `detect`); it never panics on any input.
//!
//! ```
//! use lumen_redact::{Kind, RedactConfig, Redactor};
//!
//! let r = Redactor::new(&RedactConfig::default()).unwrap();
//! let (out, found) = r.redact_text("mail bob@example.com, card 4111 1111 1111 1111");
//! assert_eq!(out, "mail [EMAIL], card [CARD]");
//! assert_eq!(found.get(Kind::Card), 1);
//! ```
//!
//! What each [`Kind`] covers, the JSON/URL semantics and the known limits are listed in the
//! crate's README; the rules themselves live in `detect` (patterns, priorities) and `validate`
//! (checksums, number plans, boundaries).
//!
//! Modules: `kind` (the kinds), `config` (configuration, key rules, errors), `detect` (engine),
//! `validate` (checksums and shape rules), `json` (JSON values and JSON text), `url` (URLs),
//! `findings` (counts and spans), `corpus` (feature `corpus`: labelled test/bench corpus).

mod config;
mod detect;
mod findings;
mod json;
mod kind;
mod url;
mod validate;

#[cfg(feature = "corpus")]
pub mod corpus;

use std::borrow::Cow;

pub use config::{CustomPattern, DEFAULT_DROP_KEYS, RedactConfig, RedactError};
pub use findings::{Findings, Match};
pub use kind::Kind;

use config::KeyRules;
use detect::{Engine, Label, Span};

/// Placeholder for values replaced because of a key rule (JSON key, URL parameter or password).
pub const REDACTED: &str = "[REDACTED]";

/// A compiled redaction policy. Cheap to share (`Send + Sync`); build once, use from any thread.
pub struct Redactor {
    engine: Engine,
    keys: KeyRules,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field(
                "custom",
                &self
                    .engine
                    .custom
                    .iter()
                    .map(|c| &*c.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// Compiles `config`. Errors name the offending custom pattern or key rule.
    pub fn new(config: &RedactConfig) -> Result<Redactor, RedactError> {
        Ok(Redactor {
            engine: Engine::new(&config.kinds, &config.custom)?,
            keys: KeyRules::new(config)?,
        })
    }

    /// The sensitive values in `text`: non-overlapping, sorted by start.
    pub fn find<'r>(&'r self, text: &str) -> Vec<Match<'r>> {
        self.spans(text)
            .into_iter()
            .map(|s| {
                let (kind, name, placeholder) = self.describe(s.label);
                Match {
                    start: s.start,
                    end: s.end,
                    kind,
                    name,
                    placeholder,
                }
            })
            .collect()
    }

    /// Replaces every sensitive value in `text` by its placeholder. Borrows when nothing matched.
    pub fn redact_text<'a>(&self, text: &'a str) -> (Cow<'a, str>, Findings) {
        let mut findings = Findings::default();
        let out = self.redact_into(text, &mut findings);
        (out, findings)
    }

    pub(crate) fn redact_into<'a>(&self, text: &'a str, findings: &mut Findings) -> Cow<'a, str> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(self.apply(text, &spans, findings))
    }

    /// Spans to replace, as a fixpoint: boundary rules look at neighbouring characters, and a
    /// value rejected next to a number (`10.0.0.1+44 20 7946 0958`) can qualify once that
    /// neighbour became a placeholder. So the output is rescanned (only when something was
    /// found, at most `MAX_ROUNDS` times) and new spans are mapped back to `text`, which makes
    /// `redact_text` idempotent.
    fn spans(&self, text: &str) -> Vec<Span> {
        const MAX_ROUNDS: usize = 3;
        let mut spans = self.engine.scan(text);
        for _ in 0..MAX_ROUNDS {
            if spans.is_empty() {
                break;
            }
            // Render, remembering where each span's placeholder landed.
            let mut out = String::with_capacity(text.len());
            let mut placed: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
            let mut last = 0;
            for s in &spans {
                out.push_str(text.get(last..s.start).unwrap_or_default());
                let at = out.len();
                out.push_str(self.describe(s.label).2);
                placed.push((at, out.len()));
                last = s.end;
            }
            out.push_str(text.get(last..).unwrap_or_default());
            let extra = self.engine.scan(&out);
            if extra.is_empty() {
                break;
            }
            // Output offset -> text offset. A start inside a placeholder maps to the replaced
            // value's start, an end inside one to its end (the new span then absorbs it).
            let map_start = |pos: usize| -> usize {
                let i = placed.partition_point(|&(a, _)| a <= pos);
                match i
                    .checked_sub(1)
                    .and_then(|j| Some((placed.get(j)?, spans.get(j)?)))
                {
                    None => pos,
                    Some((&(_, b), s)) if pos < b => s.start,
                    Some((&(_, b), s)) => s.end + (pos - b),
                }
            };
            let map_end = |pos: usize| -> usize {
                let i = placed.partition_point(|&(a, _)| a < pos);
                match i
                    .checked_sub(1)
                    .and_then(|j| Some((placed.get(j)?, spans.get(j)?)))
                {
                    None => pos,
                    Some((&(_, b), s)) if pos <= b => s.end,
                    Some((&(_, b), s)) => s.end + (pos - b),
                }
            };
            let mapped: Vec<(usize, usize, Label)> = extra
                .iter()
                .map(|e| (map_start(e.start), map_end(e.end), e.label))
                .collect();
            let mut grown = false;
            for (start, end, label) in mapped {
                if start >= end || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                    continue;
                }
                spans.retain(|s| !(s.start >= start && s.end <= end));
                if spans.iter().any(|s| s.start < end && start < s.end) {
                    continue; // partial overlap: keep the earlier decision
                }
                spans.push(Span::new(start, end, label));
                grown = true;
            }
            if !grown {
                break;
            }
            spans.sort_by_key(|s| s.start);
        }
        spans
    }

    fn apply(&self, text: &str, spans: &[Span], findings: &mut Findings) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for s in spans {
            // Spans are sorted, disjoint and on char boundaries (see `detect::resolve`).
            if let (Some(keep), true) = (text.get(last..s.start), s.start >= last) {
                out.push_str(keep);
                out.push_str(self.describe(s.label).2);
                last = s.end;
                match s.label {
                    Label::Kind(k) => findings.add_kind(k),
                    Label::Custom(i) => {
                        if let Some(c) = self.engine.custom.get(i) {
                            findings.add_custom(&c.name, 1);
                        }
                    }
                }
            }
        }
        out.push_str(text.get(last..).unwrap_or_default());
        out
    }

    fn describe(&self, label: Label) -> (Option<Kind>, &str, &str) {
        match label {
            Label::Kind(k) => (Some(k), k.name(), k.placeholder()),
            Label::Custom(i) => match self.engine.custom.get(i) {
                Some(c) => (None, &*c.name, c.placeholder.as_str()),
                None => (None, "custom", REDACTED),
            },
        }
    }

    /// Redacts a JSON document in place: strings (and object keys) are pattern-redacted,
    /// values under drop-listed keys become `"[REDACTED]"`, keep-list mode applies, and strings
    /// that themselves hold a JSON object/array (tool-call `arguments`) are redacted as JSON.
    pub fn redact_json(&self, value: &mut serde_json::Value) -> Findings {
        let mut findings = Findings::default();
        json::redact_value(self, value, &mut findings);
        findings
    }

    /// Redacts JSON text (a span column such as `input_messages`), preserving its formatting
    /// and key order outside the replaced values; text that is not valid JSON is redacted as
    /// plain text. Borrows when nothing changed.
    pub fn redact_json_str<'a>(&self, json: &'a str) -> (Cow<'a, str>, Findings) {
        let mut findings = Findings::default();
        let out = json::redact_json_text(self, json, &mut findings);
        (out, findings)
    }

    /// Redacts a URL or a request target (`/v1/x?key=…`): credentials in the authority, path
    /// segments, query values (whole values for drop-listed parameter names) and the fragment,
    /// percent-decoded before matching. Slack webhook URLs are replaced whole.
    pub fn redact_url<'a>(&self, url: &'a str) -> (Cow<'a, str>, Findings) {
        let mut findings = Findings::default();
        let out = url::redact_url(self, url, &mut findings);
        (out, findings)
    }

    pub(crate) fn keys(&self) -> &KeyRules {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn redactor_is_send_sync() {
        assert_send_sync::<Redactor>();
    }
}
