//! The span contract: one table of columns that drives the Arrow schema, ingest validation and the
//! documentation. Every other stage reads the contract from here; nothing else spells out column types.

use std::sync::{Arc, LazyLock};

use arrow::array::{RecordBatch, new_null_array};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

/// How a column is typed on the wire (JSON) and in Arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// utf8 string.
    Str,
    /// utf8 holding JSON text; the wire accepts a JSON string or any JSON value (serialised as-is).
    JsonText,
    /// timestamp(ns, UTC); the wire accepts an RFC 3339 string or integer Unix nanoseconds.
    Timestamp,
    F64,
    I64,
    U16,
    U32,
    U64,
    Bool,
    /// list<utf8>; the wire accepts an array of strings.
    StrList,
    /// map<utf8, utf8>; the wire accepts an object whose values are scalars (non-strings are stringified).
    StrMap,
}

/// One column of the span contract.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

const fn col(name: &'static str, kind: Kind, doc: &'static str) -> Column {
    Column { name, kind, doc }
}

/// Column names used by code in other stages (kept here so a rename is one edit).
pub mod names {
    pub const TRACE_ID: &str = "trace_id";
    pub const SPAN_ID: &str = "span_id";
    pub const START_TIME: &str = "start_time";
    pub const END_TIME: &str = "end_time";
    pub const DURATION_MS: &str = "duration_ms";
    pub const ATTRIBUTES: &str = "attributes";
    pub const DUPLICATE_OF: &str = "duplicate_of";
    pub const CAPTURE_FLAGS: &str = "capture_flags";
}

/// The columns in table order. Unknown is NULL, never 0.
pub const COLUMNS: &[Column] = &[
    col(
        "trace_id",
        Kind::Str,
        "trace id (32 hex chars); generated when absent",
    ),
    col(
        "span_id",
        Kind::Str,
        "span id (16 hex chars); generated when absent; ingest is idempotent on it",
    ),
    col(
        "parent_span_id",
        Kind::Str,
        "parent span id, from a captured traceparent",
    ),
    col(
        "start_time",
        Kind::Timestamp,
        "REQUIRED. first request byte",
    ),
    col(
        "end_time",
        Kind::Timestamp,
        "last response byte; derived from duration_ms when absent",
    ),
    col(
        "duration_ms",
        Kind::F64,
        "total latency; derived from end_time when absent",
    ),
    col(
        "ttft_ms",
        Kind::F64,
        "time to first content-bearing chunk (streams)",
    ),
    col("source", Kind::Str, "ebpf | otlp | api (default api)"),
    col("span_kind", Kind::Str, "client | server (default client)"),
    col("host", Kind::Str, "host name"),
    col("service_name", Kind::Str, "workload / service"),
    col("k8s_namespace", Kind::Str, "Kubernetes namespace"),
    col("k8s_pod", Kind::Str, "Kubernetes pod"),
    col("container_id", Kind::Str, "container id"),
    col("pid", Kind::U32, "calling process id"),
    col("process_name", Kind::Str, "calling process name"),
    col("exe", Kind::Str, "calling process executable"),
    col("server_address", Kind::Str, "peer address or host name"),
    col("server_port", Kind::U16, "peer port"),
    col("client_address", Kind::Str, "client address"),
    col(
        "tls_library",
        Kind::Str,
        "openssl, boringssl, go, plaintext, ...",
    ),
    col("http_version", Kind::Str, "1.1, 2"),
    col("http_method", Kind::Str, "HTTP method"),
    col("url_path", Kind::Str, "HTTP path (no secrets in query)"),
    col("http_status", Kind::U16, "HTTP status (100..=599)"),
    col(
        "provider",
        Kind::Str,
        "gen_ai.provider.name: openai, anthropic, aws.bedrock, ...",
    ),
    col(
        "operation",
        Kind::Str,
        "chat, text_completion, embeddings, generate_content, ...",
    ),
    col("request_model", Kind::Str, "model asked for"),
    col("response_model", Kind::Str, "model that answered"),
    col("response_id", Kind::Str, "provider response id"),
    col("streaming", Kind::Bool, "streamed response"),
    col("finish_reasons", Kind::StrList, "finish reasons"),
    col(
        "input_tokens",
        Kind::I64,
        "input tokens (>= 0), incl. cached",
    ),
    col(
        "output_tokens",
        Kind::I64,
        "output tokens (>= 0), incl. reasoning",
    ),
    col(
        "cache_read_tokens",
        Kind::I64,
        "cached input tokens read (>= 0)",
    ),
    col(
        "cache_creation_tokens",
        Kind::I64,
        "input tokens written to cache (>= 0)",
    ),
    col("reasoning_tokens", Kind::I64, "reasoning tokens (>= 0)"),
    col(
        "cost_usd",
        Kind::F64,
        "cost in USD (>= 0); NULL when the model is unknown",
    ),
    col("temperature", Kind::F64, "request temperature"),
    col("top_p", Kind::F64, "request top_p"),
    col("max_tokens", Kind::I64, "request max tokens"),
    col(
        "error_type",
        Kind::Str,
        "provider error type or HTTP status class",
    ),
    col("error_message", Kind::Str, "error message"),
    col(
        "input_messages",
        Kind::JsonText,
        "prompt messages, OTel GenAI JSON",
    ),
    col(
        "output_messages",
        Kind::JsonText,
        "completion messages, OTel GenAI JSON",
    ),
    col(
        "system_instructions",
        Kind::JsonText,
        "system instructions, OTel GenAI JSON",
    ),
    col("tool_definitions", Kind::JsonText, "tool definitions, JSON"),
    col("request_bytes", Kind::U64, "request body bytes"),
    col("response_bytes", Kind::U64, "response body bytes"),
    col(
        "capture_flags",
        Kind::StrList,
        "truncated, redacted, mid_stream_attach, ...",
    ),
    col(
        "duplicate_of",
        Kind::Str,
        "set when this call was also seen by another source (SDK and sensor): the span_id of the row that counts; such rows are in spans_all, not in spans",
    ),
    col(
        "attributes",
        Kind::StrMap,
        "everything else; unknown input fields land here",
    ),
];

