//! The manifest: which Parquet files make up the `spans` table, with row count, size and time range, and
//! how far each writer's WAL is persisted. It lives in the object store next to the data, so a fresh server
//! on the same bucket sees everything, and the query path never lists the bucket.
//!
//! Format: numbered JSON deltas, each committed with a create-if-absent PUT (no coordinator: a writer that
//! loses the race reloads and retries with the next number), plus a checkpoint of the whole state every
//! `CHECKPOINT_EVERY` deltas so start-up reads one checkpoint and a few deltas.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::paths::{self, ManifestKey};

pub const CHECKPOINT_EVERY: u64 = 100;
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("manifest object {path} is not valid: {source}")]
    Decode {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "manifest object {path} has format version {found}; this Lumen reads version {FORMAT_VERSION}"
    )]
    Version { path: String, found: u32 },
    #[error("gave up committing to the manifest after {0} conflicting writers")]
    Contention(usize),
}

pub type Result<T, E = ManifestError> = std::result::Result<T, E>;

/// One Parquet data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Object key relative to the store root.
    pub path: String,
    pub size: u64,
    pub rows: u64,
    /// Smallest and largest `start_time` in the file (Unix ns).
    pub min_time_ns: i64,
    pub max_time_ns: i64,
    /// When the file was committed (Unix ns).
    pub created_ns: i64,
    /// Rows with `duplicate_of` set (left out of `spans`); files without any need no filter. Absent in
    /// manifests written before the column existed, which is right: those files have none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicates: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Serialize, Deserialize)]
struct Delta {
    version: u32,
    seq: u64,
    writer_id: String,
    /// The writer's WAL is persisted through this sequence number once this delta exists.
    wal_seq: u64,
    added: Vec<FileMeta>,
    #[serde(default)]
    removed: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Checkpoint {
    version: u32,
    seq: u64,
    files: Vec<FileMeta>,
    writers: HashMap<String, u64>,
}

/// An immutable view of the manifest at one sequence number.
#[derive(Debug, Default, Clone)]
pub struct ManifestSnapshot {
    pub seq: u64,
    pub files: BTreeMap<String, FileMeta>,
    /// Per writer id: WAL persisted through this sequence number.
    pub writers: HashMap<String, u64>,
}

impl ManifestSnapshot {
    pub fn persisted_seq(&self, writer_id: &str) -> u64 {
        self.writers.get(writer_id).copied().unwrap_or(0)
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }

    pub fn total_rows(&self) -> u64 {
        self.files.values().map(|f| f.rows).sum()
    }

    fn apply(&mut self, delta: Delta) {
        for path in delta.removed {
            self.files.remove(&path);
        }
        for file in delta.added {
            self.files.insert(file.path.clone(), file);
        }
        let wal = self.writers.entry(delta.writer_id).or_default();
        *wal = (*wal).max(delta.wal_seq);
        self.seq = delta.seq;
    }
}

/// The manifest of one store, shared by the flush (writer) and the query path (readers).
pub struct Manifest {
    store: Arc<dyn ObjectStore>,
    writer_id: String,
    current: RwLock<Arc<ManifestSnapshot>>,
    /// Serialises commits and refreshes from this process.
    commit_lock: tokio::sync::Mutex<()>,
}

impl Manifest {
    /// Loads the latest checkpoint and every delta after it.
    pub async fn load(store: Arc<dyn ObjectStore>, writer_id: impl Into<String>) -> Result<Self> {
        let manifest = Manifest {
            store,
            writer_id: writer_id.into(),
            current: RwLock::new(Arc::new(ManifestSnapshot::default())),
            commit_lock: tokio::sync::Mutex::new(()),
        };
        let _guard = manifest.commit_lock.lock().await;
        manifest.reload_locked(true).await?;
        drop(_guard);
        Ok(manifest)
    }

    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// The current state; cheap (an `Arc`).
    pub fn snapshot(&self) -> Arc<ManifestSnapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn publish(&self, snapshot: ManifestSnapshot) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
    }

    /// Picks up deltas other writers committed since the last look.
    pub async fn refresh(&self) -> Result<()> {
        let _guard = self.commit_lock.lock().await;
        self.reload_locked(false).await
    }

