//! The decoder's output: one span in the span contract (`ingest/src/schema.rs`), serialised as the JSON
//! object `POST /v1/spans` accepts. Unknown values stay `None` and are left out of the JSON, never 0.

use std::collections::BTreeMap;

use serde::Serialize;

/// Capture flags recorded on a span (`capture_flags`).
pub mod flags {
    /// Bytes of this exchange were lost (sensor gap, cut connection, body over the size cap).
    pub const TRUNCATED: &str = "truncated";
    /// HTTP/2 headers could not be decoded (capture started mid-connection); fields come from DATA only.
    pub const MID_STREAM_ATTACH: &str = "mid_stream_attach";
    /// Request or response content was not captured because of the capture mode.
    pub const CONTENT_DROPPED: &str = "content_dropped";
    /// The `redacted` capture policy was in force: sensitive values in content were replaced by placeholders.
    pub const REDACTED: &str = "redacted";
    /// The response stream carried an error event after the HTTP status.
    pub const STREAM_ERROR: &str = "stream_error";
    /// A body could not be decompressed or parsed as its declared format.
    pub const UNDECODABLE: &str = "undecodable";
}

/// One decoded span. Field names are the span contract's column names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Span {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// Unix nanoseconds of the first request byte.
    pub start_time: i64,
    /// Unix nanoseconds of the last response byte seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    pub source: String,
    pub span_kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_library: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finish_reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// OTel GenAI `gen_ai.input.messages` as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_messages: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_messages: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instructions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_definitions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capture_flags: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl Span {
    pub fn flag(&mut self, flag: &str) {
        if !self.capture_flags.iter().any(|f| f == flag) {
            self.capture_flags.push(flag.to_string());
        }
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.capture_flags.iter().any(|f| f == flag)
    }

    /// True when the exchange was recognised as an LLM API call.
    pub fn is_llm(&self) -> bool {
        self.provider.is_some()
    }

    pub fn to_json(&self) -> String {
        // Serialising a struct of strings, numbers and maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Stable 64-bit FNV-1a, used for span ids that must be the same when a capture is decoded twice
/// (so a re-sent batch is deduplicated by ingest). `std`'s hasher is not stable across releases.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
