//! The ingest pipeline: validated batches → WAL (group commit on one writer thread) → hot buffer → ack.
//!
//! A request is acknowledged only after the fsync that covers its record. Concurrent requests that arrive
//! while an fsync is running are written together and share the next one. The writer thread is the only
//! place that assigns sequence numbers, de-duplicates span ids and pushes to the hot buffer, so the buffer
//! is always in WAL order.
//!
//! Before a batch is encoded for the WAL, the capture policy (`policy`) rewrites the content it may not
//! keep; on the writer thread, `correlate` links an LLM call reported by two sources (sensor and SDK).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, oneshot};

use crate::buffer::{HotBuffer, id_hash, span_ids};
use crate::correlate::{Call, CallIndex, PendingLink, calls_of, set_duplicate_of};
use crate::policy::CapturePolicy;
use crate::wal::{self, ReplayReport, Wal, WalError};

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub wal_dir: PathBuf,
    /// A WAL segment is closed when it reaches this size.
    pub segment_bytes: u64,
    /// Hot (unflushed) data above this answers 503.
    pub max_buffer_bytes: u64,
    /// WAL on disk above this answers 503.
    pub max_wal_bytes: u64,
    /// How many already-flushed span ids are remembered for idempotent retries.
    pub dedup_window: usize,
    /// What content may be stored; applied to every batch before the WAL.
    pub policy: Arc<CapturePolicy>,
}

/// How many recent LLM calls are kept for recognising a second report of the same call, and how long.
const CALL_INDEX_CAPACITY: usize = 100_000;
const CALL_INDEX_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// What an accepted request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Spans newly stored by this request.
    pub accepted: usize,
    /// Spans whose span_id was already stored (a retry): acknowledged, not stored twice.
    pub duplicates: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ingest is over its bound ({what}); retry later")]
    Overloaded {
        what: &'static str,
        retry_after_secs: u64,
    },
    #[error("the WAL cannot take writes: {0}")]
    WalUnavailable(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("the batch is not in the span schema: {0}")]
    Invalid(String),
}

/// Counters the server exports as metrics.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub wal_bytes: AtomicU64,
    pub wal_syncs: AtomicU64,
    pub wal_records: AtomicU64,
    pub spans_accepted: AtomicU64,
    pub spans_duplicate: AtomicU64,
    pub overloaded: AtomicU64,
    /// Rows whose content the capture policy changed, and the placeholders it inserted.
    pub policy_rows_changed: AtomicU64,
    pub policy_values_redacted: AtomicU64,
    /// Calls reported by two sources and linked (counted once).
    pub calls_merged: AtomicU64,
    wal_failed: AtomicBool,
}

enum Command {
    Append {
        batch: RecordBatch,
        payload: Vec<u8>,
        /// The batch's LLM calls, for linking two reports of one call.
        calls: Vec<(usize, Call)>,
        reply: oneshot::Sender<Result<Ack, IngestError>>,
    },
    Persisted {
        seq: u64,
    },
}

/// Handle to the pipeline; cheap to clone.
#[derive(Clone)]
pub struct Ingester {
    tx: mpsc::Sender<Command>,
    buffer: Arc<HotBuffer>,
    stats: Arc<IngestStats>,
    config: Arc<IngestConfig>,
}