    /// Reads what is newer than the current snapshot; with `from_checkpoint`, starts at the latest checkpoint.
    async fn reload_locked(&self, from_checkpoint: bool) -> Result<()> {
        let mut state = (*self.snapshot()).clone();
        let prefix = object_store::path::Path::from(paths::MANIFEST_PREFIX);
        let keys: Vec<ManifestKey> = self
            .store
            .list(Some(&prefix))
            .try_filter_map(|meta| {
                futures::future::ready(Ok(paths::parse_manifest_key(&meta.location)))
            })
            .try_collect()
            .await?;
        if from_checkpoint {
            let latest = keys
                .iter()
                .filter_map(|k| {
                    if let ManifestKey::Checkpoint(s) = k {
                        Some(*s)
                    } else {
                        None
                    }
                })
                .max();
            if let Some(seq) = latest.filter(|s| *s > state.seq) {
                let path = paths::manifest_checkpoint(seq);
                let checkpoint: Checkpoint = self.get_json(&path).await?;
                check_version(&path, checkpoint.version)?;
                state = ManifestSnapshot {
                    seq: checkpoint.seq,
                    files: checkpoint
                        .files
                        .into_iter()
                        .map(|f| (f.path.clone(), f))
                        .collect(),
                    writers: checkpoint.writers,
                };
            }
        }
        let mut deltas: Vec<u64> = keys
            .iter()
            .filter_map(|k| {
                if let ManifestKey::Delta(s) = k {
                    Some(*s)
                } else {
                    None
                }
            })
            .collect();
        deltas.sort_unstable();
        if !from_checkpoint {
            // A checkpoint past what we have, or a hole before the first listed delta, means deltas we
            // never read were already cleaned up: start again from the latest checkpoint.
            let newer_checkpoint = keys
                .iter()
                .any(|k| matches!(k, ManifestKey::Checkpoint(s) if *s > state.seq));
            let gap = deltas
                .iter()
                .find(|s| **s > state.seq)
                .is_some_and(|first| *first > state.seq + 1);
            if newer_checkpoint || gap {
                return Box::pin(self.reload_locked(true)).await;
            }
        }
        let after = state.seq;
        for seq in deltas.into_iter().filter(|s| *s > after) {
            let path = paths::manifest_delta(seq);
            let delta: Delta = match self.get_json(&path).await {
                Ok(d) => d,
                // Deleted by a checkpointing writer between our LIST and GET: start over from its checkpoint.
                Err(ManifestError::Store(object_store::Error::NotFound { .. }))
                    if !from_checkpoint =>
                {
                    return Box::pin(self.reload_locked(true)).await;
                }
                Err(e) => return Err(e),
            };
            check_version(&path, delta.version)?;
            state.apply(delta);
        }
        self.publish(state);
        Ok(())
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &object_store::path::Path,
    ) -> Result<T> {
        let bytes = self.store.get(path).await?.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|source| ManifestError::Decode {
            path: path.to_string(),
            source,
        })
    }

    /// Atomically adds `added` and records this writer's WAL as persisted through `wal_seq`.
    pub async fn commit(
        &self,
        added: Vec<FileMeta>,
        wal_seq: u64,
    ) -> Result<Arc<ManifestSnapshot>> {
        let _guard = self.commit_lock.lock().await;
        const MAX_CONFLICTS: usize = 100;
        for _ in 0..MAX_CONFLICTS {
            // Catch up first: committing on a stale base could reuse a number whose delta was already
            // folded into a checkpoint and deleted, and such a delta would never be read.
            self.reload_locked(false).await?;
            let base = self.snapshot();
            let delta = Delta {
                version: FORMAT_VERSION,
                seq: base.seq + 1,
                writer_id: self.writer_id.clone(),
                wal_seq,
                added: added.clone(),
                removed: Vec::new(),
            };
            let body = serde_json::to_vec(&delta).map_err(|source| ManifestError::Decode {
                path: paths::manifest_delta(delta.seq).to_string(),
                source,
            })?;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .store
                .put_opts(
                    &paths::manifest_delta(delta.seq),
                    PutPayload::from(body),
                    opts,
                )
                .await
            {
                Ok(_) => {
                    let seq = delta.seq;
                    let mut next = (*base).clone();
                    next.apply(delta);
                    self.publish(next);
                    if seq.is_multiple_of(CHECKPOINT_EVERY) {
                        // A failed checkpoint costs only start-up time; the deltas stay the truth.
                        if let Err(e) = self.write_checkpoint().await {
                            tracing::warn!(error = %e, "writing a manifest checkpoint failed");
                        }
                    }
                    return Ok(self.snapshot());
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    // Another writer committed this number first: read its delta(s) and try the next one.
                    self.reload_locked(false).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ManifestError::Contention(MAX_CONFLICTS))
    }

    /// Writes a checkpoint of the current state and removes deltas two checkpoints old.
    async fn write_checkpoint(&self) -> Result<()> {
        let snap = self.snapshot();
        let checkpoint = Checkpoint {
            version: FORMAT_VERSION,
            seq: snap.seq,
            files: snap.files.values().cloned().collect(),
            writers: snap.writers.clone(),
        };
        let path = paths::manifest_checkpoint(snap.seq);
        let body = serde_json::to_vec(&checkpoint).map_err(|source| ManifestError::Decode {
            path: path.to_string(),
            source,
        })?;
        self.store.put(&path, PutPayload::from(body)).await?;
        // Keep the previous checkpoint's deltas so a reader that listed before this checkpoint can finish.
        let horizon = snap.seq.saturating_sub(CHECKPOINT_EVERY);
        let prefix = object_store::path::Path::from(paths::MANIFEST_PREFIX);
        let old: Vec<object_store::path::Path> = self
            .store
            .list(Some(&prefix))
            .try_filter_map(|meta| {
                let old = match paths::parse_manifest_key(&meta.location) {
                    Some(ManifestKey::Delta(s)) | Some(ManifestKey::Checkpoint(s)) => s < horizon,
                    None => false,
                };
                futures::future::ready(Ok(old.then_some(meta.location)))
            })
            .try_collect()
            .await?;
        for path in old {
            self.store.delete(&path).await?;
        }
        Ok(())
    }
}

fn check_version(path: &object_store::path::Path, found: u32) -> Result<()> {
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(ManifestError::Version {
            path: path.to_string(),
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn file(path: &str, rows: u64) -> FileMeta {
        FileMeta {
            path: path.into(),
            size: 10,
            rows,
            min_time_ns: 1,
            max_time_ns: 2,
            created_ns: 3,
            duplicates: 0,
        }
    }

    #[tokio::test]
    async fn commits_are_seen_by_a_fresh_reader_and_writers_do_not_clobber() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = Manifest::load(store.clone(), "a").await.unwrap();
        let b = Manifest::load(store.clone(), "b").await.unwrap();
        a.commit(vec![file("spans/1.parquet", 5)], 7).await.unwrap();
        // b has not seen a's delta; its commit conflicts on seq 1, reloads and lands as seq 2.
        b.commit(vec![file("spans/2.parquet", 6)], 3).await.unwrap();
        let fresh = Manifest::load(store.clone(), "c").await.unwrap();
        let snap = fresh.snapshot();
        assert_eq!(snap.seq, 2);
        assert_eq!(snap.total_rows(), 11);
        assert_eq!(snap.persisted_seq("a"), 7);
        assert_eq!(snap.persisted_seq("b"), 3);
        a.refresh().await.unwrap();
        assert_eq!(a.snapshot().files.len(), 2);
    }

    #[tokio::test]
    async fn a_writer_that_lagged_past_a_checkpoint_catches_up_before_committing() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let busy = Manifest::load(store.clone(), "busy").await.unwrap();
        let lagging = Manifest::load(store.clone(), "lagging").await.unwrap();
        for i in 0..(2 * CHECKPOINT_EVERY + 3) {
            busy.commit(vec![file(&format!("spans/{i}.parquet"), 1)], i + 1)
                .await
                .unwrap();
        }
        lagging
            .commit(vec![file("spans/late.parquet", 1)], 9)
            .await
            .unwrap();
        let fresh = Manifest::load(store, "reader").await.unwrap();
        let snap = fresh.snapshot();
        assert!(
            snap.files.contains_key("spans/late.parquet"),
            "the late commit is visible to a new reader"
        );
        assert_eq!(snap.files.len() as u64, 2 * CHECKPOINT_EVERY + 4);
        assert_eq!(snap.persisted_seq("lagging"), 9);
    }

    #[tokio::test]
    async fn checkpoints_bound_start_up_reads() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let m = Manifest::load(store.clone(), "w").await.unwrap();
        for i in 0..(2 * CHECKPOINT_EVERY + 5) {
            m.commit(vec![file(&format!("spans/{i}.parquet"), 1)], i + 1)
                .await
                .unwrap();
        }
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert!(
            listed.len() < (CHECKPOINT_EVERY as usize) + 20,
            "old deltas are removed: {}",
            listed.len()
        );
        let fresh = Manifest::load(store, "w").await.unwrap();
        let snap = fresh.snapshot();
        assert_eq!(snap.files.len() as u64, 2 * CHECKPOINT_EVERY + 5);
        assert_eq!(snap.persisted_seq("w"), 2 * CHECKPOINT_EVERY + 5);
    }
}
