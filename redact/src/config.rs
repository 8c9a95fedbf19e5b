//! Configuration (what to redact) and its validation into compiled key rules; the typed errors.
//!
//! `RedactConfig` deserializes from TOML/JSON; every field is optional and falls back to
//! [`RedactConfig::default`]. Unknown fields are rejected so a typo does not silently disable
//! redaction.

use serde::{Deserialize, Serialize};

use crate::Kind;

/// What a [`crate::Redactor`] redacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactConfig {
    /// Enabled built-in kinds (default: all of [`Kind::ALL`]).
    pub kinds: Vec<Kind>,
    /// User-defined patterns; each match becomes `[NAME]` (the name uppercased).
    pub custom: Vec<CustomPattern>,
    /// JSON object keys — and URL query parameter names — whose values are replaced wholesale
    /// by `[REDACTED]`, whatever they hold. Matching ignores ASCII case and the separators
    /// `_`, `-`, `.` and space (`api_key` matches `apiKey`, `API-KEY`); an entry may start
    /// and/or end with `*` to match a suffix, prefix or substring (`*password*`).
    pub json_drop_keys: Vec<String>,
    /// Keep-list mode when set: in JSON, only values under these keys (same matching as the
    /// drop-list; nested values inherit) keep their content, which is still pattern-redacted.
    /// Every other string, number and boolean becomes `[REDACTED]`; `null` and the structure
    /// (keys, arrays, nesting) are kept. The drop-list wins over the keep-list.
    pub json_keep_keys: Option<Vec<String>>,
}

/// A user-defined pattern: `name` + `regex` (Rust `regex` crate syntax).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// `[A-Za-z0-9_]{1,64}`; the placeholder is `[NAME]` with the name uppercased.
    pub name: String,
    pub regex: String,
}

impl CustomPattern {
    pub fn new(name: impl Into<String>, regex: impl Into<String>) -> Self {
        CustomPattern {
            name: name.into(),
            regex: regex.into(),
        }
    }
}

/// The drop-list used by [`RedactConfig::default`]: credentials, PII fields and signed-URL
/// parameters. Chosen to avoid LLM telemetry fields (`max_tokens`, `input_tokens` survive).
pub const DEFAULT_DROP_KEYS: &[&str] = &[
    "*password*",
    "passwd",
    "pwd",
    "*secret*",
    "api_key",
    "apikey",
    "x-api-key",
    "access_key",
    "*access_token",
    "*refresh_token",
    "id_token",
    "auth_token",
    "session_token",
    "token",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "private_key",
    "ssn",
    "social_security_number",
    "credit_card",
    "card_number",
    "cvv",
    "cvc",
    "pin",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "signature",
    "sig",
];

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            kinds: Kind::ALL.to_vec(),
            custom: Vec::new(),
            json_drop_keys: DEFAULT_DROP_KEYS.iter().map(|s| s.to_string()).collect(),
            json_keep_keys: None,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("custom pattern `{name}`: invalid regex: {source}")]
    InvalidPattern {
        name: String,
        #[source]
        source: Box<regex::Error>,
    },
    #[error("custom pattern `{name}`: regex matches the empty string")]
    EmptyMatch { name: String },
    #[error("custom pattern name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("json key rule `{key}`: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// The built-in detectors failed to compile (a bug, reported instead of panicking).
    #[error("built-in detector `{name}` failed to compile: {source}")]
    Builtin {
        name: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One compiled key rule (drop or keep list entry), on the normalised key.
#[derive(Debug, Clone)]
enum KeyRule {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

/// Compiled key lists: normalised once, matched on every JSON key and query parameter name.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRules {
    drop: Vec<KeyRule>,
    keep: Option<Vec<KeyRule>>,
}

/// Lowercases ASCII and removes `_ - . space`, so `apiKey`, `API-KEY` and `api_key` compare equal.
pub(crate) fn normalise_key(key: &str, out: &mut String) {
    out.clear();
    for c in key.chars() {
        match c {
            '_' | '-' | '.' | ' ' => {}
            c => out.push(c.to_ascii_lowercase()),
        }
    }
}

fn compile_rule(raw: &str) -> Result<KeyRule, RedactError> {
    let starts = raw.starts_with('*');
    let ends = raw.len() > 1 && raw.ends_with('*');
    let core = raw.trim_matches('*');
    if core.contains('*') {
        return Err(RedactError::InvalidKey {
            key: raw.to_string(),
            reason: "`*` is only allowed at the start or end",
        });
    }
    let mut norm = String::new();
    normalise_key(core, &mut norm);
    if norm.is_empty() {
        return Err(RedactError::InvalidKey {
            key: raw.to_string(),
            reason: "empty after removing `*`, `_`, `-`, `.` and spaces",
        });
    }
    Ok(match (starts, ends) {
        (false, false) => KeyRule::Exact(norm),
        (true, false) => KeyRule::Suffix(norm),
        (false, true) => KeyRule::Prefix(norm),
        (true, true) => KeyRule::Contains(norm),
    })
}

fn any_matches(rules: &[KeyRule], norm: &str) -> bool {
    rules.iter().any(|r| match r {
        KeyRule::Exact(s) => norm == s,
        KeyRule::Prefix(s) => norm.starts_with(s.as_str()),
        KeyRule::Suffix(s) => norm.ends_with(s.as_str()),
        KeyRule::Contains(s) => norm.contains(s.as_str()),
    })
}

/// What the key rules say about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyAction {
    /// Replace the value wholesale.
    Drop,
    /// Keep-list hit: the value (and everything under it) keeps its content.
    Keep,
    /// No rule: the value inherits its parent's keep state.
    Inherit,
}

