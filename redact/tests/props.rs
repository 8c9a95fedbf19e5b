//! Properties over arbitrary input: redaction never panics, is idempotent (redacting the output
//! again changes nothing and finds nothing), keeps valid JSON valid; and huge or pathological
//! inputs finish in linear-looking time.

use std::time::{Duration, Instant};

use lumen_redact::{RedactConfig, Redactor};
use proptest::prelude::*;
use serde_json::json;

/// Pieces that sit near the detectors' edges: separators, prefixes, escapes, placeholders.
const FRAGMENTS: &[&str] = &[
    "4111",
    "1111",
    "0",
    "1",
    "9",
    "+",
    "(",
    ")",
    " ",
    "-",
    ".",
    "/",
    ":",
    "::",
    "@",
    "a",
    "Z",
    "DE89",
    "GB82 WEST",
    "AB",
    "12 34 56",
    "C",
    "sk-",
    "sk-proj-",
    "eyJ",
    "eyJhbGciOiJIUzI1NiJ9",
    ".",
    "AKIA",
    "ghp_",
    "xoxb-",
    "xapp-",
    "Bearer ",
    "api_key=",
    "aws_secret_access_key=",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "\\n",
    "\\",
    "\"",
    "\\\"",
    "\n",
    "é",
    "日本",
    "😀",
    "[EMAIL]",
    "[CARD]",
    "[REDACTED]",
    "https://",
    "hooks.slack.com/services/",
    "example.com",
    "%40",
    "?",
    "&",
    "=",
    "#",
    "fe80",
    "2001:db8",
    "192.168.",
    "10.0.0.1",
    "415-555-0132",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "john@example.com",
    "123-45-6789",
    "DE89 3704 0044 0532 0130 00",
];

fn tricky() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
            2 => "[0-9]{1,6}",
            1 => "[A-Z]{1,4}",
            1 => "[a-z]{1,6}",
            1 => "[A-Za-z0-9+/=_-]{20,60}",
            1 => any::<char>().prop_map(|c| c.to_string()),
        ],
        0..60,
    )
    .prop_map(|v| v.concat())
}

fn redactor() -> Redactor {
    Redactor::new(&RedactConfig::default()).expect("default config")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn text_is_idempotent(s in tricky()) {
        let r = redactor();
        let (once, _) = r.redact_text(&s);
        let (twice, f) = r.redact_text(&once);
        prop_assert_eq!(&twice, &once);
        prop_assert!(f.is_empty());
        // Every match lies on char boundaries and inside the text.
        for m in r.find(&s) {
            prop_assert!(s.get(m.range()).is_some());
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(s in any::<String>()) {
        let r = redactor();
        let (once, _) = r.redact_text(&s);
        let (twice, _) = r.redact_text(&once);
        prop_assert_eq!(&twice, &once);
        let _ = r.redact_json_str(&s);
        let _ = r.redact_url(&s);
    }

    #[test]
    fn json_stays_json_and_is_idempotent(s in tricky()) {
        let r = redactor();
        let inner = json!({"q": s, "password": s}).to_string();
        let doc = json!({"messages": [{"role": "user", "content": s}], "arguments": inner, s.clone(): 1}).to_string();
        let (once, _) = r.redact_json_str(&doc);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&once).is_ok(), "{}", once);
        let (twice, f) = r.redact_json_str(&once);
        prop_assert_eq!(&twice, &once);
        prop_assert!(f.is_empty());
        // Raw text through the JSON entry point (usually not JSON) never panics.
        let _ = r.redact_json_str(&s);
    }

    #[test]
    fn urls_are_idempotent(s in tricky()) {
        let r = redactor();
        for url in [format!("https://{s}"), format!("/v1/{s}?q={s}&token={s}#{s}"), s.clone()] {
            let (once, _) = r.redact_url(&url);
            let (twice, f) = r.redact_url(&once);
            prop_assert_eq!(&twice, &once);
            prop_assert!(f.is_empty(), "{:?}", f.iter().collect::<Vec<_>>());
        }
    }
}

#[test]
fn huge_and_pathological_inputs_finish() {
    let r = redactor();
    let mb = 1 << 20;
    let rep = |s: &str| s.repeat(mb / s.len());
    let cases: Vec<(&str, String)> = vec![
        ("digits", rep("1")),
        ("spaced digits", rep("1 ")),
        ("card groups", rep("4111 ")),
        ("at signs", rep("@")),
        ("local parts", rep("a@")),
        ("colons", rep(":")),
        ("hex colons", rep("a1:")),
        ("dots", rep("1.")),
        ("plus", rep("+1 ")),
        ("iban groups", rep("DE89 ")),
        ("backslashes", rep("\\")),
        ("escaped newlines", rep("\\n")),
        ("begin markers", rep("-----BEGIN PRIVATE KEY-----")),
        ("sk prefixes", rep("sk-")),
        ("jwt prefixes", rep("eyJ.")),
        ("placeholders", rep("[EMAIL]")),
        ("uppercase", rep("AB")),
        ("unicode", rep("日本語😀")),
        ("brackets", rep("[")),
    ];
    for (name, text) in &cases {
        let t = Instant::now();
        let (out, _) = r.redact_text(text);
        let (again, _) = r.redact_text(&out);
        assert_eq!(again, out, "{name}: not idempotent");
        let _ = r.redact_json_str(text);
        let el = t.elapsed();
        println!("{name:<18} {:>8.1} ms", el.as_secs_f64() * 1e3);
        // Generous: catches quadratic blow-ups (minutes), not machine noise.
        assert!(el < Duration::from_secs(20), "{name}: {el:?}");
    }
    // 8 MB of realistic mixed text in one string.
    let big: String = lumen_redact::corpus::generate(9, 12_000)
        .into_iter()
        .map(|s| s.text)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(big.len() > 6 * mb);
    let t = Instant::now();
    let (out, f) = r.redact_text(&big);
    println!(
        "corpus in one string: {} MB, {} findings, {:?}",
        big.len() / mb,
        f.total(),
        t.elapsed()
    );
    assert!(out.len() < big.len());
}
