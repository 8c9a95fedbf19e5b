//! Lumen ingest: the span contract (Rust-side column table and Arrow schema), validation of request
//! bodies, the write-ahead log with group commit, and the hot buffer of durable, queryable batches.
//!
//! Data path: `parse::parse_spans` (body → RecordBatch or line/field errors) → `pipeline::Ingester`
//! (WAL append + fsync, de-duplication on span_id) → `buffer::HotBuffer` (read by the query stage,
//! drained by the storage stage's flush).
//!
//! Also here: `otlp` (OTLP/HTTP trace requests → span objects), `policy` (the capture policy applied
//! before the WAL) and `correlate` (one LLM call reported by the sensor and by an SDK counts once).

pub mod buffer;
pub mod correlate;
pub mod otlp;
pub mod parse;
pub mod pipeline;
pub mod policy;
pub mod schema;
pub mod wal;

pub use buffer::{FlushSet, HotBatch, HotBuffer};
pub use parse::{BodyFormat, LineError, ParseError, parse_spans};
pub use pipeline::{Ack, IngestConfig, IngestError, IngestStats, Ingester};
pub use policy::{CaptureMode, CapturePolicy, CaptureRule};
pub use schema::{COLUMNS, span_schema};
