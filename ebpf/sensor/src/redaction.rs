//! The `redacted` capture mode: before a span leaves the node, sensitive values in its prompts,
//! completions, tool definitions, error text and URL become typed placeholders (`[EMAIL]`, `[CARD]`,
//! `[API_KEY]`, …) by the shared engine in `lumen-redact`, and the span records the policy in force.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, Result};
use lumen_decoder::Span;
use lumen_decoder::span::flags;
use lumen_redact::{RedactConfig, Redactor};

/// The engine for `--capture redacted`, from a TOML file of `lumen_redact::RedactConfig` or the defaults.
pub fn load(config: Option<&Path>) -> Result<Redactor> {
    let config = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the redaction config {}", path.display()))?;
            toml::from_str::<RedactConfig>(&text)
                .with_context(|| format!("invalid redaction config {}", path.display()))?
        }
        None => RedactConfig::default(),
    };
    Redactor::new(&config).context("invalid redaction config")
}

fn replace(field: &mut Option<String>, redact: impl Fn(&str) -> Cow<'_, str>) {
    if let Some(text) = field
        && let Cow::Owned(new) = redact(text)
    {
        *text = new;
    }
}

/// Redacts every free-text field of `span` in place and flags it `redacted`.
pub fn apply(redactor: &Redactor, span: &mut Span) {
    for field in [
        &mut span.input_messages,
        &mut span.output_messages,
        &mut span.system_instructions,
        &mut span.tool_definitions,
    ] {
        replace(field, |t| redactor.redact_json_str(t).0);
    }
    replace(&mut span.error_message, |t| redactor.redact_text(t).0);
    replace(&mut span.url_path, |t| redactor.redact_url(t).0);
    if let Some(query) = span.attributes.get_mut("url.query") {
        let with_mark = format!("?{query}");
        let redacted = redactor.redact_url(&with_mark).0;
        *query = redacted.trim_start_matches('?').to_string();
    }
    span.flag(flags::REDACTED);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_error_and_url_are_redacted_and_flagged() {
        let redactor = load(None).unwrap();
        let mut span = Span {
            input_messages: Some(
                r#"[{"role":"user","parts":[{"type":"text","content":"mail bob@example.com, card 4111 1111 1111 1111"}]}]"#
                    .into(),
            ),
            output_messages: Some(r#"[{"role":"assistant","parts":[{"type":"text","content":"no secrets here"}]}]"#.into()),
            error_message: Some("key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD rejected".into()),
            url_path: Some("/v1/users/alice@example.com/chat".into()),
            ..Span::default()
        };
        span.attributes
            .insert("url.query".into(), "email=carol@example.org&x=1".into());
        apply(&redactor, &mut span);
        let input = span.input_messages.as_deref().unwrap();
        assert!(
            input.contains("[EMAIL]") && input.contains("[CARD]"),
            "{input}"
        );
        assert!(
            !input.contains("bob@example.com") && !input.contains("4111"),
            "{input}"
        );
        let _: serde_json::Value = serde_json::from_str(input).expect("still JSON");
        assert_eq!(
            span.output_messages.as_deref(),
            Some(r#"[{"role":"assistant","parts":[{"type":"text","content":"no secrets here"}]}]"#)
        );
        assert!(
            !span.error_message.as_deref().unwrap().contains("sk-proj"),
            "{:?}",
            span.error_message
        );
        assert!(
            !span.url_path.as_deref().unwrap().contains("alice@"),
            "{:?}",
            span.url_path
        );
        assert!(
            !span.attributes["url.query"].contains("carol@"),
            "{:?}",
            span.attributes
        );
        assert!(span.has_flag("redacted"));
    }

    #[test]
    fn a_bad_config_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("redact.toml");
        std::fs::write(
            &path,
            "[[custom]]\nname = \"ticket\"\nregex = \"(unclosed\"\n",
        )
        .unwrap();
        let err = format!("{:#}", load(Some(&path)).unwrap_err());
        assert!(err.contains("ticket") || err.contains("unclosed"), "{err}");
    }
}