impl Ingester {
    /// Replays the WAL (records above `persisted_seq`) into `buffer` and starts the writer thread.
    pub fn open(
        config: IngestConfig,
        buffer: Arc<HotBuffer>,
        persisted_seq: u64,
    ) -> Result<(Self, ReplayReport), WalError> {
        let mut replay_error = None;
        let mut calls = CallIndex::new(CALL_INDEX_CAPACITY, CALL_INDEX_MAX_AGE);
        let (wal, report) = Wal::open(
            &config.wal_dir,
            config.segment_bytes,
            persisted_seq,
            |seq, payload| {
                match wal::decode_batches(payload) {
                    Ok(batches) => {
                        for batch in batches {
                            // Written by an earlier version, perhaps with fewer columns.
                            let batch = match crate::schema::conform(batch) {
                                Ok(batch) => batch,
                                Err(e) => {
                                    replay_error = Some(WalError::Encode(e));
                                    continue;
                                }
                            };
                            let links = calls.relink_replayed(&batch);
                            calls.insert_batch(seq, &batch);
                            buffer.push(seq, batch);
                            for link in links {
                                finish_link(&buffer, &link);
                            }
                        }
                    }
                    // The checksum matched, so this is a bug or a format change, not a torn write.
                    Err(e) => replay_error = Some(e),
                }
            },
        )?;
        if let Some(e) = replay_error {
            return Err(e);
        }
        let stats = Arc::new(IngestStats::default());
        stats.wal_bytes.store(wal.total_bytes(), Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(4096);
        let thread_buffer = buffer.clone();
        let thread_stats = stats.clone();
        thread::Builder::new()
            .name("lumen-wal".into())
            .spawn(move || writer_loop(wal, rx, thread_buffer, thread_stats, calls))
            .map_err(|source| WalError::Io {
                path: config.wal_dir.clone(),
                source,
            })?;
        Ok((
            Ingester {
                tx,
                buffer,
                stats,
                config: Arc::new(config),
            },
            report,
        ))
    }

    pub fn buffer(&self) -> &Arc<HotBuffer> {
        &self.buffer
    }

    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }

    /// Checks the bounds; `Err(Overloaded)` means answer 503 without doing any work.
    pub fn check_capacity(&self) -> Result<(), IngestError> {
        if self.stats.wal_failed.load(Ordering::Relaxed) {
            return Err(IngestError::WalUnavailable(
                "an earlier WAL write or fsync failed".into(),
            ));
        }
        let over = if self.buffer.bytes() as u64 > self.config.max_buffer_bytes {
            Some("unflushed spans in memory")
        } else if self.stats.wal_bytes.load(Ordering::Relaxed) > self.config.max_wal_bytes {
            Some("WAL size on disk")
        } else {
            None
        };
        match over {
            Some(what) => {
                self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                Err(IngestError::Overloaded {
                    what,
                    retry_after_secs: 5,
                })
            }
            None => Ok(()),
        }
    }

    /// Makes `batch` durable and queryable; returns once it is both. The capture policy is applied
    /// first, so content it forbids never reaches the WAL.
    pub async fn ingest(&self, batch: RecordBatch) -> Result<Ack, IngestError> {
        self.check_capacity()?;
        // Policy and encoding run here, off the single writer thread and off the async workers.
        let policy = self.config.policy.clone();
        let stats = self.stats.clone();
        let (batch, payload, calls) = tokio::task::spawn_blocking(move || {
            let (batch, outcome) = policy
                .apply(&batch)
                .map_err(|e| IngestError::Invalid(e.to_string()))?;
            stats
                .policy_rows_changed
                .fetch_add(outcome.rows_changed as u64, Ordering::Relaxed);
            stats
                .policy_values_redacted
                .fetch_add(outcome.values_redacted, Ordering::Relaxed);
            let payload = wal::encode_batch(&batch)
                .map_err(|e| IngestError::WalUnavailable(e.to_string()))?;
            let calls = calls_of(&batch);
            Ok::<_, IngestError>((batch, payload, calls))
        })
        .await
        .map_err(|_| IngestError::ShuttingDown)??;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Append {
                batch,
                payload,
                calls,
                reply,
            })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }

    /// Tells the WAL that everything through `seq` is in Parquet and in the manifest.
    pub async fn mark_persisted(&self, seq: u64) {
        let _ = self.tx.send(Command::Persisted { seq }).await;
    }
}

struct Pending {
    reply: oneshot::Sender<Result<Ack, IngestError>>,
    /// The sequence number and batch to publish after the fsync (None when every span was a duplicate).
    record: Option<(u64, RecordBatch)>,
    /// Earlier rows to mark as duplicates of this request's merged rows once it is durable.
    links: Vec<PendingLink>,
    ack: Ack,
}

/// Marks the first row of a linked pair as the duplicate of the merged row and releases its pin.
fn finish_link(buffer: &HotBuffer, link: &PendingLink) {
    buffer.rewrite(link.first_seq, |batch| {
        set_duplicate_of(batch, &link.first_span_id, &link.merged_span_id)
    });
}

