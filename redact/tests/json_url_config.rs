//! JSON key rules (drop-list, keep-list, nested tool-call arguments, keys), JSON text handling
//! (formatting kept, invalid JSON falls back to text), URL redaction, and configuration loading
//! and validation (TOML, custom patterns, errors that name the culprit).

use std::borrow::Cow;

use lumen_redact::{CustomPattern, Kind, RedactConfig, RedactError, Redactor};
use serde_json::{Value, json};

fn redactor() -> Redactor {
    Redactor::new(&RedactConfig::default()).expect("default config")
}

// ---------------------------------------------------------------------------------------------
// JSON

#[test]
fn drop_list_replaces_values_wholesale_and_patterns_apply_elsewhere() {
    let r = redactor();
    let mut v = json!({
        "user": {
            "email": "bob@example.com",
            "Password": "hunter2",
            "apiKey": 12345,
            "db_password_hash": {"algo": "bcrypt"},
            "headers": {"Authorization": "Bearer abc", "X-Request-Id": "r-1"}
        },
        "max_tokens": 100,
        "input_tokens": 7,
        "note": "call +44 20 7946 0958"
    });
    let f = r.redact_json(&mut v);
    assert_eq!(
        v,
        json!({
            "user": {
                "email": "[EMAIL]",
                "Password": "[REDACTED]",
                "apiKey": "[REDACTED]",
                "db_password_hash": "[REDACTED]",
                "headers": {"Authorization": "[REDACTED]", "X-Request-Id": "r-1"}
            },
            "max_tokens": 100,
            "input_tokens": 7,
            "note": "call [PHONE]"
        })
    );
    assert_eq!(f.fields(), 4);
    assert_eq!(f.get(Kind::Email), 1);
    assert_eq!(f.get(Kind::Phone), 1);
}

#[test]
fn keep_list_mode_keeps_only_listed_keys() {
    let cfg = RedactConfig {
        json_keep_keys: Some(vec!["model".into(), "role".into(), "content".into()]),
        ..RedactConfig::default()
    };
    let r = Redactor::new(&cfg).expect("config");
    let doc = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "mail a@b.io", "name": "Bob Smith"},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}
        ],
        "temperature": 0.2,
        "stream": true,
        "stop": null,
        "metadata": {"customer": "ACME", "password": "x"}
    });
    let expected = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "mail [EMAIL]", "name": "[REDACTED]"},
            // Nested values under a kept key inherit "kept".
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}
        ],
        "temperature": "[REDACTED]",
        "stream": "[REDACTED]",
        "stop": null,
        "metadata": {"customer": "[REDACTED]", "password": "[REDACTED]"}
    });
    let mut v = doc.clone();
    let f = r.redact_json(&mut v);
    assert_eq!(v, expected);
    assert_eq!(f.get(Kind::Email), 1);
    assert_eq!(f.fields(), 5);
    // The text path agrees.
    let doc_text = doc.to_string();
    let (text, f2) = r.redact_json_str(&doc_text);
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("json"),
        expected
    );
    assert_eq!(f, f2);
    // And a second pass changes nothing.
    let (again, f3) = r.redact_json_str(&text);
    assert_eq!(again, text);
    assert!(f3.is_empty(), "{:?}", f3.iter().collect::<Vec<_>>());
}

#[test]
fn tool_call_arguments_encoded_as_a_string_are_redacted_as_json() {
    let r = redactor();
    let args = r#"{"username":"bob","password":"hunter2","email":"bob@x.io"}"#;
    let doc = json!({"type": "function", "function": {"name": "login", "arguments": args}});
    let doc_text = doc.to_string();
    let (out, f) = r.redact_json_str(&doc_text);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["function"]["arguments"],
        r#"{"username":"bob","password":"[REDACTED]","email":"[EMAIL]"}"#
    );
    assert_eq!(f.fields(), 1);
    assert_eq!(f.get(Kind::Email), 1);
    let mut v2 = doc.clone();
    assert_eq!(r.redact_json(&mut v2), f);
    assert_eq!(v2, v);
}

