//! `/metrics` in the Prometheus text format. Server-side events (requests, queries) are prometheus-client
//! metrics; the counters the ingest and storage stages keep themselves are read at scrape time by a
//! collector, so those stages do not depend on the metrics library.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use lumen_ingest::{HotBuffer, IngestStats};
use lumen_storage::{Manifest, PersistStats};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    /// Ingest requests by outcome: ok, bad_request, too_large, unsupported, unauthorized, overloaded, error.
    pub ingest_requests: Family<OutcomeLabel, Counter>,
    /// Spans in requests that were rejected as bad input.
    pub spans_rejected: Counter,
    /// Queries by outcome: ok, refused, error.
    pub queries: Family<OutcomeLabel, Counter>,
    pub query_seconds: Histogram,
}

impl Metrics {
    pub fn new(
        ingest: Arc<IngestStats>,
        persist: Arc<PersistStats>,
        buffer: Arc<HotBuffer>,
        manifest: Arc<Manifest>,
    ) -> Self {
        let mut registry = Registry::default();
        let ingest_requests = Family::<OutcomeLabel, Counter>::default();
        let spans_rejected = Counter::default();
        let queries = Family::<OutcomeLabel, Counter>::default();
        let query_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "lumen_ingest_requests",
            "POST /v1/spans requests by outcome",
            ingest_requests.clone(),
        );
        registry.register(
            "lumen_spans_rejected",
            "Spans in requests rejected as bad input",
            spans_rejected.clone(),
        );
        registry.register("lumen_queries", "SQL queries by outcome", queries.clone());
        registry.register(
            "lumen_query_duration_seconds",
            "SQL query latency",
            query_seconds.clone(),
        );
        registry.register_collector(Box::new(StageCollector {
            ingest,
            persist,
            buffer,
            manifest,
        }));
        Metrics {
            registry,
            ingest_requests,
            spans_rejected,
            queries,
            query_seconds,
        }
    }

    pub fn count_ingest(&self, outcome: &str) {
        self.ingest_requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn count_query(&self, outcome: &str) {
        self.queries
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

struct StageCollector {
    ingest: Arc<IngestStats>,
    persist: Arc<PersistStats>,
    buffer: Arc<HotBuffer>,
    manifest: Arc<Manifest>,
}

impl std::fmt::Debug for StageCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StageCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for StageCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let i = &self.ingest;
        let p = &self.persist;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut e,
            "lumen_spans_accepted",
            "Spans made durable and queryable",
            load(&i.spans_accepted),
        )?;
        counter(
            &mut e,
            "lumen_spans_duplicate",
            "Spans acknowledged as retries of stored span ids",
            load(&i.spans_duplicate),
        )?;
        counter(
            &mut e,
            "lumen_capture_policy_rows_changed",
            "Spans whose content the capture policy redacted or dropped before the WAL",
            load(&i.policy_rows_changed),
        )?;
        counter(
            &mut e,
            "lumen_capture_policy_values_redacted",
            "Sensitive values the capture policy replaced by placeholders",
            load(&i.policy_values_redacted),
        )?;
        counter(
            &mut e,
            "lumen_calls_merged",
            "LLM calls reported by two sources (sensor and SDK) and linked, counted once",
            load(&i.calls_merged),
        )?;
        counter(
            &mut e,
            "lumen_ingest_overloaded",
            "Ingest requests refused with 503 over a bound",
            load(&i.overloaded),
        )?;
        counter(
            &mut e,
            "lumen_wal_records",
            "WAL records written",
            load(&i.wal_records),
        )?;
        counter(
            &mut e,
            "lumen_wal_syncs",
            "WAL fsyncs (group commits)",
            load(&i.wal_syncs),
        )?;
        gauge(
            &mut e,
            "lumen_wal_bytes",
            "WAL bytes on disk",
            load(&i.wal_bytes) as i64,
        )?;
        gauge(
            &mut e,
            "lumen_hot_bytes",
            "Unflushed span bytes in memory",
            self.buffer.bytes() as i64,
        )?;
        gauge(
            &mut e,
            "lumen_hot_rows",
            "Unflushed spans in memory",
            self.buffer.rows() as i64,
        )?;
        counter(
            &mut e,
            "lumen_flushes",
            "Flushes to Parquet",
            load(&p.flushes),
        )?;
        counter(
            &mut e,
            "lumen_flush_failures",
            "Failed flush attempts (retried)",
            load(&p.flush_failures),
        )?;
        counter(
            &mut e,
            "lumen_flushed_rows",
            "Spans written to Parquet",
            load(&p.rows_flushed),
        )?;
        counter(
            &mut e,
            "lumen_flushed_bytes",
            "Parquet bytes written",
            load(&p.bytes_written),
        )?;
        let flush_seconds = ConstCounter::new(load(&p.flush_micros_total) as f64 / 1e6);
        flush_seconds.encode(e.encode_descriptor(
            "lumen_flush_seconds",
            "Time spent flushing",
            None,
            flush_seconds.metric_type(),
        )?)?;
        let snap = self.manifest.snapshot();
        gauge(
            &mut e,
            "lumen_storage_files",
            "Parquet files in the manifest",
            snap.files.len() as i64,
        )?;
        gauge(
            &mut e,
            "lumen_storage_bytes",
            "Parquet bytes in the manifest",
            snap.total_bytes() as i64,
        )?;
        gauge(
            &mut e,
            "lumen_storage_rows",
            "Spans in Parquet files",
            snap.total_rows() as i64,
        )?;
        Ok(())
    }
}