fn writer_loop(
    mut wal: Wal,
    mut rx: mpsc::Receiver<Command>,
    buffer: Arc<HotBuffer>,
    stats: Arc<IngestStats>,
    mut calls: CallIndex,
) {
    const MAX_GROUP: usize = 1024;
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(cmd) => group.push(cmd),
                Err(_) => break,
            }
        }
        let mut pending: Vec<Pending> = Vec::new();
        let mut taken_in_group: HashSet<u64> = HashSet::new();
        let mut appended = false;
        for cmd in group {
            match cmd {
                Command::Persisted { seq } => {
                    if let Err(e) = wal.remove_persisted(seq) {
                        tracing::error!(error = %e, "removing persisted WAL segments failed; will retry after the next flush");
                    }
                }
                Command::Append {
                    batch,
                    payload,
                    calls: batch_calls,
                    reply,
                } => {
                    if stats.wal_failed.load(Ordering::Relaxed) {
                        let _ = reply.send(Err(IngestError::WalUnavailable(
                            "an earlier WAL write or fsync failed".into(),
                        )));
                        continue;
                    }
                    match append_one(
                        &mut wal,
                        &buffer,
                        &mut calls,
                        &mut taken_in_group,
                        batch,
                        payload,
                        batch_calls,
                    ) {
                        Ok((record, links, ack)) => {
                            appended |= record.is_some();
                            pending.push(Pending {
                                reply,
                                record,
                                links,
                                ack,
                            });
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "WAL append failed; refusing writes until restart");
                            stats.wal_failed.store(true, Ordering::Relaxed);
                            let _ = reply.send(Err(IngestError::WalUnavailable(e.to_string())));
                        }
                    }
                }
            }
        }
        if appended && !stats.wal_failed.load(Ordering::Relaxed) {
            match wal.sync() {
                Ok(()) => {
                    stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "WAL fsync failed; refusing writes until restart");
                    stats.wal_failed.store(true, Ordering::Relaxed);
                }
            }
        }
        stats
            .calls_merged
            .store(calls.merged_total, Ordering::Relaxed);
        // Before the replies, so a client that got its answer sees the WAL size that includes it.
        stats.wal_bytes.store(wal.total_bytes(), Ordering::Relaxed);
        let failed = stats.wal_failed.load(Ordering::Relaxed);
        for p in pending {
            if failed {
                for link in &p.links {
                    buffer.unpin(link.first_seq);
                }
                let _ = p.reply.send(Err(IngestError::WalUnavailable(
                    "WAL write or fsync failed".into(),
                )));
                continue;
            }
            if let Some((seq, batch)) = p.record {
                buffer.push(seq, batch);
                stats.wal_records.fetch_add(1, Ordering::Relaxed);
            }
            for link in &p.links {
                finish_link(&buffer, link);
                buffer.unpin(link.first_seq);
            }
            stats
                .spans_accepted
                .fetch_add(p.ack.accepted as u64, Ordering::Relaxed);
            stats
                .spans_duplicate
                .fetch_add(p.ack.duplicates as u64, Ordering::Relaxed);
            let _ = p.reply.send(Ok(p.ack));
        }
    }
}

/// De-duplicates one request against everything accepted so far and appends what is new.
type Appended = (Option<(u64, RecordBatch)>, Vec<PendingLink>, Ack);