#[test]
fn keys_are_redacted_without_collisions() {
    let r = redactor();
    let doc = r#"{"a@x.io": 1, "b@x.io": 2, "[EMAIL]": 3}"#;
    let (out, f) = r.redact_json_str(doc);
    let v: Value = serde_json::from_str(&out).expect("json");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 3, "{out}");
    assert_eq!(obj["[EMAIL]"], 3);
    assert!(
        obj.contains_key("[EMAIL]#2") && obj.contains_key("[EMAIL]#3"),
        "{out}"
    );
    assert_eq!(f.get(Kind::Email), 2);
    let mut v2: Value = serde_json::from_str(doc).expect("json");
    r.redact_json(&mut v2);
    assert_eq!(v2.as_object().map(|o| o.len()), Some(3));
}

#[test]
fn json_text_keeps_formatting_and_borrows_when_clean() {
    let r = redactor();
    let pretty = "{\n  \"role\": \"user\",\n  \"content\": \"hi, no secrets here\"\n}";
    let (out, f) = r.redact_json_str(pretty);
    assert!(matches!(out, Cow::Borrowed(_)));
    assert!(f.is_empty());
    let pretty =
        "{\n  \"role\": \"user\",\n  \"content\": \"mail a@b.io\\nthanks\",\n  \"n\": 1\n}";
    let (out, _) = r.redact_json_str(pretty);
    assert_eq!(
        out,
        "{\n  \"role\": \"user\",\n  \"content\": \"mail [EMAIL]\\nthanks\",\n  \"n\": 1\n}"
    );
}

#[test]
fn invalid_json_falls_back_to_text() {
    let r = redactor();
    let (out, f) = r.redact_json_str("{\"truncated\": \"mail a@b.io and card 4111 1111 1111 1111");
    assert_eq!(out, "{\"truncated\": \"mail [EMAIL] and card [CARD]");
    assert_eq!(f.total(), 2);
    let (out, _) = r.redact_json_str("plain a@b.io");
    assert_eq!(out, "plain [EMAIL]");
}

#[test]
fn deep_json_is_handled_without_overflow() {
    let r = redactor();
    // Within serde_json's recursion limit: redacted as JSON.
    let doc = format!("{}\"a@b.io\"{}", "[".repeat(100), "]".repeat(100));
    let (out, _) = r.redact_json_str(&doc);
    assert!(out.contains("[EMAIL]") && out.starts_with("[[["));
    // Beyond it: not parseable, redacted as text — nothing leaks either way.
    let doc = format!("{}\"a@b.io\"{}", "[".repeat(5000), "]".repeat(5000));
    let (out, _) = r.redact_json_str(&doc);
    assert!(out.contains("[EMAIL]") && !out.contains("a@b.io"));
    // A Value deeper than any parser would build: the deep part is replaced wholesale.
    let mut v = Value::String("a@b.io".into());
    for _ in 0..400 {
        v = Value::Array(vec![v]);
    }
    r.redact_json(&mut v);
    assert!(!serde_json::to_string(&v).expect("ser").contains("a@b.io"));
}