impl KeyRules {
    pub(crate) fn new(config: &RedactConfig) -> Result<KeyRules, RedactError> {
        let drop = config
            .json_drop_keys
            .iter()
            .map(|k| compile_rule(k))
            .collect::<Result<Vec<_>, _>>()?;
        let keep = match &config.json_keep_keys {
            None => None,
            Some(keys) => Some(
                keys.iter()
                    .map(|k| compile_rule(k))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(KeyRules { drop, keep })
    }

    /// Whether keep-list mode is on.
    pub(crate) fn keep_mode(&self) -> bool {
        self.keep.is_some()
    }

    /// Classifies `key`; `scratch` is reused between calls to avoid allocating per key.
    pub(crate) fn action(&self, key: &str, scratch: &mut String) -> KeyAction {
        if self.drop.is_empty() && self.keep.is_none() {
            return KeyAction::Inherit;
        }
        normalise_key(key, scratch);
        if any_matches(&self.drop, scratch) {
            return KeyAction::Drop;
        }
        match &self.keep {
            Some(keep) if any_matches(keep, scratch) => KeyAction::Keep,
            _ => KeyAction::Inherit,
        }
    }

    /// Drop-list only (URL query parameters have no keep-list mode).
    pub(crate) fn is_dropped(&self, key: &str, scratch: &mut String) -> bool {
        if self.drop.is_empty() {
            return false;
        }
        normalise_key(key, scratch);
        any_matches(&self.drop, scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules_normalise_and_wildcards() {
        let cfg = RedactConfig {
            json_drop_keys: vec!["api_key".into(), "*password*".into(), "*_token".into()],
            json_keep_keys: Some(vec!["role".into(), "content".into()]),
            ..RedactConfig::default()
        };
        let rules = KeyRules::new(&cfg).unwrap();
        let mut s = String::new();
        assert_eq!(rules.action("apiKey", &mut s), KeyAction::Drop);
        assert_eq!(rules.action("API-KEY", &mut s), KeyAction::Drop);
        assert_eq!(rules.action("db_Password_hash", &mut s), KeyAction::Drop);
        assert_eq!(rules.action("refresh_token", &mut s), KeyAction::Drop);
        assert_eq!(rules.action("max_tokens", &mut s), KeyAction::Inherit);
        assert_eq!(rules.action("Role", &mut s), KeyAction::Keep);
        assert_eq!(rules.action("name", &mut s), KeyAction::Inherit);
    }

    #[test]
    fn default_drop_list_spares_llm_fields() {
        let rules = KeyRules::new(&RedactConfig::default()).unwrap();
        let mut s = String::new();
        for k in [
            "max_tokens",
            "input_tokens",
            "output_tokens",
            "content",
            "role",
            "model",
        ] {
            assert_eq!(rules.action(k, &mut s), KeyAction::Inherit, "{k}");
        }
        for k in [
            "password",
            "client_secret",
            "Authorization",
            "access_token",
            "X-Amz-Signature",
        ] {
            assert_eq!(rules.action(k, &mut s), KeyAction::Drop, "{k}");
        }
    }

    #[test]
    fn bad_key_rules_are_named() {
        let cfg = RedactConfig {
            json_drop_keys: vec!["a*b".into()],
            ..RedactConfig::default()
        };
        let err = KeyRules::new(&cfg).unwrap_err().to_string();
        assert!(err.contains("a*b"), "{err}");
        let cfg = RedactConfig {
            json_drop_keys: vec!["*".into()],
            ..RedactConfig::default()
        };
        assert!(KeyRules::new(&cfg).is_err());
    }
}