/// Index of a column by name.
pub fn column_index(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| c.name == name)
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Str | Kind::JsonText => DataType::Utf8,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            Kind::F64 => DataType::Float64,
            Kind::I64 => DataType::Int64,
            Kind::U16 => DataType::UInt16,
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::Bool => DataType::Boolean,
            Kind::StrList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            Kind::StrMap => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("keys", DataType::Utf8, false),
                        Field::new("values", DataType::Utf8, true),
                    ])),
                    false,
                )),
                false,
            ),
        }
    }

    /// The word used in validation messages ("expected integer").
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::JsonText => "JSON value or string",
            Kind::Timestamp => {
                "RFC 3339 timestamp or integer Unix nanoseconds between 1970 and 2200"
            }
            Kind::F64 => "number",
            Kind::I64 => "integer",
            Kind::U16 | Kind::U32 | Kind::U64 => "non-negative integer",
            Kind::Bool => "boolean",
            Kind::StrList => "array of strings",
            Kind::StrMap => "object of scalars",
        }
    }
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| {
            // start_time, end_time, trace_id and span_id are always filled in by ingest.
            let nullable = !matches!(c.name, "trace_id" | "span_id" | "start_time" | "end_time");
            Field::new(c.name, c.kind.data_type(), nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
});

/// The Arrow schema of the `spans` table (and of every Parquet file and WAL record).
pub fn span_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// A batch read back from storage written by an earlier version (the WAL), in today's schema: columns
/// are taken by name, columns added since are NULL. A column of another type, a missing required column
/// or an unknown column is an error (a format change this version cannot read), never a panic later.
pub fn conform(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = span_schema();
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let theirs = batch.schema();
    if let Some(unknown) = theirs
        .fields()
        .iter()
        .find(|f| schema.field_with_name(f.name()).is_err())
    {
        return Err(ArrowError::SchemaError(format!(
            "unknown column {:?} in a stored batch",
            unknown.name()
        )));
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        match theirs.index_of(field.name()) {
            Ok(i) if theirs.field(i).data_type() == field.data_type() => {
                columns.push(batch.column(i).clone());
            }
            Ok(i) => {
                return Err(ArrowError::SchemaError(format!(
                    "column {:?} is {} in a stored batch, {} now",
                    field.name(),
                    theirs.field(i).data_type(),
                    field.data_type()
                )));
            }
            Err(_) if field.is_nullable() => {
                columns.push(new_null_array(field.data_type(), batch.num_rows()));
            }
            Err(_) => {
                return Err(ArrowError::SchemaError(format!(
                    "required column {:?} is missing from a stored batch",
                    field.name()
                )));
            }
        }
    }
    RecordBatch::try_new(schema, columns)
}

/// A Markdown table of the contract, for the README and `lumen schema`.
pub fn markdown_table() -> String {
    let mut out = String::from("| column | type | notes |\n|---|---|---|\n");
    for c in COLUMNS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.name,
            c.kind.data_type(),
            c.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_of_an_earlier_schema_are_conformed_by_name() {
        use arrow::array::{Array, StringArray, TimestampNanosecondArray};
        let now = span_schema();
        // The WAL of the version before `duplicate_of` existed: that column absent.
        let old = Arc::new(Schema::new(
            now.fields()
                .iter()
                .filter(|f| f.name() != names::DUPLICATE_OF)
                .cloned()
                .collect::<Vec<_>>(),
        ));
        let columns = old
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "span_id" | "trace_id" => Arc::new(StringArray::from(vec!["a"])) as _,
                "start_time" | "end_time" => {
                    Arc::new(TimestampNanosecondArray::from(vec![1]).with_timezone("UTC")) as _
                }
                _ => arrow::array::new_null_array(f.data_type(), 1),
            })
            .collect();
        let batch = RecordBatch::try_new(old, columns).unwrap();
        let conformed = conform(batch).unwrap();
        assert_eq!(conformed.schema(), now);
        let duplicate_of = conformed.column_by_name(names::DUPLICATE_OF).unwrap();
        assert_eq!(duplicate_of.null_count(), 1);
        assert_eq!(
            conformed
                .column_by_name("span_id")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(0),
            "a"
        );
        // A column this version does not know is refused, not carried along.
        let odd = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("nope", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["x"])) as _],
        )
        .unwrap();
        assert!(conform(odd).unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn schema_matches_columns() {
        let schema = span_schema();
        assert_eq!(schema.fields().len(), COLUMNS.len());
        assert_eq!(
            column_index("start_time"),
            schema.index_of("start_time").ok()
        );
        assert!(!schema.field_with_name("span_id").unwrap().is_nullable());
        assert!(
            schema
                .field_with_name("input_tokens")
                .unwrap()
                .is_nullable()
        );
    }
}