fn append_one(
    wal: &mut Wal,
    buffer: &HotBuffer,
    calls: &mut CallIndex,
    taken_in_group: &mut HashSet<u64>,
    batch: RecordBatch,
    payload: Vec<u8>,
    mut batch_calls: Vec<(usize, Call)>,
) -> Result<Appended, WalError> {
    let Some(ids) = span_ids(&batch) else {
        // Not in the span schema: cannot happen for batches from `parse_spans`.
        return Err(WalError::Encode(arrow::error::ArrowError::SchemaError(
            "batch has no span_id column".into(),
        )));
    };
    let dup = buffer.duplicates(ids, taken_in_group);
    let duplicates = dup.iter().filter(|d| **d).count();
    for (i, is_dup) in dup.iter().enumerate() {
        if !is_dup {
            taken_in_group.insert(id_hash(ids.value(i)));
        }
    }
    let (batch, payload) = if duplicates == 0 {
        (batch, payload)
    } else {
        let keep = BooleanArray::from(dup.iter().map(|d| !d).collect::<Vec<_>>());
        let kept = filter_record_batch(&batch, &keep)?;
        let payload = wal::encode_batch(&kept)?;
        // Rows moved; a retry with duplicates is rare, so the calls are simply read again.
        batch_calls = calls_of(&kept);
        (kept, payload)
    };
    let accepted = batch.num_rows();
    if accepted == 0 {
        return Ok((
            None,
            Vec::new(),
            Ack {
                accepted,
                duplicates,
            },
        ));
    }
    let (linked, links) = calls.link(
        &batch,
        &mut batch_calls,
        |seq| buffer.pin(seq),
        |seq| buffer.batch(seq),
    );
    let (batch, payload) = match linked {
        Some(linked) => {
            let payload = match wal::encode_batch(&linked) {
                Ok(p) => p,
                Err(e) => {
                    for link in &links {
                        buffer.unpin(link.first_seq);
                    }
                    return Err(e);
                }
            };
            (linked, payload)
        }
        None => (batch, payload),
    };
    let seq = match wal.append(&payload) {
        Ok(seq) => seq,
        Err(e) => {
            for link in &links {
                buffer.unpin(link.first_seq);
            }
            return Err(e);
        }
    };
    calls.insert(seq, batch_calls);
    Ok((
        Some((seq, batch)),
        links,
        Ack {
            accepted,
            duplicates,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{BodyFormat, parse_spans};

    fn config(dir: &std::path::Path) -> IngestConfig {
        IngestConfig {
            wal_dir: dir.to_path_buf(),
            segment_bytes: 1 << 20,
            max_buffer_bytes: 1 << 30,
            max_wal_bytes: 1 << 30,
            dedup_window: 1000,
            policy: Arc::new(CapturePolicy::default_redacted()),
        }
    }

    fn spans(ids: &[&str]) -> RecordBatch {
        let body: String = ids
            .iter()
            .map(|id| format!("{{\"start_time\":1,\"span_id\":\"{id}\"}}\n"))
            .collect();
        parse_spans(body.as_bytes(), BodyFormat::Ndjson).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_are_durable_deduplicated_and_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = Arc::new(HotBuffer::new(1000));
        let (ingester, _) = Ingester::open(config(dir.path()), buffer.clone(), 0).unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let ing = ingester.clone();
            tasks.push(tokio::spawn(async move {
                let a = format!("s{i}");
                ing.ingest(spans(&[&a, "shared"])).await.unwrap()
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            accepted += t.await.unwrap().accepted;
        }
        assert_eq!(
            accepted, 51,
            "50 distinct ids plus one shared id stored once"
        );
        assert!(ingester.stats().wal_syncs.load(Ordering::Relaxed) <= 50);
        drop(ingester);

        let replayed = Arc::new(HotBuffer::new(1000));
        let (again, report) = Ingester::open(config(dir.path()), replayed.clone(), 0).unwrap();
        assert_eq!(replayed.rows(), 51);
        assert_eq!(report.torn_tails, 0);
        // A retry after the restart is recognised.
        let ack = again.ingest(spans(&["s7", "new"])).await.unwrap();
        assert_eq!(
            ack,
            Ack {
                accepted: 1,
                duplicates: 1
            }
        );
    }

    #[tokio::test]
    async fn over_the_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.max_buffer_bytes = 1;
        let (ingester, _) = Ingester::open(cfg, Arc::new(HotBuffer::new(10)), 0).unwrap();
        ingester.ingest(spans(&["a"])).await.unwrap();
        assert!(matches!(
            ingester.ingest(spans(&["b"])).await,
            Err(IngestError::Overloaded { .. })
        ));
        assert_eq!(
            ingester.buffer().rows(),
            1,
            "nothing of a refused request is kept"
        );
    }

    #[tokio::test]
    async fn over_the_wal_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.max_wal_bytes = 100;
        let (ingester, _) = Ingester::open(cfg, Arc::new(HotBuffer::new(10)), 0).unwrap();
        ingester.ingest(spans(&["a"])).await.unwrap();
        match ingester.ingest(spans(&["b"])).await {
            Err(IngestError::Overloaded {
                what,
                retry_after_secs,
            }) => {
                assert_eq!(what, "WAL size on disk");
                assert!(retry_after_secs > 0);
            }
            other => panic!("expected a 503-style refusal, got {other:?}"),
        }
    }
}
