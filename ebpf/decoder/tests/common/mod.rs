//! Shared helpers for the decoder's integration tests: load fixture captures and decode them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lumen_decoder::capfile::{Capture, Record};
use lumen_decoder::{ConnInfo, Connection, DecoderConfig, Span};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every case of `index.json`: (name, capture paths, expect path).
pub fn cases() -> Vec<(String, Vec<String>, String)> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    index
        .as_array()
        .expect("index is a list")
        .iter()
        .map(|case| {
            let captures = case["captures"]
                .as_array()
                .expect("captures")
                .iter()
                .map(|c| c.as_str().expect("capture path").to_string())
                .collect();
            (
                case["name"].as_str().expect("name").to_string(),
                captures,
                case["expect"].as_str().expect("expect").to_string(),
            )
        })
        .collect()
}

pub fn load(capture: &str) -> Capture {
    let bytes =
        std::fs::read(fixtures().join(capture)).unwrap_or_else(|e| panic!("{capture}: {e}"));
    Capture::parse(&bytes).unwrap_or_else(|e| panic!("{capture}: {e}"))
}

pub fn conn_info(capture: &Capture, name: &str) -> ConnInfo {
    ConnInfo {
        key: 1,
        peer_address: capture.meta.get("server_address").cloned(),
        peer_port: capture.meta.get("server_port").and_then(|p| p.parse().ok()),
        local_address: Some("10.0.0.2".into()),
        tls_library: None,
        // Captures that start inside a live connection say so in their name.
        from_start: !name.contains("mid_connection"),
    }
}

/// Decodes a sequence of records as one connection and closes it after the last one.
pub fn decode_records(records: &[Record], info: ConnInfo) -> Vec<Span> {
    let mut connection = Connection::new(Arc::new(DecoderConfig::default()), info);
    let mut last = 0;
    let mut spans = Vec::new();
    for record in records {
        match record {
            Record::Data(direction, ts, bytes) => {
                connection.data(*direction, *ts, bytes);
                last = *ts;
            }
            Record::Gap(direction, ts, len) => {
                connection.gap(*direction, *ts, *len);
                last = *ts;
            }
        }
        spans.extend(connection.take_spans());
    }
    connection.close(last);
    spans.extend(connection.take_spans());
    spans.sort_by_key(|s| s.start_time);
    spans
}

pub fn decode(capture: &Capture, name: &str) -> Vec<Span> {
    decode_records(&capture.records, conn_info(capture, name))
}
