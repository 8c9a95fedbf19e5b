//! Golden fixtures: every capture in `tests/fixtures` (provider × operation × unary/streaming ×
//! HTTP/1.1/HTTP/2, transport edge cases) decodes to the facts in its `.expect.json` — written from
//! the wire bytes by the fixture generator, not by this decoder — and to the full span stored as an
//! insta snapshot (`tests/snapshots`), which makes every other field reviewable.

mod common;

use serde_json::Value;

/// Keys of expect.json that are not span columns.
const META_KEYS: &[&str] = &[
    "exchanges",
    "flags",
    "secrets",
    "spans",
    "note",
    "trace_id",
    "parent_span_id",
];

fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Null, Value::Null) => true,
        // An empty list and an absent one are the same "unknown".
        (Value::Null, Value::Array(a)) | (Value::Array(a), Value::Null) => a.is_empty(),
        (Value::Number(e), Value::Number(a)) => {
            (e.as_f64().unwrap_or(f64::NAN) - a.as_f64().unwrap_or(f64::NAN)).abs() < 1e-6
        }
        _ => expected == actual,
    }
}

fn check_facts(label: &str, expected: &Value, span: &Value, errors: &mut Vec<String>) {
    let Some(facts) = expected.as_object() else {
        return;
    };
    for (key, want) in facts {
        if META_KEYS.contains(&key.as_str()) && key != "trace_id" && key != "parent_span_id" {
            continue;
        }
        let got = span.get(key).cloned().unwrap_or(Value::Null);
        if !same(want, &got) {
            errors.push(format!("{label}: {key} expected {want}, decoded {got}"));
        }
    }
    let flags: Vec<&str> = span["capture_flags"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let want_flags: Vec<&str> = expected["flags"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for flag in ["truncated", "mid_stream_attach"] {
        if want_flags.contains(&flag) != flags.contains(&flag) {
            errors.push(format!(
                "{label}: flag {flag} expected {}, decoded flags {flags:?}",
                want_flags.contains(&flag)
            ));
        }
    }
}

#[test]
fn every_fixture_decodes_to_its_expected_facts() {
    let mut errors = Vec::new();
    let mut checked = 0;
    for (name, captures, expect) in common::cases() {
        let expected: Value = serde_json::from_slice(
            &std::fs::read(common::fixtures().join(&expect)).expect("expect file"),
        )
        .expect("expect is JSON");
        for capture_path in captures {
            let capture = common::load(&capture_path);
            let spans = common::decode(&capture, &name);
            let json: Vec<Value> = spans
                .iter()
                .map(|s| serde_json::to_value(s).expect("span serialises"))
                .collect();
            let exchanges = expected["exchanges"].as_u64().unwrap_or(1) as usize;
            if json.len() != exchanges {
                errors.push(format!(
                    "{capture_path}: {} spans, expected {exchanges}",
                    json.len()
                ));
            }
            let per_span: Vec<Value> = match expected["spans"].as_array() {
                Some(list) => list.clone(),
                None => vec![expected.clone()],
            };
            for (i, want) in per_span.iter().enumerate() {
                match json.get(i) {
                    Some(span) => {
                        check_facts(&format!("{capture_path}#{i}"), want, span, &mut errors)
                    }
                    None => errors.push(format!("{capture_path}#{i}: missing span")),
                }
            }
            let text = serde_json::to_string(&json).expect("serialises");
            for secret in expected["secrets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if text.contains(secret) {
                    errors.push(format!(
                        "{capture_path}: secret {secret:?} leaked into a span"
                    ));
                }
            }
            let http_version = if capture_path.ends_with(".h2.cap") {
                "2"
            } else {
                "1.1"
            };
            for span in &json {
                if span["http_version"] != http_version {
                    errors.push(format!(
                        "{capture_path}: http_version {}",
                        span["http_version"]
                    ));
                }
            }
            let snapshot_name = capture_path.trim_end_matches(".cap").replace('/', "__");
            insta::with_settings!({snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true}, {
                insta::assert_json_snapshot!(snapshot_name, json);
            });
            checked += 1;
        }
    }
    assert!(checked >= 70, "only {checked} captures found");
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// Spans go through the real ingest parser: every field the decoder writes is a valid span-contract
/// column with a valid value.
#[test]
fn decoded_spans_are_accepted_by_ingest() {
    let columns: Vec<&str> = lumen_ingest::schema::COLUMNS
        .iter()
        .map(|c| c.name)
        .collect();
    let mut body = String::new();
    for (name, captures, _) in common::cases() {
        for capture_path in captures {
            for span in common::decode(&common::load(&capture_path), &name) {
                let json = serde_json::to_value(&span).expect("serialises");
                for key in json.as_object().expect("object").keys() {
                    assert!(
                        columns.contains(&key.as_str()),
                        "{capture_path}: {key} is not a span column"
                    );
                }
                body.push_str(&span.to_json());
                body.push('\n');
            }
        }
    }
    let batch =
        lumen_ingest::parse::parse_spans(body.as_bytes(), lumen_ingest::parse::BodyFormat::Ndjson)
            .unwrap_or_else(|e| panic!("ingest rejected decoded spans: {e}"));
    assert!(batch.num_rows() >= 70);
    for column in ["attributes", "capture_flags"] {
        assert!(batch.schema().index_of(column).is_ok());
    }
}