#[test]
fn unicode_and_escapes_in_json_strings() {
    let r = redactor();
    let (out, _) = r.redact_json_str(r#"{"t":"caf\u00e9 \u0062ob@x.io \ud83d\ude00"}"#);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["t"], "café [EMAIL] 😀");
}

// ---------------------------------------------------------------------------------------------
// URLs

#[test]
fn url_components() {
    let r = redactor();
    let (out, f) = r.redact_url(
        "https://api.example.com/v1/users/john%40example.com/orders?email=jane%40example.com&page=2&token=abc&X-Amz-Signature=deadbeef#access_token=xyz&state=1",
    );
    assert_eq!(
        out,
        "https://api.example.com/v1/users/[EMAIL]/orders?email=[EMAIL]&page=2&token=[REDACTED]&X-Amz-Signature=[REDACTED]#access_token=[REDACTED]&state=1"
    );
    assert_eq!(f.get(Kind::Email), 2);
    assert_eq!(f.fields(), 3);
}

#[test]
fn url_credentials_and_hosts() {
    let r = redactor();
    let (out, _) = r.redact_url("postgres://admin:s3cret@10.0.0.5:5432/app");
    assert_eq!(out, "postgres://admin:[REDACTED]@[IP]:5432/app");
    let (out, _) = r.redact_url(
        "/v1beta/models/gemini:generateContent?key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    );
    assert_eq!(out, "/v1beta/models/gemini:generateContent?key=[API_KEY]");
    let (out, _) = r.redact_url(
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    );
    assert_eq!(out, "[SLACK_TOKEN]");
    let (out, f) = r.redact_url("/v1/chat/completions");
    assert!(matches!(out, Cow::Borrowed(_)) && f.is_empty());
    // Idempotent.
    let (once, _) = r.redact_url("https://u:p@x.io/a%40b.io?token=t&q=x");
    let (twice, f) = r.redact_url(&once);
    assert_eq!(once, twice);
    assert!(f.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn config_from_toml() {
    let cfg: RedactConfig = toml::from_str(
        r#"
        kinds = ["email", "card", "api_key"]
        json_drop_keys = ["secret", "*_pin"]
        [[custom]]
        name = "employee_id"
        regex = 'EMP-\d{6}'
        "#,
    )
    .expect("toml");
    assert_eq!(cfg.kinds, [Kind::Email, Kind::Card, Kind::ApiKey]);
    assert_eq!(cfg.json_keep_keys, None);
    let r = Redactor::new(&cfg).expect("config");
    let (out, f) = r.redact_text("EMP-123456 mailed a@b.io from 10.0.0.1");
    assert_eq!(out, "[EMPLOYEE_ID] mailed [EMAIL] from 10.0.0.1");
    assert_eq!(f.custom("employee_id"), 1);
    assert_eq!(
        f.iter().collect::<Vec<_>>(),
        [("email", 1), ("employee_id", 1)]
    );
    let mut v = json!({"card_pin": 1234, "secret": "s", "password": "kept: not in this drop-list"});
    r.redact_json(&mut v);
    assert_eq!(
        v,
        json!({"card_pin": "[REDACTED]", "secret": "[REDACTED]", "password": "kept: not in this drop-list"})
    );
}

#[test]
fn config_defaults_and_rejections() {
    let cfg: RedactConfig = toml::from_str("").expect("empty config is the default");
    assert_eq!(cfg, RedactConfig::default());
    assert_eq!(cfg.kinds.len(), Kind::ALL.len());
    let err = toml::from_str::<RedactConfig>("kinds = [\"emial\"]")
        .unwrap_err()
        .to_string();
    assert!(err.contains("emial"), "{err}");
    let err = toml::from_str::<RedactConfig>("json_drop_key = []")
        .unwrap_err()
        .to_string();
    assert!(err.contains("json_drop_key"), "{err}");
    let cfg: RedactConfig =
        serde_json::from_value(json!({"json_keep_keys": ["role"]})).expect("json config");
    assert_eq!(cfg.json_keep_keys, Some(vec!["role".to_string()]));
}

#[test]
fn bad_custom_patterns_are_named() {
    let with = |name: &str, regex: &str| RedactConfig {
        custom: vec![
            CustomPattern::new("ok", "OK-[0-9]+"),
            CustomPattern::new(name, regex),
        ],
        ..RedactConfig::default()
    };
    let err = Redactor::new(&with("ticket_ref", "TCK-([0-9")).unwrap_err();
    assert!(matches!(err, RedactError::InvalidPattern { ref name, .. } if name == "ticket_ref"));
    assert!(err.to_string().contains("ticket_ref"), "{err}");
    let err = Redactor::new(&with("maybe", "x*")).unwrap_err();
    assert!(matches!(err, RedactError::EmptyMatch { .. }), "{err}");
    for bad in ["", "has space", "email", "OK", "redacted", &"x".repeat(65)] {
        let err = Redactor::new(&with(bad, "Z[0-9]+")).unwrap_err();
        assert!(
            matches!(err, RedactError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
    }
    let cfg = RedactConfig {
        json_drop_keys: vec!["a*b".into()],
        ..RedactConfig::default()
    };
    assert!(Redactor::new(&cfg).unwrap_err().to_string().contains("a*b"));
}

#[test]
fn custom_patterns_do_not_touch_placeholders_and_stay_idempotent() {
    let cfg = RedactConfig {
        custom: vec![CustomPattern::new("shout", "[A-Z]{4,}")],
        ..RedactConfig::default()
    };
    let r = Redactor::new(&cfg).expect("config");
    let (once, _) = r.redact_text("HELLO a@b.io");
    assert_eq!(once, "[SHOUT] [EMAIL]");
    let (twice, f) = r.redact_text(&once);
    assert_eq!(twice, once);
    assert!(f.is_empty());
}
