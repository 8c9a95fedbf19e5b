//! The flush loop: moves hot batches into Parquet by size or age, commits them to the manifest, then lets
//! the WAL drop what is persisted. While the object store fails it retries with backoff; the WAL keeps
//! every acknowledged span meanwhile (and ingest answers 503 once the WAL or the buffer is over its bound).
//!
//! Order of a flush, which is what makes it crash-safe and duplicate-free:
//! 1. write Parquet files (unreferenced until step 2: a crash here leaves only orphan objects),
//! 2. commit one manifest delta with the files and the WAL sequence they cover (the atomic step),
//! 3. drop the batches from the hot buffer (queries switch from hot rows to the files),
//! 4. delete WAL segments at or below that sequence (replay skips them anyway, see `Wal::open`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{TryStreamExt, future};
use lumen_ingest::{HotBuffer, Ingester};
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::watch;

use crate::manifest::{Manifest, ManifestError};
use crate::writer::{WriteError, WriterConfig, write_spans};

/// Unreferenced data files younger than this are left alone at start-up (another server may commit them).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
pub struct FlushPolicy {
    /// Flush when the hot buffer holds this many bytes.
    pub max_bytes: usize,
    /// Flush when the oldest unflushed span is this old.
    pub max_age: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error("writing Parquet: {0}")]
    Write(#[from] WriteError),
    #[error("committing the manifest: {0}")]
    Manifest(#[from] ManifestError),
}

/// Counters and the last flush's timing, for `/metrics`.
#[derive(Debug, Default)]
pub struct PersistStats {
    pub flushes: AtomicU64,
    pub flush_failures: AtomicU64,
    pub rows_flushed: AtomicU64,
    pub files_written: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Sum of flush durations in microseconds.
    pub flush_micros_total: AtomicU64,
}

/// A flush whose manifest commit failed: the commit may still have landed (the answer was lost), so the
/// next attempt first checks the manifest before it either completes this flush or discards its files.
#[derive(Debug)]
struct Unconfirmed {
    through_seq: u64,
    rows: usize,
    files: Vec<String>,
}

pub struct Persister {
    pub store: Arc<dyn ObjectStore>,
    pub manifest: Arc<Manifest>,
    pub ingester: Ingester,
    pub policy: FlushPolicy,
    pub writer: WriterConfig,
    pub stats: Arc<PersistStats>,
    unconfirmed: Option<Unconfirmed>,
    /// Files written by failed flushes and not referenced by the manifest: deleted when the store allows,
    /// so readers of the directory (DuckDB, Athena) never count a span twice.
    orphans: Vec<String>,
}

impl Persister {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        manifest: Arc<Manifest>,
        ingester: Ingester,
        policy: FlushPolicy,
        writer: WriterConfig,
        stats: Arc<PersistStats>,
    ) -> Self {
        Persister {
            store,
            manifest,
            ingester,
            policy,
            writer,
            stats,
            unconfirmed: None,
            orphans: Vec::new(),
        }
    }

    fn buffer(&self) -> &Arc<HotBuffer> {
        self.ingester.buffer()
    }

    fn due(&self) -> bool {
        self.buffer().bytes() >= self.policy.max_bytes
            || self
                .buffer()
                .oldest_age()
                .is_some_and(|age| age >= self.policy.max_age)
    }

    /// Settles a flush whose commit failed: completed if its delta landed after all, else its files
    /// become orphans to delete.
    async fn settle_unconfirmed(&mut self) -> Result<(), FlushError> {
        let Some(pending) = self.unconfirmed.take() else {
            return Ok(());
        };
        if let Err(e) = self.manifest.refresh().await {
            self.unconfirmed = Some(pending);
            return Err(e.into());
        }
        if self
            .manifest
            .snapshot()
            .persisted_seq(self.manifest.writer_id())
            >= pending.through_seq
        {
            tracing::info!(
                rows = pending.rows,
                "a flush whose answer was lost had committed; completing it"
            );
            self.complete(pending.through_seq).await;
        } else {
            self.orphans.extend(pending.files);
        }
        Ok(())
    }

    async fn complete(&self, through_seq: u64) {
        self.buffer().complete_flush(through_seq);
        self.ingester.mark_persisted(through_seq).await;
    }

    async fn delete_orphans(&mut self) {
        let mut left = Vec::new();
        for path in std::mem::take(&mut self.orphans) {
            match self.store.delete(&path.as_str().into()).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(_) => left.push(path),
            }
        }
        self.orphans = left;
    }

    /// Flushes everything buffered now. Returns the number of rows flushed.
    pub async fn flush_once(&mut self) -> Result<usize, FlushError> {
        self.settle_unconfirmed().await?;
        self.delete_orphans().await;
        let Some(set) = self.buffer().flush_set() else {
            return Ok(0);
        };
        let started = Instant::now();
        let mut files = Vec::new();
        if let Err(e) = write_spans(&self.store, &set.batches, &self.writer, &mut files).await {
            self.orphans.extend(files.into_iter().map(|f| f.path));
            return Err(e.into());
        }
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        let count = files.len() as u64;
        let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        if let Err(e) = self.manifest.commit(files, set.through_seq).await {
            self.unconfirmed = Some(Unconfirmed {
                through_seq: set.through_seq,
                rows: set.rows,
                files: paths,
            });
            return Err(e.into());
        }
        self.complete(set.through_seq).await;
        let s = &self.stats;
        s.flushes.fetch_add(1, Ordering::Relaxed);
        s.rows_flushed.fetch_add(set.rows as u64, Ordering::Relaxed);
        s.files_written.fetch_add(count, Ordering::Relaxed);
        s.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        s.flush_micros_total
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        tracing::debug!(rows = set.rows, files = count, bytes, elapsed = ?started.elapsed(), "flushed");
        Ok(set.rows)
    }

    /// Deletes data files that no manifest delta references and that are older than `grace`: what a crash
    /// between writing a file and committing it leaves behind. The grace period protects files that
    /// another server on the same store has written and is about to commit.
    pub async fn remove_unreferenced(&self, grace: Duration) -> Result<usize, FlushError> {
        self.manifest.refresh().await?;
        let known = self.manifest.snapshot();
        let cutoff =
            chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let prefix = object_store::path::Path::from(crate::paths::DATA_PREFIX);
        let stale: Vec<object_store::path::Path> = self
            .store
            .list(Some(&prefix))
            .try_filter(|meta| {
                let orphan = crate::paths::parse_data_file(meta.location.as_ref()).is_some()
                    && !known.files.contains_key(meta.location.as_ref())
                    && meta.last_modified < cutoff;
                future::ready(orphan)
            })
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(ManifestError::from)?;
        for path in &stale {
            self.store.delete(path).await.map_err(ManifestError::from)?;
            tracing::info!(%path, "deleted a data file no manifest references (left by a crash)");
        }
        Ok(stale.len())
    }

    /// The span ids of the most recently committed files, newest first, up to `limit`: what a restarted
    /// server remembers so that retries of spans flushed before the restart are still recognised.
    // ParquetObjectReader is deprecated in parquet 59 in favour of a hand-written AsyncFileReader; it still
    // does exactly this job (ranged reads of one column), so it stays until that replacement is written.
    #[allow(deprecated)]
    pub async fn recent_span_ids(&self, limit: usize) -> Result<Vec<String>, FlushError> {
        use arrow::array::AsArray;
        use parquet::arrow::ParquetRecordBatchStreamBuilder;
        use parquet::arrow::ProjectionMask;
        use parquet::arrow::async_reader::ParquetObjectReader;

        let snapshot = self.manifest.snapshot();
        let mut files: Vec<_> = snapshot.files.values().collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.created_ns));
        let mut ids = Vec::new();
        for file in files {
            if ids.len() >= limit {
                break;
            }
            let reader = ParquetObjectReader::new(self.store.clone(), file.path.as_str().into())
                .with_file_size(file.size);
            let fail = |source| crate::writer::WriteError::Parquet {
                path: file.path.clone(),
                source,
            };
            let builder = ParquetRecordBatchStreamBuilder::new(reader)
                .await
                .map_err(fail)?;
            let Some(column) = builder
                .schema()
                .index_of(lumen_ingest::schema::names::SPAN_ID)
                .ok()
            else {
                continue;
            };
            let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
            let mut stream = builder.with_projection(mask).build().map_err(fail)?;
            while let Some(batch) = stream.try_next().await.map_err(fail)? {
                if let Some(col) = batch.column(0).as_string_opt::<i32>() {
                    ids.extend(col.iter().flatten().map(str::to_string));
                }
            }
        }
        Ok(ids)
    }

    /// Runs until `shutdown` turns true, then makes one last attempt to flush.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        if let Err(e) = self.remove_unreferenced(ORPHAN_GRACE).await {
            tracing::warn!(error = %e, "looking for unreferenced data files failed");
        }
        const TICK: Duration = Duration::from_millis(200);
        const MAX_BACKOFF: Duration = Duration::from_secs(30);
        let mut backoff = Duration::from_millis(500);
        let mut retry_at: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                if let Err(e) = self.flush_once().await {
                    tracing::warn!(error = %e, "final flush failed; the WAL keeps the spans for the next start");
                }
                return;
            }
            if retry_at.is_some_and(|t| Instant::now() < t) || !self.due() {
                continue;
            }
            match self.flush_once().await {
                Ok(_) => {
                    if retry_at.take().is_some() {
                        tracing::info!("object store is back; flushing resumed");
                    }
                    backoff = Duration::from_millis(500);
                }
                Err(e) => {
                    self.stats.flush_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in = ?backoff, "flush failed; spans stay in the WAL");
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileMeta;
    use lumen_ingest::IngestConfig;
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn unreferenced_files_are_removed_after_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let manifest = Arc::new(Manifest::load(store.clone(), "w").await.unwrap());
        let kept = "spans/date=2026-11-28/hour=08/kept.parquet";
        let orphan = "spans/date=2026-11-28/hour=08/orphan.parquet";
        for path in [kept, orphan, "spans/README.txt"] {
            store
                .put(&path.into(), PutPayload::from_static(b"x"))
                .await
                .unwrap();
        }
        let meta = FileMeta {
            path: kept.into(),
            size: 1,
            rows: 1,
            min_time_ns: 0,
            max_time_ns: 0,
            created_ns: 0,
            duplicates: 0,
        };
        manifest.commit(vec![meta], 0).await.unwrap();
        let config = IngestConfig {
            wal_dir: dir.path().into(),
            segment_bytes: 1 << 20,
            max_buffer_bytes: 1 << 20,
            max_wal_bytes: 1 << 20,
            dedup_window: 10,
            policy: std::sync::Arc::new(lumen_ingest::CapturePolicy::default_redacted()),
        };
        let (ingester, _) = Ingester::open(config, Arc::new(HotBuffer::new(10)), 0).unwrap();
        let policy = FlushPolicy {
            max_bytes: 1,
            max_age: Duration::from_secs(1),
        };
        let persister = Persister::new(
            store.clone(),
            manifest,
            ingester,
            policy,
            WriterConfig::default(),
            Default::default(),
        );
        assert_eq!(
            persister
                .remove_unreferenced(Duration::from_secs(3600))
                .await
                .unwrap(),
            0,
            "young files stay"
        );
        assert_eq!(
            persister.remove_unreferenced(Duration::ZERO).await.unwrap(),
            1
        );
        assert!(store.head(&orphan.into()).await.is_err());
        assert!(store.head(&kept.into()).await.is_ok());
        assert!(
            store.head(&"spans/README.txt".into()).await.is_ok(),
            "only data files are touched"
        );
    }
}
