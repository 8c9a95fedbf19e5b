//! Lumen ingest: the span contract (Rust-side column table and Arrow schema), validation of request
//! bodies, the write-ahead log with group commit, and the hot buffer of durable, queryable batches.
//!
//! Data path: `parse::parse_spans` (body → RecordBatch or line/field errors) → `pipeline::Ingester`
//! (WAL append + fsync, de-duplication on span_id) → `buffer::HotBuffer` (read by the query stage,
//! drained by the storage stage's flush).

pub mod buffer;
pub mod parse;
pub mod pipeline;
pub mod schema;
pub mod wal;

pub use buffer::{FlushSet, HotBatch, HotBuffer};
pub use parse::{BodyFormat, LineError, ParseError, parse_spans};
pub use pipeline::{Ack, IngestConfig, IngestError, IngestStats, Ingester};
pub use schema::{COLUMNS, span_schema};
